"""The `digest` command line: parses arguments, calls the library, prints.

Each theme's commands live in their own module (papers, people, sending, database,
doctor), with what they share in `common`; this module only assembles them.
"""

from __future__ import annotations

import typer

from digest.cli import database, doctor, papers, people, sending

app = typer.Typer(
    help="digest: email researchers the new papers that match their interests.",
    no_args_is_help=True,
    add_completion=False,
)
for commands in (papers.app, people.app, sending.app, doctor.app):
    app.add_typer(commands)
app.add_typer(database.app, name="db")

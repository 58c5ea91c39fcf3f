"""Database maintenance: `digest db upgrade`."""

from __future__ import annotations

import typer

from digest import db
from digest.cli import common
from digest.cli.common import console

app = typer.Typer(help="Database maintenance.", no_args_is_help=True)


@app.command("upgrade")
def upgrade() -> None:
    """Create or migrate the database to the latest schema."""
    settings = common.settings()
    engine = db.make_engine(settings.sqlalchemy_url)
    try:
        before = db.pending_migration(engine)
    finally:
        engine.dispose()
    db.upgrade(settings.sqlalchemy_url)
    done = "migrated to the latest schema" if before else "already up to date"
    console.print(f"Database {done}: {settings.sqlalchemy_url}")

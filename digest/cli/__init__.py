"""The `digest` command line: parses arguments, calls the library, prints."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import typer
from pydantic import ValidationError
from rich.console import Console
from sqlalchemy import Engine

from digest import db
from digest.clock import utcnow
from digest.config import Settings

app = typer.Typer(
    help="digest: email researchers the new papers that match their interests.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        for problem in exc.errors():
            where = "_".join(str(part) for part in problem["loc"]).upper()
            message = problem["msg"].removeprefix("Value error, ")
            err.print(f"[red]error:[/] {f'DIGEST_{where}: ' if where else ''}{message}")
        raise typer.Exit(2) from exc


@contextmanager
def _engine(settings: Settings | None = None) -> Iterator[Engine]:
    """The configured database, refused with a clear message when it needs migrating."""
    url = (settings or _settings()).sqlalchemy_url
    engine = db.make_engine(url)
    try:
        problem = db.pending_migration(engine)
        if problem:
            err.print(f"[red]error:[/] {problem} ({url}): run `digest db upgrade` first")
            raise typer.Exit(2)
        yield engine
    finally:
        engine.dispose()


def _now(value: datetime | None) -> datetime:
    if value is None:
        return utcnow()
    return value if value.tzinfo else value.astimezone()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database to the latest schema."""
    settings = _settings()
    engine = db.make_engine(settings.sqlalchemy_url)
    try:
        before = db.pending_migration(engine)
    finally:
        engine.dispose()
    db.upgrade(settings.sqlalchemy_url)
    done = "migrated to the latest schema" if before else "already up to date"
    console.print(f"Database {done}: {settings.sqlalchemy_url}")


# The commands register themselves on `app` when their modules load.
from digest.cli import papers, people, sending  # noqa: E402, F401

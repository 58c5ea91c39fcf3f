"""What every command shares: the consoles, settings, the database, errors and stopping."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from sqlalchemy import Engine

from digest import db
from digest.clock import utcnow
from digest.config import Settings
from digest.delivery.outbox import SendReport

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")

# Exit codes: 1 the work failed, 2 the input or setup is wrong, 3 the SMTP server refused us.
FAILED, USAGE, REFUSED = 1, 2, 3


def fail(message: str, code: int = FAILED) -> NoReturn:
    """Print `error: message` on standard error and exit with `code`."""
    err.print(f"[red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(code)


@contextmanager
def refusing(*errors: type[Exception], code: int = USAGE) -> Iterator[None]:
    """Turn `errors` raised inside into `error: <message>` and exit `code`."""
    try:
        yield
    except errors as exc:
        fail(str(exc), code)


def settings() -> Settings:
    """The operator's settings; a bad one stops with the variable and the reason."""
    try:
        return Settings()
    except ValidationError as exc:
        for problem in exc.errors():
            where = "_".join(str(part) for part in problem["loc"]).upper()
            message = problem["msg"].removeprefix("Value error, ")
            named = f"DIGEST_{where}: " if where else ""
            err.print(f"[red]error:[/] {escape(named + message)}", highlight=False)
        raise typer.Exit(USAGE) from exc


@contextmanager
def engine(config: Settings | None = None) -> Iterator[Engine]:
    """The configured database, refused with a clear message when it needs migrating."""
    url = (config or settings()).sqlalchemy_url
    made = db.make_engine(url)
    try:
        problem = db.pending_migration(made)
        if problem:
            fail(f"{problem} ({url}): run `digest db upgrade` first", USAGE)
        yield made
    finally:
        made.dispose()


def as_of(value: datetime | None) -> datetime:
    """A --now option's time (naive means local), or the current time."""
    if value is None:
        return utcnow()
    return value if value.tzinfo else value.astimezone()


def run_until_stopped(main: Callable[[asyncio.Event], Coroutine[Any, Any, T]]) -> T:
    """Run `main(stop)` in a new event loop; SIGTERM and Ctrl-C set `stop`."""

    async def guarded() -> T:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        return await main(stop)

    return asyncio.run(guarded())


def safe_key(config: Settings, listening: str | None = None) -> None:
    """Refuse to send mail or serve pages (`listening` on that address) with a weak key."""
    problem = config.key_problem(listening)
    if problem:
        fail(problem, USAGE)


def exit_if_refused(report: SendReport) -> None:
    """Say why sending stopped, and exit 3, when the SMTP server refused us."""
    if report.aborted:
        err.print(f"[bold red]sending stopped:[/] {escape(report.aborted)}", highlight=False)
        raise typer.Exit(REFUSED)

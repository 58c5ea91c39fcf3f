"""Commands that send or serve: run, worker, serve, schedule, bounces, smtp-capture, demo."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from digest.cli import common
from digest.cli.common import USAGE, console, err, exit_if_refused, fail
from digest.clock import utcnow
from digest.delivery.inbox import (
    ImapError,
    ImapUrlError,
    read_inbox,
)
from digest.delivery.sender import run as run_digests
from digest.delivery.sender import work
from digest.delivery.transport import SmtpTransport
from digest.mail.render import Renderer
from digest.match.engine import InterestMatcher
from digest.models import DigestStatus
from digest.privacy import purge_unconfirmed

app = typer.Typer()


@app.command()
def run(
    now: Annotated[
        datetime | None, typer.Option(help="Plan as of this time instead of now (ISO 8601).")
    ] = None,
) -> None:
    """Plan and send every due digest now, over the SMTP server in Settings."""
    settings = common.settings()
    common.safe_key(settings)
    with common.engine(settings) as engine:
        planned, sent = asyncio.run(
            run_digests(
                engine,
                InterestMatcher(),
                SmtpTransport(settings),
                Renderer(settings),
                common.as_of(now),
            )
        )
        purged = purge_unconfirmed(engine, common.as_of(now), settings.pending_purge_days)
    for outcome in sent.outcomes:
        if outcome.status is not DigestStatus.sent:
            err.print(
                f"[yellow]{outcome.status}[/] {outcome.email}: {outcome.reply}", highlight=False
            )
    console.print(
        f"planned {planned.planned} digest(s), {planned.empty} with no new matches; "
        f"sent {sent.count(DigestStatus.sent)}, retrying {sent.count(DigestStatus.planned)}, "
        f"failed {sent.count(DigestStatus.failed)}"
        + (f"; erased {purged} sign-up(s) never confirmed" if purged else "")
    )
    exit_if_refused(sent)


def _log_to_stderr() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # not every tick at INFO
    logging.getLogger("alembic").setLevel(logging.WARNING)  # not the schema check's chatter


@app.command()
def worker(
    once: Annotated[bool, typer.Option("--once", help="Send what is due, then exit.")] = False,
) -> None:
    """Send planned digests until stopped (SIGTERM finishes the message in flight)."""
    settings = common.settings()
    common.safe_key(settings)
    _log_to_stderr()
    with common.engine(settings) as engine:
        report = common.run_until_stopped(
            lambda stop: work(
                engine,
                SmtpTransport(settings),
                Renderer(settings),
                clock=utcnow,
                stop=stop,
                poll=settings.worker_poll_seconds,
                once=once,
            )
        )
    exit_if_refused(report)
    console.print(
        f"sent {report.count(DigestStatus.sent)} digest(s), "
        f"{report.count(DigestStatus.planned)} to retry later, {len(report.outcomes)} handled"
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address the web app listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port the web app listens on.")] = 8000,
    no_web: Annotated[
        bool, typer.Option("--no-web", help="Run the scheduler and sender only.")
    ] = False,
) -> None:
    """Run the web app, the scheduler (ingest, plan) and the sender until SIGTERM or Ctrl-C."""
    from digest.serve.service import serve as run_service

    settings = common.settings()
    common.safe_key(settings, None if no_web else host)
    _log_to_stderr()
    if not no_web:
        console.print(
            f"web app on http://{host}:{port}/ (links in emails use DIGEST_BASE_URL="
            f"{settings.base_url})",
            highlight=False,
        )
    with common.engine(settings) as engine:
        try:
            report = common.run_until_stopped(
                lambda stop: run_service(
                    engine,
                    settings,
                    InterestMatcher(),
                    SmtpTransport(settings),
                    Renderer(settings),
                    stop=stop,
                    web=None if no_web else (host, port),
                )
            )
        except OSError as exc:
            fail(exc.strerror or str(exc))
    exit_if_refused(report)


@app.command()
def schedule(
    hours: Annotated[int, typer.Option(help="How far ahead to count digests.")] = 24,
) -> None:
    """Show the jobs that run next and how many digests are due each hour ahead."""
    from digest.delivery.slots import due, forecast
    from digest.serve.jobs import upcoming

    settings = common.settings()
    now = utcnow()
    with common.engine(settings) as engine, engine.connect() as conn:
        waiting = due(conn, now, timedelta(hours=settings.catch_up_hours))
        ahead = forecast(conn, now, hours)
    console.print("[bold]Next jobs[/] (UTC)")
    for name, at in upcoming(settings, now):
        console.print(f"  {at:%Y-%m-%d %H:%M}  {name}", highlight=False)
    console.print(f"[bold]Digests due[/] (UTC hour): {len(waiting)} now")
    for hour, count in ahead:
        console.print(f"  {hour:%Y-%m-%d %H}:00  {count}", highlight=False)
    console.print(f"  total in the next {hours} h: {sum(c for _, c in ahead)}", highlight=False)


def inbox(
    maildir: Annotated[
        Path | None,
        typer.Option(help="Maildir where bounces and unsubscribe requests arrive."),
    ] = None,
    imap: Annotated[
        str | None,
        typer.Option(
            help="IMAP mailbox where they arrive: imaps://user:password@host[:port]/MAILBOX "
            "(imap:// for plain, with STARTTLS when offered); default DIGEST_INBOX_IMAP_URL.",
        ),
    ] = None,
) -> None:
    """Read the inbox: bounce notifications (hard bounces stop mail at once, soft ones are
    counted) and emailed unsubscribe requests (the mailto: of List-Unsubscribe)."""
    settings = common.settings()
    if maildir is not None and imap is not None:
        fail("give --maildir or --imap, not both", USAGE)
    configured = settings.inbox_imap_url.get_secret_value() or settings.inbox_maildir
    if maildir is None and imap is None and not configured:
        fail(
            "give --maildir DIR or --imap URL (or set DIGEST_INBOX_IMAP_URL or "
            "DIGEST_INBOX_MAILDIR)",
            USAGE,
        )
    with (
        common.engine(settings) as engine,
        common.refusing(ImapError, code=common.FAILED),
        common.refusing(FileNotFoundError, ImapUrlError),
    ):
        report = read_inbox(engine, settings, maildir=maildir, imap=imap)
    *lines, summary = report.lines()
    for line in lines:
        quiet = line.startswith(("bounced:", "unsubscribed:", "already"))
        (console if quiet else err).print(line, highlight=False, markup=False)
    console.print(summary, highlight=False, markup=False)


app.command()(inbox)
app.command("bounces", hidden=True, help="The old name of `digest inbox`.")(inbox)


@app.command("smtp-capture")
def smtp_capture(
    maildir: Annotated[
        Path | None,
        typer.Option(help="Maildir to store messages in [default: DIGEST_VAR_DIR/mail]."),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8025,
) -> None:
    """Run a local SMTP server that stores every message in a Maildir (until Ctrl-C)."""
    from digest.mail.capture import CaptureServer

    maildir = maildir or common.settings().maildir
    with CaptureServer(maildir, host, port):
        console.print(f"capturing mail on {host}:{port} into {maildir}/ (Ctrl-C stops)")
        common.run_until_stopped(lambda stop: stop.wait())


@app.command()
def demo() -> None:
    """Migrate a SQLite database, load sample papers and subscribers, and send their digests."""
    from digest.demo import run_demo

    run_demo(common.settings(), console)

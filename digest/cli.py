"""The `digest` command line: parses arguments, calls the library, prints."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from sqlalchemy import Engine

from digest import db
from digest.bounces import (
    BounceReport,
    ImapError,
    ImapUrlError,
    process_imap,
    process_maildir,
)
from digest.config import Settings, SourceConfig
from digest.mailer import SmtpTransport
from digest.match import InterestError, InterestMatcher
from digest.models import Cadence, DigestStatus, utcnow
from digest.planning import preview as preview_digest
from digest.render import Renderer, RenderError
from digest.sources.files import ingest_path
from digest.sources.runner import ingest_source
from digest.sources.runner import status as source_status
from digest.subscribers import SubscriberError, find
from digest.subscribers import subscribe as add_subscriber
from digest.subscribers import unsubscribe as remove_subscriber
from digest.worker import SendAborted, work
from digest.worker import run as run_digests

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
    engine = db.make_engine((settings or _settings()).sqlalchemy_url)
    try:
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
    db.upgrade(settings.sqlalchemy_url)
    console.print(f"Database is up to date: {settings.sqlalchemy_url}")


class SourceChoice(StrEnum):
    """A source to fetch from (`digest ingest --source`)."""

    arxiv = "arxiv"
    arxiv_api = "arxiv-api"
    hf = "hf"
    feed = "feed"


class FormatChoice(StrEnum):
    """A file format (`digest ingest --format`)."""

    jsonl = "jsonl"
    arxiv = "arxiv"
    arxiv_api = "arxiv-api"
    hf = "hf"
    feed = "feed"


@app.command()
def ingest(
    target: Annotated[
        str | None,
        typer.Argument(help="A file to store (JSONL or a saved response), or a feed URL."),
    ] = None,
    fmt: Annotated[
        FormatChoice | None,
        typer.Option("--format", help="The file's format (default: detected from its content)."),
    ] = None,
    source: Annotated[
        SourceChoice | None,
        typer.Option("--source", help="Fetch from a source instead of reading a file."),
    ] = None,
    category: Annotated[
        list[str] | None,
        typer.Option("--category", "-c", help="arXiv category, e.g. cs.LG; repeat for more."),
    ] = None,
    day: Annotated[
        datetime | None,
        typer.Option(
            "--date", formats=["%Y-%m-%d"], help="hf: the day's list; arxiv-api: the first day."
        ),
    ] = None,
    until: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="arxiv-api: the last day (default: --date)."),
    ] = None,
) -> None:
    """Store papers from a file (format detected) or from a source; bad entries are reported."""
    settings = _settings()
    if source is None:
        if target is None or not Path(target).is_file():
            err.print(f"[red]error:[/] no such file: {target}", highlight=False)
            raise typer.Exit(2)
        with _engine(settings) as engine:
            result = ingest_path(engine, Path(target), FormatChoice(fmt).value if fmt else None)
    else:
        try:
            config = SourceConfig(kind=source.value, categories=category or [], url=target)
        except ValidationError as exc:
            problems = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
            err.print(f"[red]error:[/] {problems}", highlight=False)
            raise typer.Exit(2) from exc
        since = day.date() if day else None
        with _engine(settings) as engine:
            result = ingest_source(
                engine,
                settings,
                config,
                utcnow(),
                since=since,
                until=until.date() if until else since,
            )
    report = result.report
    for problem in report.warnings:
        err.print(f"[yellow]warning[/] {problem}", highlight=False)
    for problem in report.errors:
        err.print(f"[yellow]skipped[/] {problem}", highlight=False)
    if source is None:
        console.print(
            f"{target}: {report.fetched} read, {report.new} new, {report.updated} updated, "
            f"{report.unchanged} unchanged, {len(report.errors)} skipped"
        )
    else:
        console.print(result.line(), highlight=False)
    if result.error:
        err.print(f"[red]error:[/] {result.error}", highlight=False)
        raise typer.Exit(1)


@app.command()
def sources() -> None:
    """Show each source with the result of its last ingest."""
    settings = _settings()
    with _engine(settings) as engine:
        rows = source_status(engine, settings)
    if not rows:
        console.print("no sources configured (DIGEST_SOURCES) and no ingest recorded")
    for name, kind, run in rows:
        if run is None:
            console.print(f"{name} ({kind}): never ingested", highlight=False)
            continue
        outcome = f"error: {run.error}" if run.error else "ok"
        if run.not_modified:
            outcome += " (not modified)"
        console.print(
            f"{name} ({kind}): {run.finished_at:%Y-%m-%d %H:%M} UTC, fetched {run.fetched}, "
            f"new {run.new}, updated {run.updated}, skipped {run.skipped}; {outcome}",
            highlight=False,
        )


@app.command()
def subscribe(
    email: Annotated[str, typer.Argument(help="The subscriber's email address.")],
    interest: Annotated[
        list[str], typer.Option("--interest", "-i", help="An interest line; repeat for more.")
    ],
    timezone: Annotated[str, typer.Option(help="IANA time zone, e.g. Europe/Paris.")] = "UTC",
    hour: Annotated[int, typer.Option(help="Local hour to send at (0-23).")] = 7,
    cadence: Annotated[Cadence, typer.Option(help="How often to send.")] = Cadence.daily,
    max_papers: Annotated[int, typer.Option(help="At most this many papers a digest.")] = 20,
    weekday: Annotated[
        int, typer.Option(help="Weekly cadence: the day to send, 0 = Monday ... 6 = Sunday.")
    ] = 0,
    empty_note: Annotated[
        bool, typer.Option("--empty-note", help="Send a short note when nothing matched.")
    ] = False,
) -> None:
    """Add (or update) an active subscriber with their interests; no confirmation email."""
    try:
        with _engine() as engine:
            subscriber, created = add_subscriber(
                engine,
                email,
                interest,
                timezone=timezone,
                send_hour=hour,
                cadence=cadence,
                max_papers=max_papers,
                weekday=weekday,
                empty_note=empty_note,
            )
    except (SubscriberError, InterestError) as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from exc
    verb = "subscribed" if created else "updated"
    console.print(f"{verb} {subscriber.email} with {len(interest)} interest(s)")


@app.command()
def unsubscribe(email: Annotated[str, typer.Argument(help="The subscriber's address.")]) -> None:
    """Stop sending to a subscriber at once."""
    with _engine() as engine:
        found = remove_subscriber(engine, email)
    if not found:
        err.print(f"[red]error:[/] no subscriber {email}", highlight=False)
        raise typer.Exit(1)
    console.print(f"unsubscribed {email}")


@app.command()
def run(
    now: Annotated[
        datetime | None, typer.Option(help="Plan as of this time instead of now (ISO 8601).")
    ] = None,
) -> None:
    """Plan and send every due digest now, over the SMTP server in Settings."""
    settings = _settings()
    with _engine(settings) as engine:
        planned, sent = asyncio.run(
            run_digests(
                engine, InterestMatcher(), SmtpTransport(settings), Renderer(settings), _now(now)
            )
        )
    if sent.aborted:
        err.print(f"[bold red]sending stopped:[/] the SMTP server refused us: {sent.aborted}")
    for outcome in sent.outcomes:
        if outcome.status is not DigestStatus.sent:
            err.print(
                f"[yellow]{outcome.status}[/] {outcome.email}: {outcome.reply}", highlight=False
            )
    console.print(
        f"planned {planned.planned} digest(s), {planned.empty} with no new matches; "
        f"sent {sent.count(DigestStatus.sent)}, retrying {sent.count(DigestStatus.planned)}, "
        f"failed {sent.count(DigestStatus.failed)}"
    )
    if sent.aborted:
        raise typer.Exit(3)


@app.command()
def worker(
    once: Annotated[bool, typer.Option("--once", help="Send what is due, then exit.")] = False,
) -> None:
    """Send planned digests until stopped (SIGTERM finishes the message in flight)."""
    settings = _settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    async def main(engine: Engine) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await work(
            engine,
            SmtpTransport(settings),
            Renderer(settings),
            clock=utcnow,
            stop=stop,
            poll=settings.worker_poll_seconds,
            once=once,
        )

    with _engine(settings) as engine:
        try:
            asyncio.run(main(engine))
        except SendAborted as exc:
            err.print(f"[bold red]sending stopped:[/] the SMTP server refused us: {exc}")
            raise typer.Exit(3) from exc


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address the web app listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port the web app listens on.")] = 8000,
    no_web: Annotated[
        bool, typer.Option("--no-web", help="Run the scheduler and sender only.")
    ] = False,
) -> None:
    """Run the web app, the scheduler (ingest, plan) and the sender until SIGTERM or Ctrl-C."""
    from digest.service import serve as run_service

    settings = _settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    async def main(engine: Engine) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_service(
            engine,
            settings,
            InterestMatcher(),
            SmtpTransport(settings),
            Renderer(settings),
            stop=stop,
            web=None if no_web else (host, port),
        )

    with _engine(settings) as engine:
        try:
            asyncio.run(main(engine))
        except OSError as exc:
            err.print(f"[red]error:[/] the web app cannot listen on {host}:{port}: {exc}")
            raise typer.Exit(1) from exc
        except SendAborted as exc:
            err.print(f"[bold red]sending stopped:[/] the SMTP server refused us: {exc}")
            raise typer.Exit(3) from exc


@app.command()
def schedule(
    hours: Annotated[int, typer.Option(help="How far ahead to count digests.")] = 24,
) -> None:
    """Show the jobs that run next and how many digests are due each hour ahead."""
    from digest.schedule import upcoming
    from digest.slots import due, forecast

    settings = _settings()
    now = utcnow()
    with _engine(settings) as engine, engine.connect() as conn:
        waiting = due(conn, now, timedelta(hours=settings.catch_up_hours))
        ahead = forecast(conn, now, hours)
    console.print("[bold]Next jobs[/] (UTC)")
    for name, at in upcoming(settings, now):
        console.print(f"  {at:%Y-%m-%d %H:%M}  {name}", highlight=False)
    console.print(f"[bold]Digests due[/] (UTC hour): {len(waiting)} now")
    for hour, count in ahead:
        console.print(f"  {hour:%Y-%m-%d %H}:00  {count}", highlight=False)
    console.print(f"  total in the next {hours} h: {sum(c for _, c in ahead)}", highlight=False)


@app.command()
def preview(
    email: Annotated[str, typer.Argument(help="The subscriber's address.")],
    html: Annotated[bool, typer.Option("--html", help="Print the HTML part.")] = False,
) -> None:
    """Print the digest a subscriber would get now (text, or HTML with --html)."""
    settings = _settings()
    with _engine(settings) as engine:
        with db.session_scope(engine) as session:
            subscriber = find(session, email)
        if subscriber is None or subscriber.id is None:
            err.print(f"[red]error:[/] no subscriber {email}", highlight=False)
            raise typer.Exit(1)
        try:
            result = preview_digest(
                engine, InterestMatcher(), Renderer(settings), subscriber.id, utcnow()
            )
        except RenderError as exc:
            err.print(f"[red]error:[/] {exc}", highlight=False)
            raise typer.Exit(1) from exc
    if result is None:
        err.print(f"nothing new matches the interests of {subscriber.email}")
        return
    rendered, _ = result
    typer.echo(rendered.html if html else f"Subject: {rendered.subject}\n\n{rendered.text}")


@app.command()
def bounces(
    maildir: Annotated[
        Path | None, typer.Option(help="Maildir where bounce notifications (DSNs) arrive.")
    ] = None,
    imap: Annotated[
        str | None,
        typer.Option(
            help="IMAP mailbox where they arrive: imaps://user:password@host[:port]/MAILBOX "
            "(imap:// for plain, with STARTTLS when offered); default DIGEST_BOUNCE_IMAP_URL.",
        ),
    ] = None,
) -> None:
    """Read bounce notifications: hard bounces stop mail at once, soft ones are counted."""
    settings = _settings()
    if maildir is not None and imap is not None:
        err.print("[red]error:[/] give --maildir or --imap, not both", highlight=False)
        raise typer.Exit(2)
    if maildir is None and imap is None and not settings.bounce_imap_url.get_secret_value():
        err.print(
            "[red]error:[/] give --maildir DIR or --imap URL (or set DIGEST_BOUNCE_IMAP_URL)",
            highlight=False,
        )
        raise typer.Exit(2)
    with _engine(settings) as engine:
        report: BounceReport
        try:
            if maildir is not None:
                report = process_maildir(engine, settings, maildir)
            else:
                report = process_imap(engine, settings, imap)
        except (FileNotFoundError, ImapUrlError) as exc:
            err.print(f"[red]error:[/] {exc}", highlight=False)
            raise typer.Exit(2) from exc
        except ImapError as exc:
            err.print(f"[red]error:[/] {exc}", highlight=False)
            raise typer.Exit(1) from exc
    for address in report.bounced:
        console.print(f"bounced: {address}", highlight=False)
    for what in report.unmatched:
        err.print(f"[yellow]no subscriber for[/] {what}", highlight=False)
    for subject in report.ignored:
        err.print(f"[yellow]not a delivery status notification:[/] {subject}", highlight=False)
    for problem in report.failed:
        err.print(f"[red]unreadable:[/] {problem}", highlight=False)
    console.print(
        f"{report.read} read: {report.hard} hard and {report.soft} soft bounces, "
        f"{len(report.bounced)} subscriber(s) marked bounced, {len(report.unmatched)} unmatched, "
        f"{len(report.ignored)} ignored"
        + (f", {len(report.failed)} unreadable" if report.failed else "")
    )


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="One interest line, as a subscriber types it.")],
    from_: Annotated[
        Path | None,
        typer.Option(
            "--from", exists=True, dir_okay=False, help="Search this JSONL file, not the database."
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per match.")
    ] = False,
    limit: Annotated[int, typer.Option(help="Show at most this many matches.")] = 20,
) -> None:
    """Evaluate one interest line against the stored papers (or a file) and print the matches."""
    from digest.match.search import file_papers, search, stored_papers

    if from_ is not None:
        papers, problems = file_papers(from_)
        for problem in problems:
            err.print(f"[yellow]skipped[/] {problem}", highlight=False)
    else:
        with _engine() as engine, engine.connect() as conn:
            papers = stored_papers(conn)
    try:
        found = search(papers, query)
    except InterestError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from exc
    for item in found[:limit]:
        if as_json:
            record = {"id": item.paper.id, "title": item.paper.title}
            record |= {"score": round(item.score, 4), "matched": list(item.matched)}
            typer.echo(json.dumps(record, ensure_ascii=False))
        else:
            console.print(
                f"{item.score:7.3f}  {escape(f'[{item.paper.id}] {item.paper.title}')}  "
                f"[dim]({escape(', '.join(item.matched))})[/]",
                highlight=False,
            )
    if not as_json:
        shown = min(limit, len(found))
        console.print(f"{len(found)} of {len(papers)} paper(s) match; {shown} shown")


@app.command()
def explain(
    email: Annotated[str, typer.Argument(help="The subscriber's address.")],
    paper_id: Annotated[int, typer.Argument(help="The paper's id in the database.")],
) -> None:
    """Show which of a subscriber's interest lines match a paper, and why."""
    from digest.match.search import explain as explain_paper

    try:
        with _engine() as engine:
            paper, verdicts = explain_paper(engine, email, paper_id)
    except (LookupError, SubscriberError) as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    console.print(f"[{paper.id}] {paper.title}", highlight=False, markup=False)
    for verdict in verdicts:
        if verdict.matches:
            why = ", ".join(verdict.matched)
            line = f"  match  {verdict.line}  score {verdict.score:.3f}: {why}"
            console.print(line, highlight=False, markup=False)
        else:
            missing = ", ".join(verdict.missing) or "an excluded term is present"
            line = f"  no     {verdict.line}  missing: {missing}"
            console.print(line, highlight=False, markup=False)
    if not any(v.matches for v in verdicts):
        console.print("no interest line matches this paper")


@app.command("smtp-capture")
def smtp_capture(
    maildir: Annotated[Path, typer.Option(help="Maildir to store messages in.")] = Path("var/mail"),
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8025,
) -> None:
    """Run a local SMTP server that stores every message in a Maildir (until Ctrl-C)."""
    from digest.capture import CaptureServer

    with CaptureServer(maildir, host, port):
        console.print(f"capturing mail on {host}:{port} into {maildir}/ (Ctrl-C stops)")
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(asyncio.Event().wait())


@app.command()
def demo() -> None:
    """Migrate a SQLite database, load sample papers and subscribers, and send their digests."""
    from digest.demo import run_demo

    run_demo(_settings(), console)

"""`digest demo`: the whole path on embedded defaults, from sample papers to a Maildir."""

from __future__ import annotations

import asyncio
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from digest import db
from digest.clock import utcnow
from digest.config import Settings, SmtpSecurity
from digest.delivery.sender import run
from digest.delivery.transport import SmtpTransport
from digest.mail.capture import CaptureServer, find_message
from digest.mail.render import Renderer
from digest.match.engine import InterestMatcher
from digest.models import DigestStatus
from digest.sources.ingest import ingest_file
from digest.subscribers import subscribe

SAMPLE_PAPERS = Path(__file__).parent / "data" / "sample_papers.jsonl"

# 60 real arXiv entries (their metadata is CC0): the 20 of an API query for cs.LG OR cs.AI
# and 40 of the cs.AI listing feed, converted from recorded responses to JSONL.
DEMO_SUBSCRIBERS: list[tuple[str, list[str], str, int]] = [
    ("ada@example.org", ["agents", "diffusion"], "Europe/London", 10),
    (
        "grace@example.org",
        ['"mixture of experts"', "RAG", 'author:"Jian Yang"'],
        "America/New_York",
        20,
    ),
    ("alan@example.org", ['"reinforcement learning"', "cat:cs.CL reasoning"], "Asia/Tokyo", 20),
]


def save_html_part(message_file: Path, target: Path) -> Path:
    """Write the HTML part of a stored message to `target` and return it."""
    message = message_from_bytes(message_file.read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    part = message.get_body(preferencelist=("html",))
    if part is None:
        raise ValueError(f"{message_file} has no HTML part")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(part.get_content(), encoding="utf-8")
    return target


def run_demo(settings: Settings, console: Console) -> None:
    """Migrate, ingest the bundled sample, add three subscribers, send over local SMTP."""
    url = settings.sqlalchemy_url
    db.upgrade(url)
    console.print(f"[bold]Database[/] {url} is migrated.")
    engine = db.make_engine(url)
    try:
        _demo(settings, console, engine)
    finally:
        engine.dispose()


def _demo(settings: Settings, console: Console, engine: Engine) -> None:
    report = ingest_file(engine, SAMPLE_PAPERS)
    console.print(
        f"[bold]Ingested[/] {report.fetched} sample papers: {report.new} new, "
        f"{report.unchanged + report.updated} already stored."
    )
    for email, interests, timezone, cap in DEMO_SUBSCRIBERS:
        subscribe(engine, email, interests, timezone=timezone, max_papers=cap)
    console.print(f"[bold]Subscribers[/] {', '.join(e for e, *_ in DEMO_SUBSCRIBERS)}.")

    maildir = settings.maildir
    with CaptureServer(maildir) as server:
        smtp = settings.model_copy(
            update={
                "smtp_host": server.host,
                "smtp_port": server.port,
                "smtp_security": SmtpSecurity.none,
                "smtp_user": None,
            }
        )
        console.print(
            f"[bold]SMTP capture[/] listening on {server.host}:{server.port}, "
            f"storing into {maildir}/"
        )
        planned, sent = asyncio.run(
            run(engine, InterestMatcher(), SmtpTransport(smtp), Renderer(smtp), utcnow())
        )
    for outcome in sent.outcomes:
        if outcome.status is not DigestStatus.sent:
            console.print(f"[yellow]{outcome.email}: {outcome.status}[/] ({outcome.reply})")
    delivered = [o for o in sent.outcomes if o.status is DigestStatus.sent]
    if not sent.outcomes:
        console.print(
            "[bold green]Nothing new to send:[/] every demo subscriber already has this "
            f"period's digest and no new paper matched. Earlier messages are in {maildir}/."
        )
        return
    table = Table(title="Digests sent")
    table.add_column("Subscriber")
    table.add_column("Papers", justify="right")
    table.add_column("Message file", overflow="fold")
    files = []
    for outcome in delivered:
        path = find_message(maildir, outcome.message_id or "")
        files.append(path)
        table.add_row(outcome.email, str(outcome.papers), str(path or "(not found)"))
    console.print(table)
    if planned.empty:
        console.print(f"{planned.empty} subscriber(s) had no new matching papers: no email.")
    first = next((path for path in files if path is not None), None)
    if first is not None:
        html = save_html_part(first, maildir.parent / "digest-preview.html")
        console.print(f"Open one digest in a browser: [bold]{html.resolve()}[/]")

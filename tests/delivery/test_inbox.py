"""Emailed unsubscribe requests (the mailto: of List-Unsubscribe), read from a real IMAP
server (Dovecot on loopback) as `digest inbox` and the scheduler read them."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy import Engine
from typer.testing import CliRunner

from digest.cli import app
from digest.config import Settings
from digest.match.engine import InterestMatcher
from digest.models import SUBSCRIBERS
from digest.serve.service import Service
from digest.subscribers import subscribe
from tests.kit.imap import Dovecot, start_dovecot
from tests.kit.seeds import T0, dsn, seed, send_digest
from tests.kit.smtp import SmtpSink

runner = CliRunner()
PEOPLE = ("alice", "bob", "carol", "dave", "erin", "frank", "gina", "hal", "ivy")


@pytest.fixture
def dovecot(tmp_path: Path) -> Iterator[Dovecot]:
    """A started Dovecot with an empty mailbox."""
    yield from start_dovecot(tmp_path / "dovecot")


def statuses(engine: Engine) -> dict[str, str]:
    """Each subscriber's status by name."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(SUBSCRIBERS.c.email, SUBSCRIBERS.c.status)).all()
    return {email.split("@")[0]: status for email, status in rows}


def mailto(message: EmailMessage) -> tuple[str, str]:
    """The (address, subject) of the mailto: in a digest's List-Unsubscribe header."""
    found = re.search(r"<mailto:([^>]+)>", str(message["List-Unsubscribe"]))
    assert found is not None, message["List-Unsubscribe"]
    parts = urlsplit("mailto:" + found[1])
    return unquote(parts.path), parse_qs(parts.query)["subject"][0]


def unsubscribe_url(message: EmailMessage) -> str:
    """The https unsubscribe link of a digest's List-Unsubscribe header."""
    found = re.search(r"<(https://[^>]+)>", str(message["List-Unsubscribe"]))
    assert found is not None
    return found[1]


def request(
    sender: str,
    to: str,
    subject: str,
    *,
    vouched_by: str | None = None,
    domain: str = "example.org",
    dmarc: str = "dmarc=pass (p=reject)",
    headers: str = "",
    body: str = "Sent by a mail client.",
) -> bytes:
    """An email as a mail client sends it for a mailto: link, as our server stores it."""
    stamp = (
        f"Authentication-Results: {vouched_by}; spf=pass smtp.mailfrom={domain}; "
        f"{dmarc} header.from={domain}\r\n"
        if vouched_by
        else ""
    )
    return (
        f"{stamp}From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n{headers}"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    ).encode()


@pytest.fixture
def digests(
    engine: Engine, settings: Settings, smtp: SmtpSink, dovecot: Dovecot
) -> dict[str, EmailMessage]:
    """Each subscriber's first digest, sent through the SMTP server by a deployment that
    reads the inbox (so its List-Unsubscribe offers a mailto:)."""
    seed(engine)
    for name in PEOPLE:
        subscribe(engine, f"{name}@example.org", ["diffusion"])
    send_digest(
        engine, settings.model_copy(update={"inbox_imap_url": SecretStr(dovecot.url())}), T0
    )
    return {name: smtp.to(f"{name}@example.org")[0] for name in PEOPLE}


def test_emailed_unsubscribe_requests_are_honoured_once_and_forgeries_refused(
    engine: Engine,
    cli_env: dict[str, str],
    dovecot: Dovecot,
    digests: dict[str, EmailMessage],
) -> None:
    address, subject = mailto(digests["alice"])
    assert address == "digest@digest.test" and subject.startswith("unsubscribe ")
    _, bobs = mailto(digests["bob"])
    dovecot.append(
        # What a mail client sends for the header's mailto: (the token names alice).
        request("Alice <alice@example.org>", address, subject),
        # Sent from another address, and pressed twice: still alice's token, done once.
        request("alice.private@gmail.example", address, "Re: " + subject),
        # No token, but our own server (authserv-id mx.digest.test) checked the sender.
        request("bob@example.org", address, "unsubscribe", vouched_by="mx.digest.test"),
        # No token, and the only vouching comes from a server that is not ours.
        request("carol@example.org", address, "unsubscribe", vouched_by="mx.evil.test"),
        # Vouched for, but for another domain than the one the From address claims.
        request(
            "frank@example.org",
            address,
            "unsubscribe",
            vouched_by="mx.digest.test",
            domain="evil.example",
        ),
        # An out-of-office reply, and a person's reply, quoting the digest with its links:
        # neither is a request.
        request(
            "gina@example.org",
            address,
            "Auto: " + str(digests["gina"]["Subject"]),
            headers="Auto-Submitted: auto-replied\r\n",
            body=f"I am away.\r\n> {mailto(digests['gina'])[1]}\r\n> "
            + unsubscribe_url(digests["gina"]),
        ),
        request(
            "hal@example.org",
            address,
            "Re: " + str(digests["hal"]["Subject"]),
            body=f"Thanks!\r\n> unsubscribe: {unsubscribe_url(digests['hal'])}",
        ),
        # Our server's header, but its dmarc result is not a pass (x-dmarc is not dmarc).
        request(
            "ivy@example.org",
            address,
            "unsubscribe",
            vouched_by="mx.digest.test",
            dmarc="x-dmarc=pass; dmarc=fail",
        ),
        # A tampered token: refused, whoever it claims to be.
        request("dave@example.org", address, bobs[:-3] + "AAA"),
        dsn(recipient="erin@example.org", action="failed", status="5.1.1", message_id=None),
    )
    env = {**cli_env, "DIGEST_INBOX_AUTHSERV_ID": "mx.digest.test"}

    result = runner.invoke(app, ["inbox", "--imap", dovecot.url()], env=env)

    assert result.exit_code == 0, result.output
    assert statuses(engine) == {
        "alice": "unsubscribed",
        "bob": "unsubscribed",
        "carol": "active",
        "dave": "active",
        "erin": "bounced",
        "frank": "active",
        "gina": "active",
        "hal": "active",
        "ivy": "active",
    }
    assert "unsubscribed: alice@example.org" in result.output
    assert "already unsubscribed: alice@example.org" in result.output
    assert "refused: unsubscribe request from carol@example.org: it holds no link token" in (
        result.output
    )
    assert "refused: unsubscribe request from dave@example.org: its link token is not valid" in (
        result.output
    )
    assert "10 read: 1 hard and 0 soft bounces, 1 subscriber(s) marked bounced" in result.output
    assert "2 unsubscribed by email" in result.output
    again = runner.invoke(app, ["inbox", "--imap", dovecot.url()], env=env)
    assert "0 read" in again.output


def test_the_scheduler_reads_the_configured_inbox(
    engine: Engine, settings: Settings, dovecot: Dovecot, digests: dict[str, EmailMessage]
) -> None:
    address, subject = mailto(digests["carol"])
    dovecot.append(request("carol@example.org", address, subject))
    reading = settings.model_copy(update={"inbox_imap_url": SecretStr(dovecot.url())})
    service = Service(engine, reading, InterestMatcher())
    assert asyncio.run(service.inbox()) is None  # not the leader: nothing read
    assert statuses(engine)["carol"] == "active"

    service.leading = True
    report = asyncio.run(service.inbox())

    assert report is not None and report.unsubscribed == ["carol@example.org"]
    assert statuses(engine)["carol"] == "unsubscribed"
    unreadable = settings.model_copy(update={"inbox_imap_url": SecretStr("imap://nobody")})
    broken = Service(engine, unreadable, InterestMatcher())
    broken.leading = True
    assert asyncio.run(broken.inbox()) is None  # logged; the next run tries again

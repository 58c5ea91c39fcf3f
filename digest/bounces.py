"""Asynchronous bounces: read delivery status notifications (RFC 3464) and act on them.

A notification is matched to its digest by the original Message-ID (ours encode the
digest id), else to a subscriber by the VERP return path or the failed recipient. A hard
bounce (Action: failed, Status 5.x.x) stops mail to the subscriber at once; soft ones
(delayed, 4.x.x) count towards `soft_bounce_threshold`.
"""

from __future__ import annotations

import mailbox
import re
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.parser import HeaderParser
from email.utils import getaddresses, parseaddr
from enum import StrEnum
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import Engine

from digest.config import Settings
from digest.models import DIGESTS, SUBSCRIBERS, SubscriberStatus

_OUR_MESSAGE_ID = re.compile(r"<digest\.(\d+)\.")
_STATUS = re.compile(r"([245])\.\d{1,3}\.\d{1,3}")


class Kind(StrEnum):
    """How serious a bounce is."""

    hard = "hard"
    soft = "soft"


@dataclass(frozen=True)
class Bounce:
    """What one notification says about one recipient."""

    kind: Kind
    recipient: str | None
    status: str
    message_id: str | None
    diagnostic: str = ""


@dataclass
class BounceReport:
    """What one pass over a mailbox did."""

    read: int = 0
    hard: int = 0
    soft: int = 0
    bounced: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def _fields(part: Message) -> list[Message]:
    """The field blocks of a message/delivery-status part (per message, per recipient)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [block for block in payload if isinstance(block, Message)]
    return [HeaderParser().parsestr(block) for block in str(payload).split("\n\n") if block]


def _original_message_id(report: Message) -> str | None:
    for part in report.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                return str(inner[0].get("Message-ID", "")).strip() or None
        if kind == "text/rfc822-headers":
            headers = HeaderParser().parsestr(str(part.get_payload(decode=False)))
            return str(headers.get("Message-ID", "")).strip() or None
    return None


def parse(message: Message) -> list[Bounce]:
    """The bounces a notification reports; empty when it is not a DSN or reports success."""
    if message.get_content_type() != "multipart/report":
        return []
    status_part = next(
        (p for p in message.walk() if p.get_content_type() == "message/delivery-status"), None
    )
    if status_part is None:
        return []
    message_id = _original_message_id(message)
    bounces = []
    for block in _fields(status_part)[1:]:
        action = str(block.get("Action", "")).strip().lower()
        found = _STATUS.search(str(block.get("Status", "")))
        status = found.group(0) if found else ""
        if action == "failed" and status.startswith("5"):
            kind = Kind.hard
        elif action in ("delayed", "failed") or status.startswith("4"):
            kind = Kind.soft
        else:
            continue  # delivered, relayed, expanded: not a bounce
        recipient = str(block.get("Final-Recipient") or block.get("Original-Recipient") or "")
        address = recipient.split(";", 1)[-1].strip() or None
        diagnostic = " ".join(str(block.get("Diagnostic-Code", "")).split())
        bounces.append(Bounce(kind, address, status, message_id, diagnostic))
    return bounces


def _verp_pattern(settings: Settings) -> re.Pattern[str] | None:
    """A regex recovering the recipient from a VERP return path like bounces+{local}={domain}@x."""
    template = settings.return_path
    if not template or "{local}" not in template:
        return None
    pattern = re.escape(template)
    pattern = pattern.replace(r"\{local\}", r"(?P<local>.+?)")
    pattern = pattern.replace(r"\{domain\}", r"(?P<domain>[^@]+?)")
    return re.compile(f"^{pattern}$", re.IGNORECASE)


def _verp_recipient(message: Message, settings: Settings) -> str | None:
    pattern = _verp_pattern(settings)
    if pattern is None:
        return None
    headers = [
        str(v) for k in ("Delivered-To", "X-Original-To", "To") for v in message.get_all(k, [])
    ]
    for _, address in getaddresses(headers):
        found = pattern.match(address)
        if found:
            domain = found.groupdict().get("domain")
            return f"{found.group('local')}@{domain}" if domain else found.group("local")
    return None


def apply(engine: Engine, settings: Settings, message: Message, report: BounceReport) -> None:
    """Act on one notification: find the subscriber, record a hard or soft bounce."""
    bounces = parse(message)
    subject = " ".join(str(message.get("Subject", "")).split())[:80]
    if not bounces:
        report.ignored.append(subject or "(no subject)")
        return
    verp = _verp_recipient(message, settings)
    with engine.begin() as conn:
        for bounce in bounces:
            subscriber_id = None
            found = _OUR_MESSAGE_ID.match(bounce.message_id or "")
            if found:
                subscriber_id = conn.execute(
                    sa.select(DIGESTS.c.subscriber_id).where(DIGESTS.c.id == int(found[1]))
                ).scalar()
            for address in (verp, bounce.recipient):
                if subscriber_id is None and address:
                    subscriber_id = conn.execute(
                        sa.select(SUBSCRIBERS.c.id).where(
                            SUBSCRIBERS.c.email == parseaddr(address)[1].lower()
                        )
                    ).scalar()
            if subscriber_id is None:
                report.unmatched.append(bounce.recipient or subject)
                continue
            setattr(report, bounce.kind.value, getattr(report, bounce.kind.value) + 1)
            if _record(conn, subscriber_id, bounce.kind, settings.soft_bounce_threshold):
                email = conn.execute(
                    sa.select(SUBSCRIBERS.c.email).where(SUBSCRIBERS.c.id == subscriber_id)
                ).scalar_one()
                report.bounced.append(email)


def _record(conn: sa.Connection, subscriber_id: int, kind: Kind, threshold: int) -> bool:
    """Count the bounce; True when it made the subscriber bounced."""
    active = sa.and_(
        SUBSCRIBERS.c.id == subscriber_id, SUBSCRIBERS.c.status == SubscriberStatus.active
    )
    if kind is Kind.soft:
        conn.execute(
            sa.update(SUBSCRIBERS)
            .where(SUBSCRIBERS.c.id == subscriber_id)
            .values(soft_bounces=SUBSCRIBERS.c.soft_bounces + 1)
        )
        active = sa.and_(active, SUBSCRIBERS.c.soft_bounces >= threshold)
    done = conn.execute(
        sa.update(SUBSCRIBERS).where(active).values(status=SubscriberStatus.bounced)
    )
    return done.rowcount == 1


def process_maildir(engine: Engine, settings: Settings, path: Path) -> BounceReport:
    """Read every unseen message of a Maildir, act on it, and mark it seen."""
    if not (path / "cur").is_dir() or not (path / "new").is_dir():
        raise FileNotFoundError(f"{path} is not a Maildir (it needs cur/ and new/)")
    box = mailbox.Maildir(path, factory=None, create=False)
    report = BounceReport()
    for key in list(box.iterkeys()):
        stored = box.get_message(key)
        if "S" in stored.get_flags():
            continue
        report.read += 1
        with box.get_file(key) as handle:
            message = message_from_bytes(handle.read(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        apply(engine, settings, message, report)
        stored.set_subdir("cur")
        stored.add_flag("S")
        box[key] = stored
    return report

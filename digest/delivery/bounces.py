"""Asynchronous bounces: delivery status notifications (RFC 3464) and what they do.

`digest.delivery.inbox` reads the mailbox and hands each notification here.

A notification is matched to its digest by the original Message-ID (ours encode the
digest id) when the recipient it names is that digest's subscriber (two deployments may
share one bounce mailbox), else to a subscriber by the VERP return path or the failed
recipient. A hard bounce (Action: failed, Status 5.x.x) stops mail to the subscriber at
once; soft ones (delayed, 4.x.x) count towards `soft_bounce_threshold`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses, parseaddr
from enum import StrEnum

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
    original_recipient: str | None = None

    def names(self, address: str) -> bool:
        """True when the notification names `address` as its final or original recipient."""
        named = {parseaddr(a)[1].lower() for a in (self.recipient, self.original_recipient) if a}
        return address.lower() in named


@dataclass
class BounceReport:
    """What the notifications read so far did."""

    hard: int = 0
    soft: int = 0
    bounced: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)


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


def _address(block: Message, which: str) -> str | None:
    """The address of a Final-Recipient or Original-Recipient field ("rfc822; a@b")."""
    return str(block.get(f"{which}-Recipient", "")).split(";", 1)[-1].strip() or None


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
        final, original = (_address(block, name) for name in ("Final", "Original"))
        diagnostic = " ".join(str(block.get("Diagnostic-Code", "")).split())
        bounces.append(Bounce(kind, final or original, status, message_id, diagnostic, original))
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


def apply(engine: Engine, settings: Settings, message: Message, report: BounceReport) -> bool:
    """Act on one message if it is a notification (False when it is not): find the
    subscriber, record a hard or soft bounce."""
    bounces = parse(message)
    if not bounces:
        return False
    verp = _verp_recipient(message, settings)
    subject = " ".join(str(message.get("Subject", "")).split())[:80]
    with engine.begin() as conn:
        for bounce in bounces:
            subscriber_id = _by_message_id(conn, bounce, verp)
            for address in (verp, bounce.recipient, bounce.original_recipient):
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
    return True


def _by_message_id(conn: sa.Connection, bounce: Bounce, verp: str | None) -> int | None:
    """The subscriber of the digest the original Message-ID names, if the notification
    (its recipients, or the VERP address) names that subscriber too, or names nobody."""
    found = _OUR_MESSAGE_ID.match(bounce.message_id or "")
    if not found:
        return None
    row = conn.execute(
        sa.select(SUBSCRIBERS.c.id, SUBSCRIBERS.c.email)
        .join(DIGESTS, DIGESTS.c.subscriber_id == SUBSCRIBERS.c.id)
        .where(DIGESTS.c.id == int(found[1]))
    ).first()
    if row is None:
        return None
    named = [a for a in (bounce.recipient, bounce.original_recipient, verp) if a]
    if named and not bounce.names(row.email) and (verp or "").lower() != row.email:
        return None  # another deployment's digest with the same number
    return int(row.id)


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

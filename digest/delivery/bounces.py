"""Asynchronous bounces: read delivery status notifications (RFC 3464) and act on them.

Notifications are read from a Maildir or an IMAP mailbox; each unseen message is read
once and then flagged seen.

A notification is matched to its digest by the original Message-ID (ours encode the
digest id), else to a subscriber by the VERP return path or the failed recipient. A hard
bounce (Action: failed, Status 5.x.x) stops mail to the subscriber at once; soft ones
(delayed, 4.x.x) count towards `soft_bounce_threshold`.
"""

from __future__ import annotations

import contextlib
import imaplib
import mailbox
import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.parser import HeaderParser
from email.utils import getaddresses, parseaddr
from enum import StrEnum
from pathlib import Path
from urllib.parse import unquote, urlsplit

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
    failed: list[str] = field(default_factory=list)


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
            _apply_raw(engine, settings, handle.read(), report, f"message {key}")
        stored.set_subdir("cur")
        stored.add_flag("S")
        box[key] = stored
    return report


def _apply_raw(
    engine: Engine, settings: Settings, raw: bytes, report: BounceReport, where: str
) -> None:
    """Parse and act on one message; a message that cannot be parsed is reported."""
    try:
        message = message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        apply(engine, settings, message, report)
    except sa.exc.SQLAlchemyError:
        raise
    except Exception as exc:  # one malformed message must not stop the rest
        report.failed.append(f"{where}: cannot parse it ({type(exc).__name__}: {exc})")


class ImapError(Exception):
    """The IMAP mailbox cannot be read; the message says which step failed and why."""


class ImapUrlError(ValueError):
    """An IMAP URL that is missing or malformed; the message says what is wrong."""


@dataclass(frozen=True)
class ImapUrl:
    """Where bounce notifications are read: imaps://user:password@host[:port]/MAILBOX."""

    tls: bool
    host: str
    port: int
    user: str
    password: str
    mailbox: str

    def __str__(self) -> str:
        scheme = "imaps" if self.tls else "imap"
        return f"{scheme}://{self.user}@{self.host}:{self.port}/{self.mailbox}"


def parse_imap_url(url: str) -> ImapUrl:
    """Split an imap:// or imaps:// URL; ImapUrlError says what is wrong with it."""
    parts = urlsplit(url.strip())
    shown = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    if parts.scheme not in ("imap", "imaps"):
        raise ImapUrlError(f"{shown!r}: an IMAP URL starts with imaps:// or imap://")
    if not parts.hostname:
        raise ImapUrlError(f"{shown!r} has no host: imaps://user:password@host[:port]/MAILBOX")
    if not parts.username or parts.password is None:
        raise ImapUrlError(f"{shown!r} needs a user and password: imaps://user:password@host/...")
    try:
        port = parts.port
    except ValueError as exc:
        raise ImapUrlError(f"{shown!r} has a bad port: {exc}") from None
    mailbox_name = unquote(parts.path.lstrip("/")) or "INBOX"
    if not mailbox_name.isascii() or any(c in mailbox_name for c in "\r\n"):
        raise ImapUrlError(
            f"mailbox {mailbox_name!r}: only plain ASCII mailbox names are supported"
        )
    tls = parts.scheme == "imaps"
    return ImapUrl(
        tls=tls,
        host=parts.hostname,
        port=port or (993 if tls else 143),
        user=unquote(parts.username),
        password=unquote(parts.password),
        mailbox=mailbox_name,
    )


def _quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _text(data: Sequence[object]) -> str:
    """The human-readable part of a server reply."""
    return " ".join(d.decode(errors="replace") if isinstance(d, bytes) else str(d) for d in data)


def _body(data: Sequence[object]) -> bytes | None:
    """The message in a FETCH reply (typeshed's types hide the (envelope, body) tuples)."""
    for item in data:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes):
            return item[1]
    return None


def _connect(target: ImapUrl, timeout: float) -> imaplib.IMAP4:
    """Open the connection: TLS for imaps, STARTTLS for imap when the server offers it."""
    context = ssl.create_default_context()
    try:
        if target.tls:
            return imaplib.IMAP4_SSL(target.host, target.port, ssl_context=context, timeout=timeout)
        client = imaplib.IMAP4(target.host, target.port, timeout=timeout)
        if "STARTTLS" in client.capabilities:
            try:
                client.starttls(context)
            except (OSError, imaplib.IMAP4.error):
                with contextlib.suppress(OSError):  # a failed handshake leaves the socket closed
                    client.shutdown()
                raise
        return client
    except (OSError, imaplib.IMAP4.error) as exc:
        raise ImapError(
            f"cannot connect to IMAP server {target.host}:{target.port}: {exc}"
        ) from exc


def process_imap(
    engine: Engine, settings: Settings, url: str | None = None, *, timeout: float = 30.0
) -> BounceReport:
    """Read every unseen message of an IMAP mailbox, act on it, and flag it \\Seen."""
    url = url or settings.bounce_imap_url.get_secret_value()
    if not url:
        raise ImapUrlError("no IMAP mailbox: pass an imaps:// URL or set DIGEST_BOUNCE_IMAP_URL")
    target = parse_imap_url(url)
    client = _connect(target, timeout)
    report = BounceReport()
    try:
        try:
            client.login(target.user, target.password)
        except imaplib.IMAP4.error as exc:
            raise ImapError(
                f"{target}: the server refused the login of {target.user!r}: {_text(exc.args)}"
            ) from exc
        kind, data = client.select(_quoted(target.mailbox))
        if kind != "OK":
            raise ImapError(f"{target}: cannot open mailbox {target.mailbox!r}: {_text(data)}")
        kind, data = client.uid("SEARCH", "UNSEEN")
        if kind != "OK":
            raise ImapError(f"{target}: cannot search for unseen messages: {_text(data)}")
        uids = data[0].split() if data and isinstance(data[0], bytes) else []
        for uid in (u.decode() for u in uids):
            report.read += 1
            kind, data = client.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = _body(data)
            where = f"message UID {uid}"
            if kind != "OK" or raw is None:
                report.failed.append(f"{where}: the server did not return it: {_text(data)}")
            else:
                _apply_raw(engine, settings, raw, report, where)
            kind, data = client.uid("STORE", uid, "+FLAGS.SILENT", "(\\Seen)")
            if kind != "OK":  # stop here: unflagged messages are read again on the next run
                raise ImapError(f"{target}: cannot flag {where} \\Seen: {_text(data)}")
        client.close()
    except (OSError, imaplib.IMAP4.error) as exc:
        raise ImapError(f"{target}: the connection failed: {exc}") from exc
    finally:
        client.logout()  # never raises; closes the socket in any case
    return report

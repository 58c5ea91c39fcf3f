"""The inbox: bounce notifications and emailed unsubscribe requests, read and acted on.

They are read from a Maildir or an IMAP mailbox; each unseen message is read once and
then flagged seen.

A notification (DSN) goes to `digest.delivery.bounces`. Any other message a person sent
(not an auto-reply) is an unsubscribe request when its subject is "unsubscribe TOKEN",
as the mailto: of every digest's List-Unsubscribe header writes it ("Re:" before it is
fine): the token of one of our unsubscribe links names the subscriber, whoever sent the
message. A subject of just "unsubscribe" is honoured only when the sender's address is a
subscriber and the receiving mail server vouched for it: its Authentication-Results
header (RFC 8601, authserv-id `inbox_authserv_id`) says dmarc=pass for that address's
domain. A digest quoted in a reply never counts. Anything else is reported and left
alone.
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
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import unquote, urlsplit

import sqlalchemy as sa
from sqlalchemy import Engine

from digest import subscribers
from digest.clock import utcnow
from digest.config import Settings
from digest.delivery import bounces
from digest.tokens import UNSUBSCRIBE, TokenError, read_token

# The whole subject, as the mailto: writes it (a client may put "Re:" before it): a digest
# quoted in a reply or an auto-reply holds the word and the link, but not as its subject.
_REQUEST = re.compile(
    r"^(?:(?:re|aw|sv|fwd?)\s*:\s*)*unsubscribe(?:\s+(?P<token>[\w-]+\.[\w-]+\.[\w-]+))?\s*$",
    re.IGNORECASE,
)
_AUTOMATIC = ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress")


@dataclass
class InboxReport:
    """What one pass over a mailbox did."""

    read: int = 0
    bounces: bounces.BounceReport = field(default_factory=bounces.BounceReport)
    unsubscribed: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line: how many messages did what."""
        found = self.bounces
        return (
            f"{self.read} read: {found.hard} hard and {found.soft} soft bounces, "
            f"{len(found.bounced)} subscriber(s) marked bounced, {len(found.unmatched)} unmatched, "
            f"{len(self.unsubscribed)} unsubscribed by email, {len(self.ignored)} ignored"
            + (f", {len(self.refused)} refused" if self.refused else "")
            + (f", {len(self.failed)} unreadable" if self.failed else "")
        )

    def lines(self) -> list[str]:
        """What happened to whom, one line each, then the summary."""
        return [
            *(f"bounced: {a}" for a in self.bounces.bounced),
            *(f"unsubscribed: {a}" for a in self.unsubscribed),
            *(f"already unsubscribed: {a}" for a in self.already),
            *(f"no subscriber for {what}" for what in self.bounces.unmatched),
            *(f"refused: {what}" for what in self.refused),
            *(f"not a bounce or an unsubscribe request: {s}" for s in self.ignored),
            *(f"unreadable: {problem}" for problem in self.failed),
            self.summary(),
        ]


def _automatic(message: Message) -> bool:
    """True for a message a program sent on its own (RFC 3834 auto-replies and the like)."""
    submitted = str(message.get("Auto-Submitted", "no")).strip().lower()
    precedence = str(message.get("Precedence", "")).strip().lower()
    return (
        submitted != "no"
        or precedence in ("auto_reply", "bulk", "junk", "list")
        or any(message.get(name) for name in _AUTOMATIC)
    )


def _vouched(message: Message, settings: Settings, address: str) -> bool:
    """True when our own mail server's Authentication-Results says dmarc=pass for the
    domain of `address`: the topmost such header, which must carry our authserv-id (the
    server is to remove incoming ones that claim it, RFC 8601 section 5), holding a
    result whose method is exactly `dmarc`, with `header.from` that domain."""
    results = message.get_all("Authentication-Results", [])
    if not settings.inbox_authserv_id or not results:
        return False
    authserv, *found = " ".join(str(results[0]).split()).split(";")
    if authserv.split()[:1] != [settings.inbox_authserv_id]:
        return False
    domain = address.rpartition("@")[2].lower()
    for result in found:
        words = result.split()
        properties = {k.lower(): v.lower() for k, _, v in (w.partition("=") for w in words[1:])}
        if words and words[0].lower() == "dmarc=pass" and properties.get("header.from") == domain:
            return True
    return False


def _unsubscribe_request(
    engine: Engine, settings: Settings, message: Message, report: InboxReport
) -> None:
    """Honour an emailed unsubscribe request (see the module's docstring), or report it."""
    sender = parseaddr(str(message.get("From", "")))[1].lower()
    subject = " ".join(str(message.get("Subject", "")).split())
    request = _REQUEST.match(subject)
    if request is None or _automatic(message):
        report.ignored.append(subject[:80] or "(no subject)")
        return
    subscriber_id = None
    token = request["token"]
    if token:
        with contextlib.suppress(TokenError):
            key = settings.secret_key.get_secret_value()
            subscriber_id = read_token(key, UNSUBSCRIBE, token)[0]
    if subscriber_id is None and sender and _vouched(message, settings, sender):
        with engine.connect() as conn:
            row = subscribers.find(conn, sender)
        subscriber_id = row.id if row is not None else None
    if subscriber_id is None:
        why = "its link token is not valid" if token else "it holds no link token"
        report.refused.append(f"unsubscribe request from {sender or 'nobody'}: {why}")
        return
    with engine.connect() as conn:
        row = subscribers.load(conn, subscriber_id)
    if row is None:
        report.refused.append(f"unsubscribe request from {sender or 'nobody'}: no such subscriber")
        return
    done = subscribers.unsubscribe(engine, subscriber_id, utcnow())
    (report.unsubscribed if done is not None else report.already).append(row.email)


def process_maildir(engine: Engine, settings: Settings, path: Path) -> InboxReport:
    """Read every unseen message of a Maildir, act on it, and mark it seen."""
    if not (path / "cur").is_dir() or not (path / "new").is_dir():
        raise FileNotFoundError(f"{path} is not a Maildir (it needs cur/ and new/)")
    box = mailbox.Maildir(path, factory=None, create=False)
    report = InboxReport()
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
    engine: Engine, settings: Settings, raw: bytes, report: InboxReport, where: str
) -> None:
    """Parse and act on one message; a message that cannot be parsed is reported."""
    try:
        message = message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        if not bounces.apply(engine, settings, message, report.bounces):
            _unsubscribe_request(engine, settings, message, report)
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
) -> InboxReport:
    """Read every unseen message of an IMAP mailbox, act on it, and flag it \\Seen."""
    url = url or settings.inbox_imap_url.get_secret_value()
    if not url:
        raise ImapUrlError("no IMAP mailbox: pass an imaps:// URL or set DIGEST_INBOX_IMAP_URL")
    target = parse_imap_url(url)
    client = _connect(target, timeout)
    report = InboxReport()
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


def read_inbox(
    engine: Engine, settings: Settings, *, maildir: Path | None = None, imap: str | None = None
) -> InboxReport:
    """Read the Maildir or IMAP mailbox given, else the configured one (maildir first)."""
    maildir = maildir or (None if imap else settings.inbox_maildir)
    if maildir is not None:
        return process_maildir(engine, settings, maildir)
    return process_imap(engine, settings, imap)

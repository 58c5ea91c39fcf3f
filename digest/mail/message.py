"""The email message: headers (RFC 8058 unsubscribe, List-Id, Return-Path) around a body."""

from __future__ import annotations

import binascii
import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import policy
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.utils import format_datetime, make_msgid, parseaddr
from functools import lru_cache
from urllib.parse import quote

from digest.config import Settings
from digest.mail.text import one_line


class _HeaderClasses(HeaderRegistry):
    """The stdlib registry builds a new class per header set; build each one once."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__getitem__(name)
        return made


# Long URL headers (List-Unsubscribe) must stay plain text, not RFC 2047 encoded words.
MESSAGE_POLICY = policy.default.clone(max_line_length=998, header_factory=_HeaderClasses())
WIRE_POLICY = MESSAGE_POLICY.clone(linesep="\r\n")
# An address that needs no quoting or encoding: the common case, checked without parsing.
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+")


class Block(str):
    """Whole lines of a body (ending with a line break) that many messages share, such as
    a paper's card: their quoted-printable form is made once and kept with them."""

    def encoded(self) -> bytes:
        """The lines, quoted-printable, CRLF-terminated (as `_part` encodes any lines)."""
        try:
            return self._encoded
        except AttributeError:
            self._encoded: bytes = _encode_lines(self)
            return self._encoded

    def stuffed(self) -> bytes:
        """`encoded`, dot-stuffed for SMTP's DATA (see `stuff`)."""
        try:
            return self._stuffed
        except AttributeError:
            self._stuffed: bytes = stuff(self.encoded())
            return self._stuffed


def stuff(lines: bytes) -> bytes:
    """CRLF-terminated lines with a "." put before each that starts with one: SMTP's
    dot-stuffing (RFC 5321, 4.5.2), as the DATA command carries a message."""
    if b"\n." in lines:
        lines = lines.replace(b"\n.", b"\n..")
    return b"." + lines if lines.startswith(b".") else lines


def unstuffed(lines: bytes) -> bytes:
    """What `stuff` was given: one "." less before each line that starts with one."""
    if b"\n.." in lines:
        lines = lines.replace(b"\n..", b"\n.")
    return lines[1:] if lines.startswith(b"..") else lines


@dataclass(frozen=True)
class Rendered:
    """A rendered email body; `shown` is how many papers it shows (digests only).

    `text_parts` and `html_parts`, when given, are the bodies cut into pieces that
    together make them, every piece but the last ending with a line break; the Block
    pieces are encoded once for every message they are in."""

    subject: str
    text: str
    html: str
    shown: int = 0
    text_parts: tuple[str, ...] = ()
    html_parts: tuple[str, ...] = ()


def sender(settings: Settings) -> Address:
    """The From address of every email, with its display name."""
    return _address(settings.from_)


@lru_cache(maxsize=16)
def _address(from_: str) -> Address:
    name, address = parseaddr(from_)
    return Address(display_name=name, addr_spec=address or "digest@localhost")


def message_domain(settings: Settings) -> str:
    """The domain of the From address, for Message-IDs and List-Id."""
    return sender(settings).domain or "localhost"


def new_message_id(settings: Settings) -> str:
    """A fresh Message-ID on our domain, for one-off emails (confirmation, goodbye)."""
    return make_msgid(idstring="digest", domain=message_domain(settings))


def list_name(settings: Settings) -> str:
    """The name subscribers know the list by: the From display name."""
    return sender(settings).display_name or "digest"


def list_id(settings: Settings) -> str:
    """The List-Id header: '"Name" <id>' (RFC 2919)."""
    ident = settings.list_id or f"digest.{message_domain(settings)}"
    return f'"{one_line(list_name(settings))}" <{one_line(ident)}>'


def return_path(settings: Settings, to: str) -> str | None:
    """The bounce address: fixed, or VERP when the setting holds {local} and {domain}."""
    if not settings.return_path:
        return None
    local, _, domain = to.rpartition("@")
    return _recipient(settings.return_path.format(local=local, domain=domain))


def envelope_sender(settings: Settings, to: str) -> str:
    """MAIL FROM for a message to `to`: the Return-Path if set, else the From address."""
    return return_path(settings, _recipient(to)) or sender(settings).addr_spec


def list_unsubscribe(settings: Settings, url: str) -> str:
    """The List-Unsubscribe value: the one-click URL, and a mailto naming the same token
    when something reads that mailbox (an inbox is configured, or an address is named)."""
    reads = settings.inbox_imap_url.get_secret_value() or settings.inbox_maildir
    if not (reads or settings.unsubscribe_mailto):
        return f"<{url}>"
    mailbox = settings.unsubscribe_mailto or sender(settings).addr_spec
    token = url.rstrip("/").rsplit("/", 1)[-1]
    mailto = f"mailto:{mailbox}?subject={quote('unsubscribe ' + token)}"
    return f"<{url}>, <{mailto}>"


def compose(
    rendered: Rendered,
    *,
    to: str,
    settings: Settings,
    message_id: str,
    date: datetime,
    unsubscribe_url: str | None = None,
) -> bytes:
    """The message as SMTP carries it (CRLF): multipart/alternative, text then HTML.

    See `compose_wire`, which also gives the message dot-stuffed."""
    message, _ = compose_wire(
        rendered,
        to=to,
        settings=settings,
        message_id=message_id,
        date=date,
        unsubscribe_url=unsubscribe_url,
    )
    return message


def compose_wire(
    rendered: Rendered,
    *,
    to: str,
    settings: Settings,
    message_id: str,
    date: datetime,
    unsubscribe_url: str | None = None,
) -> tuple[bytes, bytes]:
    """The message as `compose` writes it, and dot-stuffed for DATA (see `stuff`): only
    the body's lines can start with ".", and a card's stuffed lines are made once.

    Bulk headers (List-*, Auto-Submitted) are set when `unsubscribe_url` is given, that
    is for digests; confirmation and goodbye emails are sent one at a time, on request.
    A header value holding CR or LF is refused (header injection), and `to` must be one
    address. Plain ASCII headers are written as they are; any other is encoded and folded
    by the email package. Both bodies are quoted-printable UTF-8. The boundary holds
    "=_", which quoted-printable text can never contain.
    """
    recipient = _recipient(to)
    headers = [
        _header("Subject", one_line(rendered.subject)),
        _fixed("From", str(sender(settings))),
        _header("To", recipient),
        _header("Date", _date(date, date.utcoffset())),
        _header("Message-ID", message_id),
    ]
    bounce = return_path(settings, recipient)
    if bounce:
        headers.append(_header("Return-Path", bounce))
    if unsubscribe_url:
        headers += [
            _fixed("List-Id", list_id(settings)),
            _header("List-Unsubscribe", list_unsubscribe(settings, unsubscribe_url)),
            _fixed("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            _fixed("Precedence", "bulk"),
        ]
    boundary = b"=_%032x" % random.getrandbits(128)
    headers += [
        _fixed("Auto-Submitted", "auto-generated"),
        b"MIME-Version: 1.0\r\n",
        b'Content-Type: multipart/alternative; boundary="' + boundary + b'"\r\n',
    ]
    text, text_wire = _part("plain", rendered.text, rendered.text_parts)
    html, html_wire = _part("html", rendered.html, rendered.html_parts)
    head = b"".join(headers) + b"\r\n--" + boundary + b"\r\n"
    middle = b"\r\n--" + boundary + b"\r\n"
    end = b"\r\n--" + boundary + b"--\r\n"
    return (
        b"".join([head, text, middle, html, end]),
        b"".join([head, text_wire, middle, html_wire, end]),
    )


@lru_cache(maxsize=64)
def _date(when: datetime, offset: timedelta | None) -> str:
    """The Date header's value, the same for every message of a batch; keyed by `when`'s
    offset too, as the same instant in another time zone is written apart."""
    return format_datetime(when)


def _part(subtype: str, body: str, parts: tuple[str, ...] = ()) -> tuple[bytes, bytes]:
    """One text body part, quoted-printable UTF-8, CRLF line ends (ending with one); from
    `parts` (see Rendered) when given, the shared ones encoded once. With it, the part
    dot-stuffed (see `stuff`)."""
    if not parts:
        parts = (body,)
    plain: list[bytes] = []
    stuffed: list[bytes] = []
    for part in parts:
        if type(part) is Block:
            plain.append(part.encoded())
            stuffed.append(part.stuffed())
        else:
            encoded = _encode_lines(part)
            plain.append(encoded)
            stuffed.append(stuff(encoded))
    head = (
        b"Content-Type: text/" + subtype.encode() + b'; charset="utf-8"\r\n'
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    )
    if not any(plain):
        return head + b"\r\n", head + b"\r\n"
    return head + b"".join(plain), head + b"".join(stuffed)


def _encode_lines(body: str) -> bytes:
    """Every line of `body` quoted-printable, each ending with CRLF (a last line without
    a line break too)."""
    if "\r" in body:
        body = body.replace("\r\n", "\n").replace("\r", "\n")
    lines = body.split("\n")
    if lines[-1] == "":
        lines.pop()
    return b"".join(
        [_encode_line(line) if "://" in line else _quoted_printable(line) for line in lines]
    )


def _encode_line(line: str) -> bytes:
    """One line, quoted-printable, ending with CRLF (soft breaks too)."""
    return binascii.b2a_qp(line.encode("utf-8"), istext=True).replace(b"\n", b"\r\n") + b"\r\n"


# Lines the same in many digests are encoded once; a line with a link is left out, as
# most such lines outside the cards hold the reader's own signed links.
_quoted_printable = lru_cache(maxsize=65536)(_encode_line)


def _header(name: str, value: str) -> bytes:
    """One header field, CRLF-terminated; CR or LF in the value is refused."""
    _refuse_line_breaks(name, value)
    line = f"{name}: {value}"
    if len(line) <= 998 and line.isascii() and line.isprintable():
        return line.encode("ascii") + b"\r\n"
    return _fixed(name, value)


@lru_cache(maxsize=4096)
def _fixed(name: str, value: str) -> bytes:
    """A header encoded and folded by the email package (cached: the same in many messages)."""
    _refuse_line_breaks(name, value)
    folded: str = MESSAGE_POLICY.header_factory(name, value).fold(policy=WIRE_POLICY)
    return folded.encode("ascii")


def _refuse_line_breaks(name: str, value: str) -> None:
    if "\r" in value or "\n" in value:
        raise ValueError(f"the {name} header may not contain CR or LF: {value!r}")


def _recipient(to: str) -> str:
    """`to` if it is one plain address; else as the email package reads it, or ValueError."""
    if _PLAIN_ADDRESS.fullmatch(to):
        return to
    parsed = Address(addr_spec=to)  # raises on anything that is not one address
    return parsed.addr_spec

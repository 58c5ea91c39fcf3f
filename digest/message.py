"""The email message: headers (RFC 8058 unsubscribe, List-Id, Return-Path) around a body."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from digest.config import Settings
from digest.emailtext import one_line


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


@dataclass(frozen=True)
class Rendered:
    """A rendered email body; `shown` is how many papers it shows (digests only)."""

    subject: str
    text: str
    html: str
    shown: int = 0


def sender(settings: Settings) -> Address:
    """The From address of every email, with its display name."""
    return _address(settings.from_)


@lru_cache(maxsize=16)
def _address(from_: str) -> Address:
    name, address = parseaddr(from_)
    return Address(display_name=name, addr_spec=address or "digest@localhost")


@lru_cache(maxsize=64)
def _fixed(name: str, value: str) -> Any:
    """A parsed header that is the same in every message (parsing is the costly part)."""
    return MESSAGE_POLICY.header_factory(name, value)


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


def return_path(settings: Settings, to: Address) -> str | None:
    """The bounce address: fixed, or VERP when the setting holds {local} and {domain}."""
    if not settings.return_path:
        return None
    address = settings.return_path.format(local=to.username, domain=to.domain)
    return str(Address(addr_spec=address))


def list_unsubscribe(settings: Settings, url: str) -> str:
    """The List-Unsubscribe value: the one-click URL and a mailto naming the same token."""
    mailbox = settings.unsubscribe_mailto or sender(settings).addr_spec
    token = url.rstrip("/").rsplit("/", 1)[-1]
    mailto = f"mailto:{mailbox}?subject={quote('unsubscribe ' + token)}"
    return f"<{url}>, <{mailto}>"


def build_message(
    rendered: Rendered,
    *,
    to: str,
    settings: Settings,
    message_id: str,
    date: datetime,
    unsubscribe_url: str | None = None,
) -> EmailMessage:
    """A multipart/alternative message (text, then HTML) with its headers.

    Bulk headers (List-*, Auto-Submitted) are set when `unsubscribe_url` is given, that
    is for digests; confirmation and goodbye emails are sent one at a time, on request.
    Every value passes through the email package, which refuses CR/LF (header injection).
    """
    recipient = Address(addr_spec=to)
    message = EmailMessage(policy=MESSAGE_POLICY)
    message["Subject"] = one_line(rendered.subject)
    message["From"] = _fixed("From", str(sender(settings)))
    message["To"] = recipient
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    bounce = return_path(settings, recipient)
    if bounce:
        message["Return-Path"] = bounce
    if unsubscribe_url:
        message["List-Id"] = _fixed("List-Id", list_id(settings))
        message["List-Unsubscribe"] = list_unsubscribe(settings, unsubscribe_url)
        message["List-Unsubscribe-Post"] = _fixed(
            "List-Unsubscribe-Post", "List-Unsubscribe=One-Click"
        )
        message["Precedence"] = _fixed("Precedence", "bulk")
    message["Auto-Submitted"] = _fixed("Auto-Submitted", "auto-generated")
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message

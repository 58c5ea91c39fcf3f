"""Jinja2 templates -> subject, text and HTML; and the email message with its headers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path

import jinja2

from digest import resource_dir
from digest.config import Settings


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
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


@dataclass(frozen=True)
class PaperView:
    """A paper as a digest shows it."""

    title: str
    abstract: str
    url: str | None
    authors: list[str]
    categories: list[str]
    interest: str
    terms: tuple[str, ...]
    upvotes: int | None = None


@dataclass(frozen=True)
class DigestView:
    """Everything a digest template needs."""

    email: str
    period: str
    papers: list[PaperView]
    interests: list[str]
    more_count: int = 0
    unsubscribe_url: str = ""
    preferences_url: str = ""
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Rendered:
    """A rendered email body."""

    subject: str
    text: str
    html: str


def shorten(text: str, limit: int = 400) -> str:
    """Cut `text` at a sentence boundary near `limit` characters, else at a word."""
    if len(text) <= limit:
        return text
    ends = [m.start() for m in _SENTENCE_END.finditer(text) if m.start() <= limit]
    if ends and ends[-1] >= limit // 2:
        return text[: ends[-1]]
    return text[:limit].rsplit(" ", 1)[0].rstrip(",;:") + " …"


def authors_line(authors: list[str], keep: int = 3) -> str:
    """'A, B, C et al.' past `keep` names."""
    if len(authors) <= keep:
        return ", ".join(authors)
    return ", ".join(authors[:keep]) + " et al."


def subject_for(count: int, interests: list[str]) -> str:
    """'7 new papers on X, Y and 2 more interests'."""
    noun = "paper" if count == 1 else "papers"
    if len(interests) <= 2:
        topics = " and ".join(interests)
    else:
        rest = len(interests) - 2
        topics = f"{interests[0]}, {interests[1]} and {rest} more interest{'s' * (rest > 1)}"
    return f"{count} new {noun} on {topics}"


class Renderer:
    """Renders templates from the operator's directory first, then the bundled ones."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        paths = [resource_dir("templates")]
        if settings.templates_dir:
            paths.insert(0, Path(settings.templates_dir))
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([str(p) for p in paths]),
            autoescape=jinja2.select_autoescape(["html"], default_for_string=False),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self.env.filters["shorten"] = shorten
        self.env.filters["authors"] = authors_line

    def digest(self, view: DigestView) -> Rendered:
        """Render a digest's subject, text part and HTML part."""
        subject = subject_for(len(view.papers), view.interests)
        context = {"digest": view, "subject": subject, "settings": self.settings}
        text = self.env.get_template("email/digest.txt").render(context)
        html = self.env.get_template("email/digest.html").render(context)
        return Rendered(subject=subject, text=text, html=html)


def message_domain(settings: Settings) -> str:
    """The domain of the From address, for Message-IDs."""
    address = parseaddr(settings.from_)[1]
    return address.rpartition("@")[2] or "localhost"


def build_message(
    rendered: Rendered,
    *,
    to: str,
    settings: Settings,
    message_id: str,
    date: datetime,
    unsubscribe_url: str,
) -> EmailMessage:
    """A multipart/alternative message (text, then HTML) with its headers."""
    name, address = parseaddr(settings.from_)
    message = EmailMessage(policy=MESSAGE_POLICY)
    message["Subject"] = rendered.subject
    message["From"] = Address(display_name=name, addr_spec=address)
    message["To"] = to
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    message["List-Unsubscribe"] = f"<{unsubscribe_url}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message

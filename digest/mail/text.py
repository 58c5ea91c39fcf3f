"""Text helpers for emails: shortening, author lists, subjects, highlighting and wrapping."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable

from markupsafe import Markup, escape

_SENTENCE_END = re.compile(r"(?<=[.!?])\s")
_SPACE = re.compile(r"\s+")
# Header-unsafe and invisible control characters, folded to a space in one-line fields.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def one_line(text: str) -> str:
    """Fold control characters and runs of whitespace to single spaces."""
    return _SPACE.sub(" ", _CONTROL.sub(" ", text)).strip()


def clip(text: str, limit: int) -> str:
    """`text` on one line, cut at a word near `limit` characters with an ellipsis."""
    text = one_line(text)
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    if len(cut) < limit // 2:  # one huge word: cut inside it
        cut = text[:limit]
    return cut.rstrip(",;:") + "…"


def shorten(text: str, limit: int = 400) -> str:
    """Cut `text` at a sentence boundary near `limit` characters, else at a word."""
    text = one_line(text)
    if len(text) <= limit:
        return text
    ends = [m.start() for m in _SENTENCE_END.finditer(text) if m.start() <= limit]
    if ends and ends[-1] >= limit // 2:
        return text[: ends[-1]]
    return clip(text, limit)


def authors_line(authors: list[str], keep: int = 3) -> str:
    """'A, B, C et al.' past `keep` names."""
    names = [clip(name, 80) for name in authors]
    if len(names) <= keep:
        return ", ".join(names)
    return ", ".join(names[:keep]) + " et al."


def subject_for(count: int, interests: list[str]) -> str:
    """'7 new papers on X, Y and 2 more interests'."""
    noun = "paper" if count == 1 else "papers"
    names = [clip(interest, 40) for interest in interests]
    if len(names) <= 2:
        topics = " and ".join(names)
    else:
        rest = len(names) - 2
        topics = f"{names[0]}, {names[1]} and {rest} more interest{'s' * (rest > 1)}"
    return f"{count} new {noun} on {topics}"


def term_pattern(terms: Iterable[str]) -> re.Pattern[str] | None:
    """A case-insensitive whole-word pattern for matched terms (phrases allow - or spaces)."""
    parts = []
    for term in sorted({t for t in terms if t.strip()}, key=len, reverse=True):
        words = [re.escape(w) for w in re.split(r"[\s\-]+", term.strip()) if w]
        if words:
            parts.append(r"[\s\-]+".join(words))
    if not parts:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)", re.IGNORECASE)


def highlight(text: str, terms: Iterable[str]) -> Markup:
    """`text` HTML-escaped, with each matched term wrapped in <mark>."""
    pattern = term_pattern(terms)
    if pattern is None:
        return Markup(escape(text))
    out: list[str] = []
    last = 0
    for found in pattern.finditer(text):
        out.append(escape(text[last : found.start()]))
        out.append(Markup('<mark class="hl">{}</mark>').format(found.group(0)))
        last = found.end()
    out.append(escape(text[last:]))
    return Markup("".join(out))


def wrap(text: str, width: int = 72, indent: str = "", first: str | None = None) -> str:
    """Wrap `text` to `width` columns, breaking only words too long for a line, never URLs."""
    room = max(width - len(indent), 20)
    words: list[str] = []
    for word in one_line(text).split(" "):
        if len(word) > room and "://" not in word:
            words.extend(word[i : i + room] for i in range(0, len(word), room))
        else:
            words.append(word)
    return textwrap.fill(
        " ".join(words),
        width=width,
        initial_indent=indent if first is None else first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )

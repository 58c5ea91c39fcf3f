"""Text helpers for emails: shortening, author lists, subjects, highlighting and wrapping."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from functools import lru_cache

from markupsafe import Markup, escape

from digest.match.highlight import spans
from digest.match.query import readable

_SENTENCE_END = re.compile(r"(?<=[.!?])\s")
_SPACE = re.compile(r"\s+")
# Header-unsafe and invisible control characters, folded to a space in one-line fields.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


@lru_cache(maxsize=16384)
def one_line(text: str) -> str:
    """Fold control characters and runs of whitespace to single spaces (kept: the same
    abstract is folded for each of the lines that matched it)."""
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


@lru_cache(maxsize=1024)
def period_label(period: str) -> str:
    """A digest's period as people say it: 'Friday 4 December', 'week of 30 November'.

    Periods are the subscriber's local date (daily) or ISO week (weekly); anything else
    (a preview) is shown as it is.
    """
    try:
        if "-W" in period:
            year, week = period.split("-W")
            monday = date.fromisocalendar(int(year), int(week), 1)
            return f"week of {monday.day} {monday:%B}"
        day = date.fromisoformat(period)
    except ValueError:
        return period
    return f"{day:%A} {day.day} {day:%B}"


def day_label(day: date) -> str:
    """A paper's date: '29 April 2026'."""
    return f"{day.day} {day:%B %Y}"


def subject_for(count: int, interests: list[str]) -> str:
    """'7 new papers: mixture of experts, LoRA and 2 more' (interest lines made readable)."""
    noun = "paper" if count == 1 else "papers"
    names = [clip(readable(interest), 40) for interest in interests]
    if len(names) <= 2:
        topics = " and ".join(names)
    else:
        topics = f"{names[0]}, {names[1]} and {len(names) - 2} more"
    return f"{count} new {noun}: {topics}"


def highlight(text: str, terms: Iterable[str]) -> Markup:
    """`text` HTML-escaped, with every place a matched term occurs wrapped in <mark>.

    Terms are found as the matcher finds them: phrases as phrases, stems, acronyms and
    their long forms (`digest.match.highlight`).
    """
    out: list[str] = []
    last = 0
    for start, end in spans(text, terms):
        out.append(escape(text[last:start]))
        out.append(f'<mark class="hl">{escape(text[start:end])}</mark>')
        last = end
    out.append(escape(text[last:]))
    return Markup("".join(out))


def excerpt(text: str, terms: Iterable[str], limit: int = 400) -> str:
    """About `limit` characters of `text` on one line that show its first match: the start
    when the match is there, else from the sentence (or words) before it, after "…"."""
    text = one_line(text)
    if len(text) <= limit:
        return text
    found = spans(text, terms)
    if not found or found[0][1] <= limit * 3 // 4:
        return shorten(text, limit)
    first = found[0][0]
    starts = [m.end() for m in _SENTENCE_END.finditer(text) if m.end() <= first]
    if starts and first - starts[-1] <= limit // 2:
        begin = starts[-1]
    else:
        begin = text.rfind(" ", 0, max(1, first - limit // 5)) + 1
    return "…" + shorten(text[begin:], limit)


def wrap(text: str, width: int = 72, indent: str = "", first: str | None = None) -> str:
    """Wrap `text` to `width` columns, breaking only words too long for a line, never URLs."""
    room = max(width - len(indent), 20)
    words: list[str] = []
    for word in one_line(text).split(" "):
        if len(word) > room and "://" not in word:
            words.extend(word[i : i + room] for i in range(0, len(word), room))
        else:
            words.append(word)
    return _fill(words, width, indent if first is None else first, indent)


def _fill(words: list[str], width: int, first: str, indent: str) -> str:
    """`textwrap.fill` of the words joined by single spaces, breaking neither long words
    nor at hyphens, without its chunking: greedy, a word too long for any line alone on
    one, each line prefixed (`first`, then `indent`) and at most `width` wide."""
    if words == [""]:
        return ""
    lines: list[str] = []
    line: list[str] = []
    prefix, room, size = first, width - len(first), 0
    for word in words:
        if not line:
            line, size = [word], len(word)
        elif size + 1 + len(word) <= room:
            line.append(word)
            size += 1 + len(word)
        else:
            lines.append(prefix + " ".join(line))
            prefix, room = indent, width - len(indent)
            line, size = [word], len(word)
    lines.append(prefix + " ".join(line))
    return "\n".join(lines)

"""Any RSS 2.0, RSS 1.0 or Atom feed (a lab blog, a journal's table of contents)."""

from __future__ import annotations

import io
import re
import xml.sax
from collections.abc import Iterator
from typing import Any

import feedparser

from digest.sources.batch import Batch, SourceError, from_struct
from digest.sources.text import strip_html

_DOI = re.compile(r"\b(10\.\d{4,9}/\S+[^\s.,;])")


def load(data: bytes, origin: str) -> tuple[Any, str | None]:
    """Parse a feed document: (feedparser result, a problem message when it is malformed)."""
    parsed = feedparser.parse(io.BytesIO(data))
    problem = None
    fault = parsed.get("bozo_exception")
    if parsed.get("bozo") and isinstance(fault, xml.sax.SAXException):
        problem = f"{origin}: malformed document ({fault}); kept the complete entries before it"
    if not parsed.get("version") and not parsed.entries:
        detail = f" ({fault})" if fault else ""
        raise SourceError(f"{origin}: not an RSS or Atom feed{detail}")
    return parsed, problem


def cut_off(parsed: Any, index: int, entry: Any) -> bool:
    """True for the last entry of a malformed document when its text is missing."""
    return (
        bool(parsed.get("bozo")) and index == len(parsed.entries) - 1 and not entry.get("summary")
    )


def entries(data: bytes, origin: str, batch: Batch) -> Iterator[tuple[str, Any]]:
    """(where, entry) for each complete entry of a feed; problems are noted in `batch`."""
    parsed, problem = load(data, origin)
    if problem:
        batch.warnings.append(problem)
    for index, entry in enumerate(parsed.entries):
        where = f"{origin}: entry {index + 1} ({entry.get('id') or entry.get('link') or '?'})"
        if cut_off(parsed, index, entry):
            batch.skip(where, "entry cut off by the malformed document")
            continue
        yield where, entry


def text_of(entry: Any) -> str:
    """The longest text an entry carries (content, else summary), without HTML tags."""
    texts = [c.get("value", "") for c in entry.get("content", [])]
    texts.append(entry.get("summary", ""))
    return strip_html(max(texts, key=len))


def authors_of(entry: Any) -> list[str]:
    """Author names, whether listed one by one or as one comma-separated string."""
    names: list[str] = []
    for author in entry.get("authors", []):
        name = strip_html(author.get("name", ""))
        names += [part.strip() for part in re.split(r",\s*(?:and\s+)?", name) if part.strip()]
    return names


def doi_of(entry: Any) -> str | None:
    """A DOI from the entry's prism/dc fields or its links, if it has one."""
    candidates = [entry.get("prism_doi", ""), entry.get("dc_identifier", "")]
    candidates += [link.get("href", "") for link in entry.get("links", [])]
    for text in candidates:
        found = _DOI.search(text or "")
        if found:
            return found.group(1)
    return None


def parse_feed(data: bytes, origin: str, source: str = "feed") -> Batch:
    """The entries of any RSS/Atom feed as papers; entries without a title are skipped."""
    batch = Batch()
    for where, entry in entries(data, origin, batch):

        def build(entry: Any = entry) -> dict[str, Any]:
            return {
                "title": strip_html(entry.get("title", "")),
                "abstract": text_of(entry),
                "id": entry.get("id"),
                "url": entry.get("link"),
                "doi": doi_of(entry),
                "authors": authors_of(entry),
                "categories": [t["term"] for t in entry.get("tags", []) if t.get("term")],
                "published": from_struct(
                    entry.get("published_parsed") or entry.get("updated_parsed")
                ),
                "source": source,
            }

        batch.add(where, build)
    return batch

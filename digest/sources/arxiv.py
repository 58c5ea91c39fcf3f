"""arXiv: the daily listing feeds (RSS 2.0, Atom, legacy RSS 1.0) and the export API (Atom)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from functools import partial
from typing import Any

from digest.config import Settings
from digest.sources.batch import Batch, SourceError, from_struct
from digest.sources.feeds import authors_of, cut_off, entries, load
from digest.sources.http import Http
from digest.sources.ingest import parse_arxiv_id

ANNOUNCE_TYPES = {
    "new": "new",
    "cross": "cross-list",
    "replace": "replacement",
    "replace-cross": "replacement",
}
_PREAMBLE = re.compile(
    r"^\s*arXiv:\S+\s+Announce Type:\s*(?P<type>[\w-]+)\s*Abstract:\s*", re.IGNORECASE
)
# Legacy RSS 1.0 titles end with "(arXiv:1805.06430v2 [nucl-th] UPDATED)".
_LEGACY_TITLE = re.compile(
    r"\s*\(arXiv:(?P<id>\S+?)\s+\[(?P<cat>[^\]]+)\](?:\s+(?P<flag>CROSS LISTED|UPDATED))?\)\s*$"
)
_LEGACY_TYPES = {None: "new", "CROSS LISTED": "cross-list", "UPDATED": "replacement"}
MAX_PAGES = 50


def _listing_fields(entry: Any) -> dict[str, Any]:
    title = entry.get("title", "")
    summary = entry.get("summary", "")
    categories = [t["term"] for t in entry.get("tags", []) if t.get("term")]
    ident = entry.get("id") or entry.get("link") or ""
    announce = entry.get("arxiv_announce_type")
    preamble = _PREAMBLE.match(summary)
    if preamble:
        announce = announce or preamble.group("type")
        summary = summary[preamble.end() :]
    legacy = _LEGACY_TITLE.search(title)
    if legacy:
        title = title[: legacy.start()]
        ident = legacy.group("id")
        categories = [legacy.group("cat"), *categories]
        kind = _LEGACY_TYPES[legacy.group("flag")]
    else:
        kind = ANNOUNCE_TYPES.get((announce or "").strip().lower(), announce)
    if parse_arxiv_id(ident) is None:
        raise ValueError(f"no arXiv id in {ident!r}")
    return {
        "title": title,
        "abstract": re.sub(r"<[^>]{0,500}>", " ", summary),
        "id": ident,
        "url": entry.get("link"),
        "doi": entry.get("arxiv_doi"),
        "journal_ref": entry.get("arxiv_journal_reference"),
        "authors": authors_of(entry),
        "categories": categories,
        "primary_category": categories[0] if categories else None,
        "published": from_struct(entry.get("published_parsed") or entry.get("updated_parsed")),
        "announce_type": kind,
        "source": "arxiv",
    }


def parse_listing(data: bytes, origin: str) -> Batch:
    """The entries of an arXiv listing feed, each with its announce type."""
    batch = Batch()
    for where, entry in entries(data, origin, batch):
        batch.add(where, partial(_listing_fields, entry))
    return batch


def _api_fields(entry: Any) -> dict[str, Any]:
    links = entry.get("links", [])
    primary = entry.get("arxiv_primary_category") or {}
    return {
        "title": entry.get("title", ""),
        "abstract": entry.get("summary", ""),
        "id": entry.get("id"),
        "url": next((x["href"] for x in links if x.get("rel") == "alternate"), None),
        "pdf_url": next((x["href"] for x in links if x.get("title") == "pdf"), None),
        "doi": entry.get("arxiv_doi"),
        "comment": entry.get("arxiv_comment"),
        "journal_ref": entry.get("arxiv_journal_ref"),
        "authors": [a["name"] for a in entry.get("authors", []) if a.get("name")],
        "categories": [t["term"] for t in entry.get("tags", []) if t.get("term")],
        "primary_category": primary.get("term"),
        "published": from_struct(entry.get("published_parsed")),
        "source": "arxiv",
    }


def parse_api(data: bytes, origin: str) -> tuple[Batch, int | None]:
    """The entries of one arXiv API response, and the total the query matches."""
    parsed, problem = load(data, origin)
    batch = Batch()
    if problem:
        batch.warnings.append(problem)
    for index, entry in enumerate(parsed.entries):
        ident = entry.get("id", "")
        if "/api/errors" in ident:
            raise SourceError(f"{origin}: arXiv API error: {entry.get('summary', ident)}")
        where = f"{origin}: entry {index + 1} ({ident or '?'})"
        if cut_off(parsed, index, entry):
            batch.skip(where, "entry cut off by the malformed document")
            continue
        batch.add(where, partial(_api_fields, entry))
    total = parsed.feed.get("opensearch_totalresults")
    return batch, int(total) if total and str(total).isdigit() else None


def listing_url(settings: Settings, categories: list[str]) -> str:
    """The listing feed URL of the categories, e.g. .../rss/cs.LG+cs.CL."""
    if not categories:
        raise SourceError("an arXiv source needs at least one category")
    return settings.arxiv_listing_url.rstrip("/") + "/" + "+".join(categories)


def api_query(categories: list[str], since: date, until: date) -> str:
    """The API search_query for papers submitted in the categories between two dates."""
    if not categories:
        raise SourceError("an arXiv API backfill needs at least one category")
    cats = " OR ".join(f"cat:{c}" for c in categories)
    return f"({cats}) AND submittedDate:[{since:%Y%m%d}0000 TO {until:%Y%m%d}2359]"


def api_pages(
    http: Http, settings: Settings, categories: list[str], since: date, until: date
) -> Iterator[Batch]:
    """Page through the arXiv API (start/max_results), one request per arxiv_delay seconds."""
    url = settings.arxiv_api_url
    http.pace(url, settings.arxiv_delay)
    query = api_query(categories, since, until)
    start = 0
    for _ in range(MAX_PAGES):
        params: dict[str, str | int] = {
            "search_query": query,
            "start": start,
            "max_results": settings.arxiv_page_size,
            "sortBy": "submittedDate",
            "sortOrder": "ascending",
        }
        fetched = http.get(url, params=params)
        page, total = parse_api(fetched.content, f"{url}?start={start}")
        yield page
        start += page.fetched
        if page.fetched == 0 or total is None or start >= total:
            break

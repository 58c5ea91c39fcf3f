"""Papers in: validate, give each a canonical id, and upsert so every paper is stored once."""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator
from sqlalchemy import Connection, Engine

from digest.clock import utcnow
from digest.match.text import normalise_title
from digest.models import Paper, table_of
from digest.sources.text import readable_latex

_ARXIV_NEW = re.compile(r"(?<![\d.])(\d{4}\.\d{4,5})(?:v(\d+))?(?![\d.])")
_ARXIV_OLD = re.compile(r"\b([a-z][a-z-]*(?:\.[A-Z]{2})?/\d{7})(?:v(\d+))?\b")
_SPACE = re.compile(r"\s+")
_TICK = timedelta(microseconds=1)  # the least step of a stored time


def clean_text(text: str) -> str:
    """Decode HTML entities, make inline LaTeX readable and fold whitespace."""
    return _SPACE.sub(" ", readable_latex(html.unescape(text))).strip()


def parse_arxiv_id(text: str) -> tuple[str, int | None] | None:
    """Find an arXiv id (new or old style) in `text`: (id without version, version)."""
    for pattern in (_ARXIV_NEW, _ARXIV_OLD):
        found = pattern.search(text)
        if found:
            return found.group(1), int(found.group(2)) if found.group(2) else None
    return None


def _nul_in(data: Any, where: str = "") -> str | None:
    """The first field (dotted) of raw input whose text holds U+0000, if any."""
    if isinstance(data, str):
        return where or "a value" if "\x00" in data else None
    if isinstance(data, dict):
        items: Any = data.items()
    elif isinstance(data, list | tuple):
        items = enumerate(data)
    else:
        return None
    for key, value in items:
        found = _nul_in(value, f"{where}.{key}" if where else str(key))
        if found is not None:
            return found
    return None


class PaperIn(BaseModel):
    """A paper as a source delivers it; unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    title: str
    abstract: str = ""
    id: str | None = None
    arxiv_id: str | None = None
    doi: str | None = None
    authors: list[str] = []
    categories: list[str] = []
    url: str | None = None
    pdf_url: str | None = None
    published: datetime | None = None
    upvotes: int | None = None
    source: str = "file"
    announce_type: str | None = None
    primary_category: str | None = None
    comment: str | None = None
    journal_ref: str | None = None
    ai_summary: str | None = None
    ai_keywords: list[str] | None = None
    github_repo: str | None = None
    project_page: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        # PostgreSQL cannot store U+0000 in text: refuse the paper, not the whole batch.
        found = _nul_in(data)
        if found is not None:
            raise ValueError(f"{found} contains a NUL character (U+0000)")
        return data

    @field_validator("url", "pdf_url", "github_repo", "project_page")
    @classmethod
    def _web_link(cls, value: str | None) -> str | None:
        # Stored links end up in emails and pages: only http(s), never javascript: or data:.
        if not value:
            return None
        scheme = value.split(":", 1)[0].lower() if ":" in value else ""
        if scheme not in ("http", "https"):
            shown = f"{scheme}:" if scheme else repr(value[:40])
            raise ValueError(f"only http:// and https:// links are stored, not {shown}")
        return value

    @field_validator("title", "abstract")
    @classmethod
    def _clean(cls, value: str) -> str:
        return clean_text(value)

    @field_validator("comment", "journal_ref", "ai_summary")
    @classmethod
    def _clean_optional(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return clean_text(value) or None

    @field_validator("title")
    @classmethod
    def _title_has_words(cls, value: str) -> str:
        if not normalise_title(value):
            raise ValueError("title is empty")
        return value

    @field_validator("authors", "categories", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("authors")
    @classmethod
    def _readable_names(cls, value: list[str]) -> list[str]:
        return [name for name in (clean_text(part) for part in value) if name]

    @field_validator("published", mode="before")
    @classmethod
    def _date(cls, value: Any) -> Any:
        if isinstance(value, date) and not isinstance(value, datetime):
            return datetime(value.year, value.month, value.day, tzinfo=UTC)
        return value

    @field_validator("published")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    def identity(self) -> tuple[str, str | None, int | None]:
        """(canonical id, arXiv id, version): arXiv id, else DOI, else a title hash."""
        for text in (self.arxiv_id, self.id, self.url):
            found = parse_arxiv_id(text) if text else None
            if found:
                return f"arxiv:{found[0]}", found[0], found[1]
        if self.doi:
            return f"doi:{self.doi.lower()}", None, None
        digest = hashlib.sha256(normalise_title(self.title).encode()).hexdigest()[:20]
        return f"title:{digest}", None, None


def describe(exc: ValidationError, whole: str = "line") -> str:
    """A validation error as "field: problem; field: problem"."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or whole}: {err['msg']}" for err in exc.errors()
    )


@dataclass
class IngestReport:
    """What one ingest did: counts, every rejected entry with its reason, document faults."""

    fetched: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def read_jsonl(path: Path, report: IngestReport) -> Iterator[PaperIn]:
    """Yield the valid papers of a JSONL file; each bad line is reported with its number."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            report.fetched += 1
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                report.errors.append(f"{path}:{number}: not valid UTF-8 (byte {exc.start + 1})")
                continue
            try:
                yield PaperIn.model_validate(json.loads(line))
            except json.JSONDecodeError as exc:
                report.errors.append(f"{path}:{number}: not valid JSON: {exc.msg}")
            except ValidationError as exc:
                report.errors.append(f"{path}:{number}: {describe(exc)}")


_EXTRAS = (
    "primary_category",
    "comment",
    "journal_ref",
    "ai_summary",
    "ai_keywords",
    "github_repo",
    "project_page",
)


def _merge(row: dict[str, Any], paper: PaperIn, version: int | None) -> dict[str, Any]:
    """The changes `paper` brings to a stored row (empty when it adds nothing)."""
    changes: dict[str, Any] = {}
    newer = version is not None and (row["version"] is None or version > row["version"])
    if newer:
        changes.update(version=version, title=paper.title, abstract=paper.abstract)
    for name in ("abstract", "url", "pdf_url", "doi", "published_at"):
        value = paper.published if name == "published_at" else getattr(paper, name)
        if value and not row[name] and name not in changes:
            changes[name] = value
    if paper.authors and (newer or not row["authors"]) and paper.authors != row["authors"]:
        changes["authors"] = paper.authors
    # A cross-list or a second source adds categories; none is ever dropped.
    categories = [*row["categories"], *(c for c in paper.categories if c not in row["categories"])]
    if categories != row["categories"]:
        changes["categories"] = categories
    if paper.announce_type and (newer or not row["announce_type"]):
        changes["announce_type"] = paper.announce_type
    for name in _EXTRAS:
        value = getattr(paper, name)
        if value and value != row[name]:
            changes[name] = value
    changes = {name: value for name, value in changes.items() if value != row[name]}
    if paper.source not in row["sources"]:
        changes["sources"] = [*row["sources"], paper.source]
    if paper.upvotes is not None and paper.upvotes != row["upvotes"]:
        changes["upvotes"] = paper.upvotes
    return changes


def _new_row(
    paper: PaperIn, canonical: str, arxiv_id: str | None, version: int | None, now: datetime
) -> dict[str, Any]:
    """The row of a paper stored for the first time."""
    return {
        "canonical_id": canonical,
        "version": version,
        "title": paper.title,
        "abstract": paper.abstract,
        "authors": paper.authors,
        "categories": paper.categories,
        "url": paper.url,
        "pdf_url": paper.pdf_url,
        "doi": paper.doi,
        "arxiv_id": arxiv_id,
        "published_at": paper.published,
        "first_seen_at": now,
        "updated_at": now,
        "sources": [paper.source],
        "upvotes": paper.upvotes,
        "announce_type": paper.announce_type,
        **{name: getattr(paper, name) for name in _EXTRAS},
    }


Identified = dict[str, tuple[PaperIn, str | None, int | None]]


def _latest(papers: Iterable[PaperIn], report: IngestReport) -> Identified:
    """Each paper by canonical id, the newest version where a batch repeats one."""
    batch: Identified = {}
    for paper in papers:
        canonical, arxiv_id, version = paper.identity()
        previous = batch.get(canonical)
        if previous is None or (version or 0) > (previous[2] or 0):
            batch[canonical] = (paper, arxiv_id, version)
        else:
            report.unchanged += 1
    return batch


def _stored(conn: Connection, keys: list[str]) -> dict[str, dict[str, Any]]:
    """The stored rows of these canonical ids (looked up 500 at a time)."""
    table = table_of(Paper)
    stored: dict[str, dict[str, Any]] = {}
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        for row in conn.execute(sa.select(table).where(table.c.canonical_id.in_(chunk))):
            stored[row.canonical_id] = dict(row._mapping)
    return stored


def store(
    engine: Engine,
    papers: Iterable[PaperIn],
    report: IngestReport | None = None,
    *,
    now: datetime | None = None,
) -> IngestReport:
    """Upsert papers in one transaction: new rows, merged updates, duplicates counted."""
    report = report if report is not None else IngestReport()
    now = now or utcnow()
    table = table_of(Paper)
    batch = _latest(papers, report)
    with engine.begin() as conn:
        stored = _stored(conn, list(batch))
        inserts: list[dict[str, Any]] = []
        for canonical, (paper, arxiv_id, version) in batch.items():
            existing = stored.get(canonical)
            if existing is None:
                inserts.append(_new_row(paper, canonical, arxiv_id, version, now))
                continue
            changes = _merge(existing, paper, version)
            if changes:
                # Later than the stamp it had, even at the same `now` (a run's pages stored
                # in separate commits): render processes read a paper again by its stamp.
                changes["updated_at"] = max(now, existing["updated_at"] + _TICK)
                conn.execute(sa.update(table).where(table.c.id == existing["id"]).values(**changes))
                report.updated += 1
            else:
                report.unchanged += 1
        if inserts:
            conn.execute(sa.insert(table), inserts)
        report.new += len(inserts)
    return report


def ingest_file(engine: Engine, path: Path, *, now: datetime | None = None) -> IngestReport:
    """Read a JSONL file of papers and store them; bad lines are reported, not fatal."""
    report = IngestReport()
    return store(engine, read_jsonl(path, report), report, now=now)

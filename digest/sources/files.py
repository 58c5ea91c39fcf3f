"""Saved responses and exports on disk: detect the format, parse, store, record."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal, get_args

from sqlalchemy import Engine

from digest.clock import utcnow
from digest.sources import arxiv, feeds, hf
from digest.sources.batch import Batch, SourceError
from digest.sources.ingest import IngestReport, read_jsonl, store
from digest.sources.runner import SourceReport, record

FileFormat = Literal["jsonl", "arxiv", "arxiv-api", "hf", "feed"]
FORMATS: tuple[str, ...] = get_args(FileFormat)


def detect_format(data: bytes, name: str = "") -> FileFormat:
    """Tell a file's format from its first bytes (and its name for JSONL)."""
    head = data[:4000].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"[") or (head.startswith(b"{") and name.endswith(".json")):
        return "hf"
    if head.startswith(b"{") or name.endswith(".jsonl"):
        return "jsonl"
    if head.startswith(b"<"):
        if b"<feed" in head and (b"arxiv.org/api" in head or b"opensearch" in head):
            return "arxiv-api"
        if b"rss.arxiv.org" in head or b"Announce Type" in head:
            return "arxiv"
        if b"<rdf:RDF" in head and b"arxiv.org" in head:
            return "arxiv"
        return "feed"
    choices = ", ".join(FORMATS)
    raise SourceError(f"cannot tell the format of {name or 'the input'}; pass --format ({choices})")


def parse_bytes(data: bytes, fmt: FileFormat, origin: str) -> Batch:
    """Parse a saved response of a known format."""
    if fmt == "arxiv":
        return arxiv.parse_listing(data, origin)
    if fmt == "arxiv-api":
        return arxiv.parse_api(data, origin)[0]
    if fmt == "hf":
        return hf.parse_daily(data, origin)
    if fmt == "feed":
        return feeds.parse_feed(data, origin)
    raise SourceError(f"{origin}: {fmt} is not a response format")


def ingest_path(
    engine: Engine,
    path: Path,
    fmt: FileFormat | None = None,
    *,
    now: datetime | None = None,
) -> SourceReport:
    """Ingest a file of any supported format and record the run; bad entries are reported."""
    now = now or utcnow()
    result = SourceReport(f"file:{path.name}", fmt or "file", started_at=now, finished_at=now)
    try:
        data = path.read_bytes()
        fmt = fmt or detect_format(data, path.name)
        result.kind = fmt
        if fmt == "jsonl":
            report = IngestReport()
            result.report = store(engine, read_jsonl(path, report), report, now=now)
        else:
            batch = parse_bytes(data, fmt, str(path))
            result.report.fetched = batch.fetched
            result.report.errors = batch.errors
            result.report.warnings = batch.warnings
            store(engine, batch.papers, result.report, now=now)
    except (SourceError, OSError) as exc:
        result.error = str(exc)
    record(engine, result)
    return result

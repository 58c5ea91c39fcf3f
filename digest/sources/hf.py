"""Hugging Face Daily Papers: the daily_papers JSON API, one list per date."""

from __future__ import annotations

import json
from datetime import date
from functools import partial
from typing import Any

from digest.config import Settings
from digest.sources.batch import Batch, SourceError


def _fields(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise TypeError(f"expected an object, got {type(item).__name__}")
    paper = item.get("paper", item)
    if not isinstance(paper, dict):
        raise TypeError(f"paper: expected an object, got {type(paper).__name__}")
    authors = paper.get("authors", [])
    if isinstance(authors, list):
        authors = [a.get("name") if isinstance(a, dict) else a for a in authors]
        authors = [a for a in authors if a]
    arxiv_id = paper.get("id")
    return {
        "title": item.get("title") or paper.get("title"),
        "abstract": paper.get("summary") or item.get("summary") or "",
        "arxiv_id": arxiv_id,
        "url": f"https://huggingface.co/papers/{arxiv_id}" if isinstance(arxiv_id, str) else None,
        "authors": authors,
        "upvotes": paper.get("upvotes"),
        "published": paper.get("publishedAt") or item.get("publishedAt"),
        "ai_summary": paper.get("ai_summary"),
        "ai_keywords": paper.get("ai_keywords"),
        "github_repo": paper.get("githubRepo"),
        "project_page": paper.get("projectPage"),
        "source": "hf",
    }


def parse_daily(data: bytes, origin: str) -> Batch:
    """The papers of one daily_papers response; an entry with a wrong field is skipped."""
    try:
        items = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SourceError(f"{origin}: not valid JSON: {exc}") from exc
    if not isinstance(items, list):
        raise SourceError(f"{origin}: expected a JSON list of papers, got {type(items).__name__}")
    batch = Batch()
    for index, item in enumerate(items):
        paper = item.get("paper") if isinstance(item, dict) else None
        ident = paper.get("id") if isinstance(paper, dict) else None
        batch.add(f"{origin}: entry {index + 1} ({ident or '?'})", partial(_fields, item))
    return batch


def daily_url(settings: Settings, day: date) -> str:
    """The URL of the daily list for `day`."""
    return f"{settings.hf_daily_url}?date={day.isoformat()}"

"""The sign-up preview: which papers of the last days these interest lines would have matched."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import Engine

from digest.emailtext import web_url
from digest.match import Matcher, PaperDoc
from digest.models import PAPERS

PREVIEW_DAYS = 7
SHOWN = 10


@dataclass(frozen=True)
class PreviewPaper:
    """One matched paper as the preview lists it."""

    title: str
    url: str | None
    day: date
    interest: str


@dataclass
class Preview:
    """Matches of the last days: counts per day (oldest first) and the best papers."""

    days: list[tuple[date, int]] = field(default_factory=list)
    papers: list[PreviewPaper] = field(default_factory=list)
    total: int = 0
    per_interest: dict[str, int] = field(default_factory=dict)


class PaperCache:
    """The papers of the last days, reloaded at most once a minute (previews run per keystroke)."""

    def __init__(self, engine: Engine, ttl: timedelta = timedelta(minutes=1)) -> None:
        self.engine = engine
        self.ttl = ttl
        self._loaded: datetime | None = None
        self._docs: list[tuple[PaperDoc, date, str | None]] = []

    def docs(self, now: datetime) -> list[tuple[PaperDoc, date, str | None]]:
        """(paper, day first seen, link) of every paper first seen in the preview window."""
        if self._loaded is None or not now - self.ttl <= self._loaded <= now:
            since = now - timedelta(days=PREVIEW_DAYS)
            query = sa.select(
                PAPERS.c.id,
                PAPERS.c.title,
                PAPERS.c.abstract,
                PAPERS.c.upvotes,
                PAPERS.c.url,
                PAPERS.c.first_seen_at,
            ).where(PAPERS.c.first_seen_at > since, PAPERS.c.first_seen_at <= now)
            with self.engine.connect() as conn:
                self._docs = [
                    (
                        PaperDoc(r.id, r.title, r.abstract, r.upvotes),
                        r.first_seen_at.date(),
                        web_url(r.url),
                    )
                    for r in conn.execute(query)
                ]
            self._loaded = now
        return self._docs


def preview(
    cache: PaperCache, matcher: Matcher, interests: list[tuple[str, str]], now: datetime
) -> Preview:
    """Match (line, canonical) interests against the last days' papers; counts per day."""
    result = Preview()
    today = now.date()
    days = [today - timedelta(days=n) for n in range(PREVIEW_DAYS - 1, -1, -1)]
    if not interests:
        result.days = [(day, 0) for day in days]
        return result
    docs = cache.docs(now)
    by_id = {doc.id: (doc, day, url) for doc, day, url in docs}
    hits = matcher.match([doc for doc, _, _ in docs], {c for _, c in interests}) if docs else {}
    best: dict[int, tuple[float, str]] = {}
    for line, canonical in interests:
        found = hits.get(canonical, [])
        result.per_interest[line] = len(found)
        for hit in found:
            if hit.paper_id not in best or hit.score > best[hit.paper_id][0]:
                best[hit.paper_id] = (hit.score, line)
    per_day = Counter(by_id[paper_id][1] for paper_id in best)
    result.days = [(day, per_day.get(day, 0)) for day in days]
    result.total = len(best)
    ranked = sorted(best.items(), key=lambda item: (-item[1][0], item[0]))[:SHOWN]
    for paper_id, (_, line) in ranked:
        doc, day, url = by_id[paper_id]
        result.papers.append(PreviewPaper(doc.title, url, day, line))
    return result

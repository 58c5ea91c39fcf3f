"""The sign-up preview: which papers of the last days these interest lines would have matched."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy import Engine

from digest.match.engine import Hit, Matcher
from digest.match.index import Index, PaperDoc
from digest.match.query import parse
from digest.match.suggest import Related, related
from digest.models import PAPERS
from digest.papers import DOC_COLUMNS, paper_date, paper_doc, paper_url, seed_papers, web_url

PREVIEW_DAYS = 7
SHOWN = 10


@dataclass(frozen=True)
class PreviewPaper:
    """One matched paper as the preview lists it."""

    title: str
    url: str | None
    day: date | None  # the paper's own date
    interest: str


@dataclass
class Preview:
    """Matches of the last days: counts per day (oldest first) and the best papers."""

    days: list[tuple[date, int]] = field(default_factory=list)
    papers: list[PreviewPaper] = field(default_factory=list)
    total: int = 0
    per_interest: dict[str, int] = field(default_factory=dict)
    related: dict[str, list[Related]] = field(default_factory=dict)


class Doc(NamedTuple):
    """A paper of the preview window: as matching reads it, the day first seen, its page
    and its own date."""

    paper: PaperDoc
    seen: date
    url: str | None
    published: date | None


MAX_CACHED_INTERESTS = 2000
MAX_SUGGESTED_LINES = 5  # related terms are offered for the last lines typed


class PaperCache:
    """The papers of the last days, reloaded at most once a minute (previews run per keystroke),
    and the matches of each interest over them (a keystroke changes one line at most)."""

    def __init__(self, engine: Engine, ttl: timedelta = timedelta(minutes=1)) -> None:
        self.engine = engine
        self.ttl = ttl
        self._loaded: datetime | None = None
        self._docs: list[Doc] = []
        self._papers: list[PaperDoc] = []  # the same list from call to call: see `papers`
        self._hits: dict[str, list[Hit]] = {}
        self._index: Index | None = None
        self._related: dict[str, list[Related]] = {}
        self._lock = threading.Lock()

    def docs(self, now: datetime) -> list[Doc]:
        """(paper, day first seen, link) of every paper first seen in the preview window."""
        return self.snapshot(now)[0]

    def snapshot(self, now: datetime) -> tuple[list[Doc], dict[str, list[Hit]]]:
        """The papers and the matches found so far over exactly those papers."""
        with self._lock:
            if self._loaded is None or not now - self.ttl <= self._loaded <= now:
                self._reload(now)
            if len(self._hits) > MAX_CACHED_INTERESTS:
                self._hits = {}
            return self._docs, self._hits

    def _reload(self, now: datetime) -> None:
        since = now - timedelta(days=PREVIEW_DAYS)
        query = sa.select(
            *DOC_COLUMNS,
            PAPERS.c.url,
            PAPERS.c.first_seen_at,
            PAPERS.c.published_at,
        ).where(PAPERS.c.first_seen_at > since, PAPERS.c.first_seen_at <= now)
        with self.engine.connect() as conn:
            docs = [
                Doc(paper_doc(r), r.first_seen_at.date(), web_url(paper_url(r)), paper_date(r))
                for r in conn.execute(query)
            ]
        self._loaded = now
        if docs != self._docs:  # the same papers keep their matches, index and related terms
            self._docs, self._hits, self._index, self._related = docs, {}, None, {}
            self._papers = [doc.paper for doc in docs]

    def papers(self, docs: list[Doc]) -> list[PaperDoc]:
        """`docs` (from `snapshot`) as the matcher reads them: while they are the loaded
        ones, one list object from call to call, so the matcher keeps its index of them."""
        with self._lock:
            if docs is self._docs:
                return self._papers
        return [doc.paper for doc in docs]

    def related(self, now: datetime, canonical: str) -> list[Related]:
        """Terms to offer beside one line, over the window's papers (cached per line)."""
        docs = self.docs(now)
        with self._lock:
            if canonical in self._related:
                return self._related[canonical]
            index = self._index
        if index is None:
            # Built outside the lock: other requests keep being served meanwhile.
            index = Index([doc.paper for doc in docs])
        found = related(index, parse(canonical)) if docs else []
        with self._lock:
            if self._docs is docs:
                self._index = index
                if len(self._related) > MAX_CACHED_INTERESTS:
                    self._related = {}
                self._related[canonical] = found
        return found


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
    docs, hits = cache.snapshot(now)
    by_id = {doc.paper.id: doc for doc in docs}
    missing = {c for _, c in interests} - hits.keys()
    if missing and docs:
        seeds = {}
        if any("like:" in line for line in missing):
            with cache.engine.connect() as conn:
                seeds = seed_papers(conn, missing)
        hits.update(matcher.match(cache.papers(docs), missing, seeds))
    best: dict[int, tuple[float, str]] = {}
    for line, canonical in interests:
        found = hits.get(canonical, [])
        result.per_interest[line] = len(found)
        for hit in found:
            if hit.paper_id not in best or hit.score > best[hit.paper_id][0]:
                best[hit.paper_id] = (hit.score, line)
    for line, canonical in interests[-MAX_SUGGESTED_LINES:]:
        offered = cache.related(now, canonical)
        if offered:
            result.related[line] = offered
    per_day = Counter(by_id[paper_id].seen for paper_id in best)
    result.days = [(day, per_day.get(day, 0)) for day in days]
    result.total = len(best)
    ranked = sorted(best.items(), key=lambda item: (-item[1][0], item[0]))[:SHOWN]
    for paper_id, (_, line) in ranked:
        doc = by_id[paper_id]
        result.papers.append(PreviewPaper(doc.paper.title, doc.url, doc.published, line))
    return result

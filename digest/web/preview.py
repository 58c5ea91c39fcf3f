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
from digest.match.suggest import Keys, Related, related
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
        self._by_id: dict[int, Doc] = {}
        self._hits: dict[str, list[Hit]] = {}
        self._keys: Keys | None = None  # the index related terms read, and the papers' keys
        self._related: dict[str, list[Related]] = {}
        self._lock = threading.Lock()
        self._building = threading.Lock()  # one request builds the index, the others wait
        self._loading = threading.Lock()  # one request reloads the papers

    def docs(self, now: datetime) -> list[Doc]:
        """(paper, day first seen, link) of every paper first seen in the preview window."""
        return self.snapshot(now)[0]

    def snapshot(self, now: datetime) -> tuple[list[Doc], dict[str, list[Hit]]]:
        """The papers and the matches found so far over exactly those papers.

        One request reloads the papers when they are older than `ttl`, outside the lock:
        the others go on with the papers loaded before (there are none yet: they wait).
        """
        with self._lock:
            if self._fresh(now):
                return self._current()
            loaded = self._loaded is not None
        if not self._loading.acquire(blocking=not loaded):
            with self._lock:  # another request is reloading them
                return self._current()
        try:
            with self._lock:
                if self._fresh(now):  # reloaded while this one waited
                    return self._current()
            docs = self._load(now)
            with self._lock:
                self._loaded = now
                if docs != self._docs:  # the same papers keep their matches, index and terms
                    self._docs, self._hits, self._keys, self._related = docs, {}, None, {}
                    self._papers = [doc.paper for doc in docs]
                    self._by_id = {doc.paper.id: doc for doc in docs}
                return self._current()
        finally:
            self._loading.release()

    def _fresh(self, now: datetime) -> bool:
        return self._loaded is not None and now - self.ttl <= self._loaded <= now

    def _current(self) -> tuple[list[Doc], dict[str, list[Hit]]]:
        if len(self._hits) > MAX_CACHED_INTERESTS:
            self._hits = {}
        return self._docs, self._hits

    def _load(self, now: datetime) -> list[Doc]:
        since = now - timedelta(days=PREVIEW_DAYS)
        query = sa.select(
            *DOC_COLUMNS,
            PAPERS.c.url,
            PAPERS.c.first_seen_at,
            PAPERS.c.published_at,
        ).where(PAPERS.c.first_seen_at > since, PAPERS.c.first_seen_at <= now)
        with self.engine.connect() as conn:
            return [
                Doc(paper_doc(r), r.first_seen_at.date(), web_url(paper_url(r)), paper_date(r))
                for r in conn.execute(query)
            ]

    def papers(self, docs: list[Doc]) -> list[PaperDoc]:
        """`docs` (from `snapshot`) as the matcher reads them: while they are the loaded
        ones, one list object from call to call, so the matcher keeps its index of them."""
        with self._lock:
            if docs is self._docs:
                return self._papers
        return [doc.paper for doc in docs]

    def by_id(self, docs: list[Doc]) -> dict[int, Doc]:
        """`docs` (from `snapshot`) by paper id (kept while they are the loaded ones)."""
        with self._lock:
            if docs is self._docs:
                return self._by_id
        return {doc.paper.id: doc for doc in docs}

    def related(self, now: datetime, canonical: str) -> list[Related]:
        """Terms to offer beside one line, over the window's papers (cached per line)."""
        docs = self.docs(now)
        with self._lock:
            if canonical in self._related:
                return self._related[canonical]
        found = []
        if docs:
            keys = self._keys_of(docs)
            found = related(keys.index, parse(canonical), keys=keys)
        with self._lock:
            if self._docs is docs:
                if len(self._related) > MAX_CACHED_INTERESTS:
                    self._related = {}
                self._related[canonical] = found
        return found

    def _keys_of(self, docs: list[Doc]) -> Keys:
        """The index of `docs` for related terms, with the papers' keys: built once, by one
        request while the others wait for it, outside the lock `snapshot` takes."""
        with self._building:
            with self._lock:
                if self._docs is docs and self._keys is not None:
                    return self._keys
            keys = Keys(Index([doc.paper for doc in docs]))
            with self._lock:
                if self._docs is docs:
                    self._keys = keys
            return keys


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
    by_id = cache.by_id(docs)
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

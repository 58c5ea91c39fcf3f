"""The sign-up preview: which papers of the last days these interest lines would have matched."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import NamedTuple

import numpy as np
import sqlalchemy as sa
from sqlalchemy import Engine

from digest.match.engine import Hit, Matcher
from digest.match.index import Floats, Index, Ints, PaperDoc
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


class Found(NamedTuple):
    """One line's matches over a week: the papers' positions in it, and their scores."""

    docs: Ints
    scores: Floats


class Week:
    """The papers of the preview window as one load found them, and what previews read of
    them: the same object (and so the same lists) until the papers change."""

    def __init__(self, docs: list[Doc]) -> None:
        self.docs = docs
        self.papers = [doc.paper for doc in docs]  # one list: the matcher keeps its index
        self._position = {doc.paper.id: n for n, doc in enumerate(docs)}
        self.ids: Ints = np.array([doc.paper.id for doc in docs], dtype=np.int64)
        self.seen: Ints = np.array([doc.seen.toordinal() for doc in docs], dtype=np.int64)

    def found(self, hits: list[Hit]) -> Found:
        """Hits over `papers` as positions in the week."""
        docs = np.array([self._position[hit.paper_id] for hit in hits], dtype=np.int64)
        return Found(docs, np.array([hit.score for hit in hits], dtype=np.float64))


MAX_CACHED_INTERESTS = 2000
MAX_SUGGESTED_LINES = 5  # related terms are offered for the last lines typed
NOTHING = Found(np.zeros(0, dtype=np.int64), np.zeros(0))


class PaperCache:
    """The papers of the last days, reloaded at most once a minute (previews run per keystroke),
    and the matches of each interest over them (a keystroke changes one line at most)."""

    def __init__(self, engine: Engine, ttl: timedelta = timedelta(minutes=1)) -> None:
        self.engine = engine
        self.ttl = ttl
        self._loaded: datetime | None = None
        self._week = Week([])
        self._found: dict[str, Found] = {}
        self._keys: Keys | None = None  # the index related terms read, and the papers' keys
        self._related: dict[str, list[Related]] = {}
        self._lock = threading.Lock()
        self._building = threading.Lock()  # one request builds the index, the others wait
        self._loading = threading.Lock()  # one request reloads the papers

    def docs(self, now: datetime) -> list[Doc]:
        """(paper, day first seen, link) of every paper first seen in the preview window."""
        return self.snapshot(now)[0].docs

    def snapshot(self, now: datetime) -> tuple[Week, dict[str, Found]]:
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
            changed = docs != self._week.docs
            week = Week(docs) if changed else self._week
            with self._lock:
                self._loaded = now
                if changed:  # the same papers keep their matches, index and terms
                    self._week, self._found, self._keys, self._related = week, {}, None, {}
                return self._current()
        finally:
            self._loading.release()

    def _fresh(self, now: datetime) -> bool:
        return self._loaded is not None and now - self.ttl <= self._loaded <= now

    def _current(self) -> tuple[Week, dict[str, Found]]:
        if len(self._found) > MAX_CACHED_INTERESTS:
            self._found = {}
        return self._week, self._found

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

    def related(self, now: datetime, canonical: str) -> list[Related]:
        """Terms to offer beside one line, over the window's papers (cached per line)."""
        week = self.snapshot(now)[0]
        with self._lock:
            if canonical in self._related:
                return self._related[canonical]
        found = []
        if week.docs:
            keys = self._keys_of(week)
            found = related(keys.index, parse(canonical), keys=keys)
        with self._lock:
            if self._week is week:
                if len(self._related) > MAX_CACHED_INTERESTS:
                    self._related = {}
                self._related[canonical] = found
        return found

    def _keys_of(self, week: Week) -> Keys:
        """The index of `week` for related terms, with the papers' keys: built once, by one
        request while the others wait for it, outside the lock `snapshot` takes."""
        with self._building:
            with self._lock:
                if self._week is week and self._keys is not None:
                    return self._keys
            keys = Keys(Index(week.papers))
            with self._lock:
                if self._week is week:
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
    week, found = cache.snapshot(now)
    missing = {c for _, c in interests} - found.keys()
    if missing and week.docs:
        seeds = {}
        if any("like:" in line for line in missing):
            with cache.engine.connect() as conn:
                seeds = seed_papers(conn, missing)
        hits = matcher.match(week.papers, missing, seeds)
        found.update({canonical: week.found(each) for canonical, each in hits.items()})
    lines = [found.get(canonical, NOTHING) for _, canonical in interests]
    for (line, _), each in zip(interests, lines, strict=True):
        result.per_interest[line] = len(each.docs)
    for line, canonical in interests[-MAX_SUGGESTED_LINES:]:
        offered = cache.related(now, canonical)
        if offered:
            result.related[line] = offered
    docs, scores, by = _best(lines)
    ago = today.toordinal() - week.seen[docs]
    per_day = np.bincount(ago[(ago >= 0) & (ago < PREVIEW_DAYS)], minlength=PREVIEW_DAYS)
    result.days = [(day, int(per_day[(today - day).days])) for day in days]
    result.total = len(docs)
    for n in np.lexsort((week.ids[docs], -scores))[:SHOWN].tolist():
        doc = week.docs[docs[n]]
        line = interests[by[n]][0]
        result.papers.append(PreviewPaper(doc.paper.title, doc.url, doc.published, line))
    return result


def _best(lines: list[Found]) -> tuple[Ints, Floats, Ints]:
    """Each paper any line matched, once: its best score, and the first line (by number)
    that scored it so."""
    docs = np.concatenate([each.docs for each in lines])
    scores = np.concatenate([each.scores for each in lines])
    by = np.concatenate(
        [np.full(len(each.docs), n, dtype=np.int64) for n, each in enumerate(lines)]
    )
    order = np.lexsort((by, -scores, docs))
    docs, scores, by = docs[order], scores[order], by[order]
    first = np.ones(len(docs), dtype=bool)
    first[1:] = docs[1:] != docs[:-1]
    return docs[first], scores[first], by[first]

"""Planning: which papers each due subscriber's digest holds, recorded in the outbox.

A digest covers the papers first seen since the subscriber's previous digest (their
first one: the last `first_digest_days` days) that match one of their interests and are
not in their ledger (SentPaper), plus the papers owed to them: matched by an earlier
digest, not sent (held over, or cut for size), and first seen within `holdover_days`.
Each distinct interest is evaluated once over the batch; the results are fanned out.

The cap is shared fairly (`share`): a paper belongs to the line that scores it best (a
line that follows an author wins), lines that follow authors are never cut, and the
other lines take turns, best paper first, until the cap is reached. What did not fit is
recorded as held over: it is owed to the next digest, and the full list shows it.
Who is due is `slots`' job; what the email shows of the chosen papers is `views`'.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from operator import attrgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from digest import feedback
from digest.config import Settings
from digest.db import among, array_literal, insert_ignore, insert_raw, make_engine
from digest.delivery import children, slots
from digest.delivery.slots import Due
from digest.feedback import Taste
from digest.mail.text import clip
from digest.match.engine import Hit, Matcher
from digest.match.highlight import spans
from digest.match.index import PaperDoc
from digest.match.query import parse
from digest.match.taste import extras, nudge, similarities
from digest.match.text import name_parts, names_match
from digest.models import (
    DIGEST_PAPERS,
    DIGESTS,
    PAPERS,
    SENT_PAPERS,
    DigestStatus,
)
from digest.papers import DOC_COLUMNS, paper_doc, seed_papers
from digest.subscribers import Line, lines_of

log = logging.getLogger(__name__)

NEVER = datetime.min.replace(tzinfo=UTC)
_NEVER_STAMP = NEVER.timestamp()
PAPER_ROWS_BATCH = 20_000  # DigestPaper rows per insert statement
PLAN_CHUNK = 5000  # subscribers planned (and committed) together
# Digests planned in one call past which PostgreSQL's statistics of the outbox are
# refreshed: with a million subscribers' rows new and not yet analysed, it read each
# batch's papers by scanning the whole table (1.8 s a batch, sending at 83 a second).
ANALYZE_MIN = 10_000


@dataclass(frozen=True)
class Choice:
    """A paper chosen for a digest."""

    paper_id: int
    score: float
    interest: str
    terms: tuple[str, ...]
    rank: int = 0  # its place in the planned digest, once planned
    seen: datetime = NEVER  # when the paper was first seen (planning orders ties by it)
    moved: str = ""  # how the reader's feedback moved it ("ranked up: like “...”")
    # Best first; at the same score the paper seen first (it has waited longer).
    order: tuple[float, float, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        seen = _NEVER_STAMP if self.seen is NEVER else self.seen.timestamp()
        object.__setattr__(self, "order", (-self.score, seen, self.paper_id))


@dataclass
class Selection:
    """What one subscriber's digest would hold: the papers shown, and those held over."""

    subscriber_id: int
    period: str
    window_start: datetime
    window_end: datetime
    papers: list[Choice]
    held: list[Choice] = field(default_factory=list)
    note: bool = False

    @property
    def matched_count(self) -> int:
        """Every paper the digest matched, shown or held over."""
        return len(self.papers) + len(self.held)


@dataclass
class PlanReport:
    """What planning did."""

    planned: int = 0
    empty: int = 0
    already: int = 0
    notes: int = 0

    def add(self, other: PlanReport) -> None:
        """Count in what another chunk's planning did."""
        self.planned += other.planned
        self.empty += other.empty
        self.already += other.already
        self.notes += other.notes


@lru_cache(maxsize=65536)
def follows_author(canonical: str) -> bool:
    """Whether an interest line follows an author (has a positive `author:` term)."""
    return any(term.field == "author" for term in parse(canonical).terms)


def share(lines: dict[str, list[Choice]], cap: int) -> tuple[list[Choice], list[Choice]]:
    """Share `cap` places among interest lines: (shown, held over).

    `lines` maps each line's canonical form to its papers, best first. Lines that follow
    an author keep every paper, first; the others take turns, the line with the best
    paper left going first in each round, until the cap is reached.
    """
    if len(lines) == 1:  # one line: its best, in order
        ((canonical, found),) = lines.items()
        return (list(found), []) if follows_author(canonical) else (found[:cap], found[cap:])
    shown = [c for canonical, found in lines.items() if follows_author(canonical) for c in found]
    queues = [list(found) for canonical, found in lines.items() if not follows_author(canonical)]
    taken: list[Choice] = []
    while len(shown) + len(taken) < cap and any(queues):
        for queue in sorted((q for q in queues if q), key=lambda q: q[0].order):
            if len(shown) + len(taken) >= cap:
                break
            taken.append(queue.pop(0))
    held = sorted((c for queue in queues for c in queue), key=_order)
    return [*shown, *sorted(taken, key=_order)], held


_order = attrgetter("order")  # sorts choices best first (Choice.order)


@dataclass
class Feedback:
    """The due subscribers' feedback and what planning needs to apply it: each seed's
    similar papers of the batch, the seeds' titles, and the papers' authors and titles."""

    tastes: dict[int, Taste]
    similar: dict[int, dict[int, float]]  # seed paper -> paper -> similarity
    titles: dict[int, str]  # seed paper -> its title, clipped as the why line quotes it
    papers: dict[int, Any]  # paper -> its row (title, authors), for muting

    def allows(self, taste: Taste) -> Callable[[int], bool]:
        """Whether a paper survives the reader's muted authors and kinds of paper."""
        authors = [name_parts(a) for a in taste.muted_authors]
        kinds = list(taste.muted_kinds)

        def allowed(paper: int) -> bool:
            row = self.papers.get(paper)
            if row is None:
                return True
            names = [name_parts(a) for a in row.authors or ()]
            if any(names_match(muted, name) for muted in authors for name in names):
                return False
            return not (kinds and spans(row.title, kinds))

        return allowed

    def apply(
        self,
        taste: Taste,
        best: dict[int, tuple[bool, Choice, str]],
        due_now: Callable[[int], bool],
        kept: Collection[int] = (),
    ) -> dict[int, tuple[bool, Choice, str]]:
        """Scores moved by likeness to liked and disliked papers, and a few extras; the
        papers `kept` (owed by an earlier digest, already moved there) stay as they are."""
        liked = {seed: self.similar.get(seed, {}) for seed in taste.liked}
        disliked = {seed: self.similar.get(seed, {}) for seed in taste.disliked}
        moved: dict[int, tuple[bool, Choice, str]] = {}
        for paper, (author, choice, canonical) in best.items():
            if paper in kept:  # owed: its earlier digest's score and reason, moved once
                moved[paper] = (author, choice, canonical)
                continue
            push = nudge(paper, liked, disliked)
            reason = ""
            if push.seed is not None:
                verb = "ranked up: like" if push.up else "ranked down: not for me,"
                reason = f"{verb} “{self.titles.get(push.seed, '')}”"
            score = round(choice.score * push.factor, 6)
            moved[paper] = (author, replace(choice, score=score, moved=reason), canonical)
        top = max((c.score for _, c, _ in moved.values()), default=1.0)
        for paper, seed, value in extras(liked, set(moved), due_now, disliked):
            title = self.titles.get(seed, "")
            line, reason = f"like:{seed}  # More like “{title}”", f"added: like “{title}”"
            seen = self.papers[paper].first_seen_at
            terms = (f"like:{seed}",)
            choice = Choice(paper, round(top * value, 6), line, terms, seen=seen, moved=reason)
            moved[paper] = (False, choice, f"like:{seed}")
        return moved


@dataclass
class Candidates:
    """What a chunk of due subscribers' digests are chosen from: papers, interests, matches,
    ledger, and what is owed to them."""

    starts: dict[int, datetime]  # each subscriber's window start
    seen_at: dict[int, datetime]  # each window paper's first_seen_at
    interests: dict[int, list[Line]]  # (as typed, canonical) per subscriber
    hits: dict[str, list[Hit]]  # per canonical interest, over the window's papers
    ledger: dict[int, set[int]]  # per subscriber, the papers already sent to them
    owed: dict[int, dict[int, Choice]]  # papers earlier digests matched and did not send
    feedback: Feedback = field(default_factory=lambda: Feedback({}, {}, {}, {}))

    prepared: dict[Line, list[Choice]] = field(default_factory=dict)  # see `line`

    def line(self, query: str, canonical: str) -> list[Choice]:
        """A line's hits as choices, best first (made once per batch and shared)."""
        found = self.prepared.get((query, canonical))
        if found is None:
            seen_at = self.seen_at
            found = [
                Choice(hit.paper_id, hit.score, query, hit.terms, seen=seen_at[hit.paper_id])
                for hit in self.hits.get(canonical, ())
            ]
            found.sort(key=_order)
            self.prepared[query, canonical] = found
        return found

    def choose(self, due: Due, now: datetime) -> Selection:
        """One subscriber's digest: new and owed papers, each under its best line, shared."""
        sub = due.subscriber_id
        start, sent = self.starts[sub], self.ledger.get(sub, ())
        lines = self.interests.get(sub, [])
        taste = self.feedback.tastes.get(sub)
        owed = self.owed.get(sub)
        if len(lines) == 1 and taste is None and not owed:  # the common case, made quick
            query, canonical = lines[0]
            new = [
                c for c in self.line(query, canonical) if c.seen > start and c.paper_id not in sent
            ]
            shown, held = share({canonical: new}, due.max_papers)
            return Selection(sub, due.period, start, now, shown, held, note=due.empty_note)
        best: dict[int, tuple[bool, Choice, str]] = {}  # paper -> (author line?, choice, line)
        for query, canonical in lines:
            author = follows_author(canonical)
            for choice in self.line(query, canonical):
                paper = choice.paper_id
                if choice.seen <= start or paper in sent:
                    continue
                current = best.get(paper)
                if current is None or (author, choice.score) > (current[0], current[1].score):
                    best[paper] = (author, choice, canonical)
        added = self._add_owed(best, owed, lines, taste, sent) if owed else set()
        if taste is not None:
            allowed = self.feedback.allows(taste)
            best = {p: b for p, b in best.items() if allowed(p)}

            def fits(paper: int) -> bool:
                fresh = self.seen_at.get(paper, NEVER) > start
                return fresh and paper not in sent and allowed(paper)

            best = self.feedback.apply(taste, best, fits, kept=added)
        found: dict[str, list[Choice]] = {}
        for _, choice, canonical in best.values():
            found.setdefault(canonical, []).append(choice)
        for choices in found.values():
            choices.sort(key=_order)
        shown, held = share(found, due.max_papers)
        return Selection(sub, due.period, start, now, shown, held, note=due.empty_note)

    @staticmethod
    def _add_owed(
        best: dict[int, tuple[bool, Choice, str]],
        owed: dict[int, Choice],
        lines: list[Line],
        taste: Taste | None,
        sent: Collection[int],
    ) -> set[int]:
        """Add the papers owed to the reader, as the earlier digest chose them, while the
        line that matched them is still theirs (a removed line takes its papers along);
        returns those added."""
        canonical_of = dict(lines)
        liked = set(taste.liked) if taste is not None else set()
        added: set[int] = set()
        for paper, choice in owed.items():
            if paper in best or paper in sent:
                continue
            canonical = canonical_of.get(choice.interest)
            seed = _seed(choice)
            if canonical is None and seed is not None and seed in liked:
                canonical = f"like:{seed}"
            if canonical is not None:
                best[paper] = (follows_author(canonical), choice, canonical)
                added.add(paper)
        return added


def _seed(choice: Choice) -> int | None:
    """The liked paper an extra paper was added for (its line is `like:SEED  # ...`)."""
    head = choice.interest.split(None, 1)[0] if choice.interest else ""
    number = head.removeprefix("like:")
    return int(number) if head.startswith("like:") and number.isdigit() else None


def _who(
    conn: Connection, settings: Settings, now: datetime, only: int | None, on_schedule: bool
) -> list[Due]:
    if only is not None:
        return slots.one(conn, only, now)
    if on_schedule:
        return slots.due(conn, now, timedelta(hours=settings.catch_up_hours))
    return slots.unplanned(conn, now)


def _window_starts(
    conn: Connection, ids: list[int], settings: Settings, now: datetime
) -> dict[int, datetime]:
    """Where each subscriber's window starts: their previous digest's end, else first days."""
    previous: dict[int, datetime] = dict(
        conn.execute(
            sa.select(DIGESTS.c.subscriber_id, sa.func.max(DIGESTS.c.window_end))
            .where(among(conn, DIGESTS.c.subscriber_id, ids))
            .group_by(DIGESTS.c.subscriber_id)
        ).all()
    )
    default_start = now - timedelta(days=settings.first_digest_days)
    return {sub_id: previous.get(sub_id) or default_start for sub_id in ids}


def _ledger(conn: Connection, ids: list[int], since: datetime) -> dict[int, set[int]]:
    """The papers already sent to each subscriber, among papers first seen after `since`."""
    recent = sa.select(PAPERS.c.id).where(PAPERS.c.first_seen_at > since)
    rows = conn.execute(
        sa.select(SENT_PAPERS.c.subscriber_id, SENT_PAPERS.c.paper_id).where(
            among(conn, SENT_PAPERS.c.subscriber_id, ids), SENT_PAPERS.c.paper_id.in_(recent)
        )
    )
    found: dict[int, set[int]] = defaultdict(set)
    for sub_id, paper_id in rows:
        found[sub_id].add(paper_id)
    return found


def _owed(conn: Connection, ids: list[int], since: datetime) -> dict[int, dict[int, Choice]]:
    """Papers matched by each subscriber's finished digests and never sent to them, first
    seen after `since`, as their latest digest chose them."""
    dp, d, sent = DIGEST_PAPERS.c, DIGESTS.c, SENT_PAPERS.c
    never_sent = ~sa.exists().where(
        sent.subscriber_id == d.subscriber_id, sent.paper_id == dp.paper_id
    )
    rows = conn.execute(
        sa.select(
            d.subscriber_id,
            dp.paper_id,
            dp.score,
            dp.interest,
            dp.terms,
            dp.moved,
            PAPERS.c.first_seen_at,
        )
        .select_from(
            DIGEST_PAPERS.join(DIGESTS, d.id == dp.digest_id).join(
                PAPERS, PAPERS.c.id == dp.paper_id
            )
        )
        .where(
            among(conn, d.subscriber_id, ids),
            d.status.in_([DigestStatus.sent, DigestStatus.failed]),
            PAPERS.c.first_seen_at > since,
            never_sent,
        )
        .order_by(d.id)
    )
    owed: dict[int, dict[int, Choice]] = defaultdict(dict)
    for sub_id, paper, score, interest, terms, moved, seen in rows:
        owed[sub_id][paper] = Choice(paper, score, interest, tuple(terms or ()), 0, seen, moved)
    return owed


class Batch:
    """The papers due digests are chosen from, indexed and matched once for all chunks.

    Planning works through the due subscribers a chunk at a time; the window's papers are
    loaded once (again only if a chunk reaches further back), and each distinct interest
    line and liked paper is evaluated the first time a chunk needs it.
    """

    def __init__(self, matcher: Matcher, settings: Settings, now: datetime) -> None:
        self.matcher = matcher
        self.settings = settings
        self.now = now
        self.since: datetime | None = None  # papers first seen after this are loaded
        self.papers: dict[int, Any] = {}
        self.docs: list[PaperDoc] = []
        self.hits: dict[str, list[Hit]] = {}
        self.similar: dict[int, dict[int, float]] = {}
        self.titles: dict[int, str] = {}
        self.seen_at: dict[int, datetime] = {}
        self.prepared: dict[Line, list[Choice]] = {}

    def load(self, conn: Connection, since: datetime) -> None:
        """Load the papers first seen after `since`, if not loaded yet."""
        if self.since is not None and since >= self.since:
            return
        first_seen = PAPERS.c.first_seen_at
        upper = self.since or self.now
        rows = conn.execute(
            sa.select(*DOC_COLUMNS, first_seen).where(first_seen > since, first_seen <= upper)
        )
        self.papers.update((row.id, row) for row in rows)
        self.since = since
        self.docs = [paper_doc(row) for row in self.papers.values()]
        self.seen_at = {paper: row.first_seen_at for paper, row in self.papers.items()}
        self.hits, self.similar, self.prepared = {}, {}, {}  # over the old papers: again

    def cover(self, conn: Connection, due: list[Due], chunk: int) -> None:
        """Load the papers of every due subscriber's window before any chunk is chosen:
        scores depend on the papers matched over, so every chunk sees the same ones."""
        since = self.earliest(conn, due, chunk)
        if since is not None:
            self.load(conn, since)

    def earliest(self, conn: Connection, due: list[Due], chunk: int) -> datetime | None:
        """Where the earliest window of the `due` subscribers starts (None: nobody due)."""
        ids = [row.subscriber_id for row in due]
        starts = [
            min(_window_starts(conn, ids[start : start + chunk], self.settings, self.now).values())
            for start in range(0, len(ids), chunk)
        ]
        return min(starts, default=None)

    def candidates(self, conn: Connection, due: list[Due]) -> Candidates:
        """Everything the digests of `due` (one chunk) are chosen from."""
        settings, now = self.settings, self.now
        ids = [row.subscriber_id for row in due]
        starts = _window_starts(conn, ids, settings, now)
        earliest = min(starts.values())
        self.load(conn, earliest)
        interests = lines_of(conn, ids)
        owed = _owed(conn, ids, now - timedelta(days=settings.holdover_days))
        tastes = feedback.tastes(conn, ids)
        refs = {seed for taste in tastes.values() for seed in taste.seeds()}
        wanted = {canonical for lines in interests.values() for _, canonical in lines}
        new_lines = wanted - self.hits.keys()
        new_refs = refs - self.similar.keys()
        if self.docs and (new_lines or new_refs):
            seeds = seed_papers(conn, new_lines | {f"like:{ref}" for ref in new_refs})
            if new_lines:
                self.hits.update(self.matcher.match(self.docs, new_lines, seeds))
            if new_refs:
                found = self.matcher.likeness(self.docs, [str(ref) for ref in new_refs], seeds)
                self.similar.update((int(ref), similarities(pairs)) for ref, pairs in found.items())
            self.titles.update(
                (int(ref), clip(doc.title, 80)) for ref, doc in seeds.items() if ref.isdigit()
            )
        rows = dict(self.papers) if tastes else {}
        if tastes:  # owed papers from before the window, for the muted authors and kinds
            rows.update(_rows(conn, {p for sub in tastes for p in owed.get(sub, {})} - rows.keys()))
        return Candidates(
            starts,
            self.seen_at,
            interests,
            self.hits,
            _ledger(conn, ids, earliest),
            owed,
            Feedback(tastes, self.similar, self.titles, rows),
            self.prepared,
        )


def _rows(conn: Connection, ids: set[int]) -> dict[int, Any]:
    """Papers by id (title and authors, for muting), 500 ids a query."""
    wanted, found = sorted(ids), dict[int, Any]()
    for start in range(0, len(wanted), 500):
        query = sa.select(*DOC_COLUMNS, PAPERS.c.first_seen_at)
        found.update(
            (row.id, row)
            for row in conn.execute(query.where(PAPERS.c.id.in_(wanted[start : start + 500])))
        )
    return found


def _chunks(due: list[Due], size: int) -> Iterator[list[Due]]:
    for start in range(0, len(due), size):
        yield due[start : start + size]


def select_papers(
    conn: Connection,
    matcher: Matcher,
    settings: Settings,
    now: datetime,
    *,
    only: int | None = None,
    on_schedule: bool = False,
    chunk: int = PLAN_CHUNK,
) -> list[Selection]:
    """Choose the papers of each due subscriber's digest (or of subscriber `only`).

    With `on_schedule`, due means the subscriber's send slot has passed (within the
    catch-up grace); otherwise every subscriber whose current period has no digest.
    Subscribers are read `chunk` at a time.
    """
    batch = Batch(matcher, settings, now)
    due = _who(conn, settings, now, only, on_schedule)
    batch.cover(conn, due, chunk)
    chosen = []
    for part in _chunks(due, chunk):
        candidates = batch.candidates(conn, part)
        chosen += [candidates.choose(row, now) for row in part]
    return chosen


def _record(conn: Connection, chosen: list[Selection], now: datetime) -> dict[int, int]:
    """Insert the digests' outbox rows; each new one's id by subscriber (a subscriber whose
    period has a digest already is left out)."""
    rows = [
        {
            "subscriber_id": selection.subscriber_id,
            "period": selection.period,
            "status": str(
                DigestStatus.planned if selection.papers or selection.note else DigestStatus.empty
            ),
            "window_start": selection.window_start,
            "window_end": selection.window_end,
            "created_at": now,
            "matched_count": selection.matched_count,
            "attempts": 0,
        }
        for selection in chosen
    ]
    if not rows:
        return {}
    if conn.dialect.name == "postgresql":  # one statement of arrays, whatever the count
        columns = list(rows[0])
        arrays = [array_literal(row[name] for row in rows) for name in columns]
        found = conn.execute(
            sa.text(_UNNEST_DIGESTS.format(", ".join(columns))),
            dict(zip([f"c{n}" for n in range(len(columns))], arrays, strict=True)),
        )
        return {sub_id: digest_id for sub_id, digest_id in found}
    statement = insert_ignore(conn, DIGESTS, ["subscriber_id", "period"]).returning(
        DIGESTS.c.subscriber_id, DIGESTS.c.id
    )
    return {sub_id: digest_id for sub_id, digest_id in conn.execute(statement, rows)}


# The digests of a chunk as PostgreSQL arrays, in the order `_record` lists the columns.
_UNNEST_DIGESTS = (
    "INSERT INTO digest ({}) SELECT * FROM unnest(CAST(:c0 AS integer[]), "
    "CAST(:c1 AS varchar[]), CAST(:c2 AS varchar[]), CAST(:c3 AS timestamptz[]), "
    "CAST(:c4 AS timestamptz[]), CAST(:c5 AS timestamptz[]), CAST(:c6 AS integer[]), "
    "CAST(:c7 AS integer[])) ON CONFLICT (subscriber_id, period) DO NOTHING "
    "RETURNING subscriber_id, id"
)


PAPER_COLUMNS = ("digest_id", "paper_id", "rank", "score", "interest", "terms", "held", "moved")


@lru_cache(maxsize=65536)
def _terms_json(terms: tuple[str, ...]) -> str:
    return json.dumps(list(terms))


def _paper_rows(digest_id: int, chosen: Selection) -> list[tuple[Any, ...]]:
    """The DigestPaper rows of a planned digest (PAPER_COLUMNS, as stored): shown papers
    by rank, then those held."""
    rows = [(c, False) for c in chosen.papers] + [(c, True) for c in chosen.held]
    return [
        (digest_id, c.paper_id, rank, c.score, c.interest, _terms_json(c.terms), held, c.moved)
        for rank, (c, held) in enumerate(rows, start=1)
    ]


def plan(
    engine: Engine,
    matcher: Matcher,
    settings: Settings,
    now: datetime,
    *,
    on_schedule: bool = False,
    chunk: int = PLAN_CHUNK,
    analyze_min: int = ANALYZE_MIN,
) -> PlanReport:
    """Create the outbox rows for every due subscriber (planned, or empty: no matches).

    A subscriber who opted in to the "nothing matched" note gets a planned digest with
    no papers instead of an empty one. `on_schedule`: see `select_papers`. Each chunk of
    subscribers is committed on its own: its digests can be sent while the next is
    planned, and a failure loses no chunk already planned.

    On PostgreSQL, with at least `plan_parallel_min` subscribers due, the chunks are
    planned by `plan_processes` processes at once, each matching over the same papers
    (the earliest window of everyone due), so the digests are those one process plans.
    SQLite takes one writer at a time: there, one process plans every chunk.
    """
    report = PlanReport()
    batch = Batch(matcher, settings, now)
    with engine.connect() as conn:
        due = _who(conn, settings, now, None, on_schedule)
        since = batch.earliest(conn, due, chunk)
    parts = list(_chunks(due, chunk))
    processes = min(settings.plan_processes, len(parts))
    if (
        processes > 1
        and len(due) >= settings.plan_parallel_min
        and engine.dialect.name == "postgresql"
    ):
        url = engine.url.render_as_string(hide_password=False)
        log.info("planning %d due in %d chunks in %d processes", len(due), len(parts), processes)
        with children.pool(processes, _start_planner, (url, matcher, settings, now, since)) as pool:
            for done in pool.map(_plan_in_child, parts):
                report.add(done)
    else:
        if since is not None:
            with engine.connect() as conn:
                batch.load(conn, since)
        for part in parts:
            report.add(_plan_chunk(engine, batch, part, now))
    if report.planned + report.empty >= analyze_min:
        refresh_statistics(engine)
    return report


def refresh_statistics(engine: Engine) -> None:
    """Have PostgreSQL sample the outbox's tables again (about a second at a million
    digests), so that sending reads a batch's rows by their indexes; autovacuum would,
    but later. SQLite needs none: its planner takes the indexes without statistics."""
    if engine.dialect.name != "postgresql":
        return
    tables = ", ".join(table.name for table in (DIGESTS, DIGEST_PAPERS, SENT_PAPERS))
    with engine.begin() as conn:
        conn.execute(sa.text(f"ANALYZE {tables}"))


def _plan_chunk(engine: Engine, batch: Batch, part: list[Due], now: datetime) -> PlanReport:
    """Choose and record the digests of one chunk of due subscribers, in one transaction."""
    report = PlanReport()
    with engine.begin() as conn:
        candidates = batch.candidates(conn, part)
        chosen = [candidates.choose(row, now) for row in part]
        recorded = _record(conn, chosen, now)
        pending: list[tuple[Any, ...]] = []  # DigestPaper rows, inserted in large batches
        for selection in chosen:
            digest_id = recorded.get(selection.subscriber_id)
            if digest_id is None:
                report.already += 1
                continue
            pending += _paper_rows(digest_id, selection)
            if len(pending) >= PAPER_ROWS_BATCH:
                insert_raw(conn, DIGEST_PAPERS, PAPER_COLUMNS, pending)
                pending = []
            if selection.papers:
                report.planned += 1
            elif selection.note:
                report.notes += 1
            else:
                report.empty += 1
        insert_raw(conn, DIGEST_PAPERS, PAPER_COLUMNS, pending)
    return report


_planner: tuple[Engine, Batch] | None = None  # in a planning process: its engine and batch


def _start_planner(
    url: str, matcher: Matcher, settings: Settings, now: datetime, since: datetime | None
) -> None:
    """Set up a planning process: the papers from `since` loaded and indexed."""
    global _planner
    engine, batch = make_engine(url), Batch(matcher, settings, now)
    if since is not None:
        with engine.connect() as conn:
            batch.load(conn, since)
    _planner = engine, batch


def _plan_in_child(part: list[Due]) -> PlanReport:
    assert _planner is not None, "planning process not initialised"
    engine, batch = _planner
    return _plan_chunk(engine, batch, part, batch.now)

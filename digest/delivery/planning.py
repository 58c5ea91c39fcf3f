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

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from digest import feedback
from digest.config import Settings
from digest.db import insert_ignore
from digest.delivery import slots
from digest.delivery.slots import Due
from digest.feedback import Taste
from digest.mail.text import clip
from digest.match.engine import Hit, Matcher
from digest.match.highlight import spans
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

NEVER = datetime.min.replace(tzinfo=UTC)
PAPER_ROWS_BATCH = 20_000  # DigestPaper rows per insert statement


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
    shown = [c for canonical, found in lines.items() if follows_author(canonical) for c in found]
    queues = [list(found) for canonical, found in lines.items() if not follows_author(canonical)]
    taken: list[Choice] = []
    while len(shown) + len(taken) < cap and any(queues):
        for queue in sorted((q for q in queues if q), key=lambda q: _order(q[0])):
            if len(shown) + len(taken) >= cap:
                break
            taken.append(queue.pop(0))
    held = sorted((c for queue in queues for c in queue), key=_order)
    return [*shown, *sorted(taken, key=_order)], held


def _order(choice: Choice) -> tuple[float, datetime, int]:
    """Best first; at the same score the paper seen first (it has waited longer)."""
    return (-choice.score, choice.seen, choice.paper_id)


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
    ) -> dict[int, tuple[bool, Choice, str]]:
        """Scores moved by likeness to liked and disliked papers, and a few extras."""
        liked = {seed: self.similar.get(seed, {}) for seed in taste.liked}
        disliked = {seed: self.similar.get(seed, {}) for seed in taste.disliked}
        moved: dict[int, tuple[bool, Choice, str]] = {}
        for paper, (author, choice, canonical) in best.items():
            push = nudge(paper, liked, disliked)
            reason = ""
            if push.seed is not None:
                verb = "ranked up: like" if push.up else "ranked down: not for me,"
                reason = f"{verb} “{self.titles.get(push.seed, '')}”"
            score = round(choice.score * push.factor, 6)
            moved[paper] = (author, replace(choice, score=score, moved=reason), canonical)
        top = max((c.score for _, c, _ in moved.values()), default=1.0)
        for paper, seed, value in extras(liked, set(moved), due_now):
            title = self.titles.get(seed, "")
            line, reason = f"like:{seed}  # More like “{title}”", f"added: like “{title}”"
            seen = self.papers[paper].first_seen_at
            terms = (f"like:{seed}",)
            choice = Choice(paper, round(top * value, 6), line, terms, seen=seen, moved=reason)
            moved[paper] = (False, choice, f"like:{seed}")
        return moved


@dataclass
class Candidates:
    """What the due subscribers' digests are chosen from: papers, interests, matches, ledger."""

    starts: dict[int, datetime]  # each subscriber's window start
    seen_at: dict[int, datetime]  # each paper's first_seen_at
    interests: dict[int, list[Line]]  # (as typed, canonical) per subscriber
    hits: dict[str, list[Hit]]  # per canonical interest
    ledger: set[tuple[int, int]]  # (subscriber, paper) already sent
    owed: dict[int, set[int]]  # papers an earlier digest matched and did not send
    feedback: Feedback = field(default_factory=lambda: Feedback({}, {}, {}, {}))

    def choose(self, due: Due, now: datetime) -> Selection:
        """One subscriber's digest: new and owed papers, each under its best line, shared."""
        sub = due.subscriber_id
        start, owed = self.starts[sub], self.owed.get(sub, set())
        best: dict[int, tuple[bool, Choice, str]] = {}  # paper -> (author line?, choice, line)
        for query, canonical in self.interests.get(sub, []):
            author = follows_author(canonical)
            for hit in self.hits.get(canonical, []):
                paper = hit.paper_id
                due_now = self.seen_at[paper] > start or paper in owed
                if not due_now or (sub, paper) in self.ledger:
                    continue
                current = best.get(paper)
                if current is None or (author, hit.score) > (current[0], current[1].score):
                    choice = Choice(paper, hit.score, query, hit.terms, seen=self.seen_at[paper])
                    best[paper] = (author, choice, canonical)
        taste = self.feedback.tastes.get(sub)
        if taste is not None:
            allowed = self.feedback.allows(taste)
            best = {p: b for p, b in best.items() if allowed(p)}

            def fits(paper: int) -> bool:
                fresh = self.seen_at.get(paper, NEVER) > start or paper in owed
                return fresh and (sub, paper) not in self.ledger and allowed(paper)

            best = self.feedback.apply(taste, best, fits)
        lines: dict[str, list[Choice]] = {}
        for _, choice, canonical in best.values():
            lines.setdefault(canonical, []).append(choice)
        for found in lines.values():
            found.sort(key=_order)
        shown, held = share(lines, due.max_papers)
        return Selection(sub, due.period, start, now, shown, held, note=due.empty_note)


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
            .where(DIGESTS.c.subscriber_id.in_(ids))
            .group_by(DIGESTS.c.subscriber_id)
        ).all()
    )
    default_start = now - timedelta(days=settings.first_digest_days)
    return {sub_id: previous.get(sub_id) or default_start for sub_id in ids}


def _ledger(conn: Connection, ids: list[int], since: datetime) -> set[tuple[int, int]]:
    """(subscriber, paper) pairs already sent, among papers first seen after `since`."""
    recent = sa.select(PAPERS.c.id).where(PAPERS.c.first_seen_at > since)
    rows = conn.execute(
        sa.select(SENT_PAPERS.c.subscriber_id, SENT_PAPERS.c.paper_id).where(
            SENT_PAPERS.c.subscriber_id.in_(ids), SENT_PAPERS.c.paper_id.in_(recent)
        )
    )
    return {(s, p) for s, p in rows}


def _owed(
    conn: Connection, ids: list[int], since: datetime
) -> tuple[dict[int, set[int]], list[int]]:
    """Papers matched by each subscriber's finished digests and never sent to them, first
    seen after `since`; and all of their ids."""
    dp, d, sent = DIGEST_PAPERS.c, DIGESTS.c, SENT_PAPERS.c
    never_sent = ~sa.exists().where(
        sent.subscriber_id == d.subscriber_id, sent.paper_id == dp.paper_id
    )
    rows = conn.execute(
        sa.select(d.subscriber_id, dp.paper_id)
        .select_from(
            DIGEST_PAPERS.join(DIGESTS, d.id == dp.digest_id).join(
                PAPERS, PAPERS.c.id == dp.paper_id
            )
        )
        .where(
            d.subscriber_id.in_(ids),
            d.status.in_([DigestStatus.sent, DigestStatus.failed]),
            PAPERS.c.first_seen_at > since,
            never_sent,
        )
    )
    owed: dict[int, set[int]] = defaultdict(set)
    for sub_id, paper_id in rows:
        owed[sub_id].add(paper_id)
    return owed, sorted({p for found in owed.values() for p in found})


def _candidates(
    conn: Connection, matcher: Matcher, settings: Settings, due: list[Due], now: datetime
) -> Candidates:
    """Load the papers of every due window and those owed, and match every distinct
    interest over them once."""
    ids = [row.subscriber_id for row in due]
    starts = _window_starts(conn, ids, settings, now)
    earliest = min(starts.values())
    owed, owed_ids = _owed(conn, ids, now - timedelta(days=settings.holdover_days))
    columns = (*DOC_COLUMNS, PAPERS.c.first_seen_at)
    papers = {
        row.id: row
        for row in conn.execute(
            sa.select(*columns).where(
                PAPERS.c.first_seen_at > earliest, PAPERS.c.first_seen_at <= now
            )
        )
    }
    for start in range(0, len(owed_ids), 500):
        chunk = [p for p in owed_ids[start : start + 500] if p not in papers]
        papers.update(
            (row.id, row) for row in conn.execute(sa.select(*columns).where(PAPERS.c.id.in_(chunk)))
        )
    interests = lines_of(conn, ids)
    if not papers:
        return Candidates(starts, {}, interests, {}, set(), owed)
    tastes = feedback.tastes(conn, ids)
    refs = {str(seed) for taste in tastes.values() for seed in taste.seeds()}
    wanted = {canonical for lines in interests.values() for _, canonical in lines}
    seeds = seed_papers(conn, wanted | {f"like:{ref}" for ref in refs})
    docs = [paper_doc(row) for row in papers.values()]
    hits = matcher.match(docs, wanted, seeds)
    seen_at = {row.id: row.first_seen_at for row in papers.values()}
    similar = {
        int(ref): similarities(pairs)
        for ref, pairs in (matcher.likeness(docs, refs, seeds) if refs else {}).items()
    }
    titles = {int(ref): clip(doc.title, 80) for ref, doc in seeds.items() if ref.isdigit()}
    return Candidates(
        starts,
        seen_at,
        interests,
        hits,
        _ledger(conn, ids, earliest),
        owed,
        Feedback(tastes, similar, titles, papers if tastes else {}),
    )


def select_papers(
    conn: Connection,
    matcher: Matcher,
    settings: Settings,
    now: datetime,
    *,
    only: int | None = None,
    on_schedule: bool = False,
) -> list[Selection]:
    """Choose the papers of each due subscriber's digest (or of subscriber `only`).

    With `on_schedule`, due means the subscriber's send slot has passed (within the
    catch-up grace); otherwise every subscriber whose current period has no digest.
    """
    due = _who(conn, settings, now, only, on_schedule)
    if not due:
        return []
    candidates = _candidates(conn, matcher, settings, due, now)
    return [candidates.choose(row, now) for row in due]


def _record(conn: Connection, chosen: Selection, now: datetime) -> int | None:
    """Insert one digest's outbox row; None if the period has one already."""
    sendable = bool(chosen.papers) or chosen.note
    digest_id = conn.execute(
        insert_ignore(conn, DIGESTS, ["subscriber_id", "period"])
        .values(
            subscriber_id=chosen.subscriber_id,
            period=chosen.period,
            status=DigestStatus.planned if sendable else DigestStatus.empty,
            window_start=chosen.window_start,
            window_end=chosen.window_end,
            created_at=now,
            matched_count=chosen.matched_count,
            attempts=0,
        )
        .returning(DIGESTS.c.id)
    ).scalar()
    return digest_id


def _paper_rows(digest_id: int, chosen: Selection) -> list[dict[str, Any]]:
    """The DigestPaper rows of a planned digest: shown papers by rank, then those held."""
    rows = [(c, False) for c in chosen.papers] + [(c, True) for c in chosen.held]
    return [
        {
            "digest_id": digest_id,
            "paper_id": c.paper_id,
            "rank": rank,
            "score": c.score,
            "interest": c.interest,
            "terms": list(c.terms),
            "held": held,
            "moved": c.moved,
        }
        for rank, (c, held) in enumerate(rows, start=1)
    ]


def plan(
    engine: Engine,
    matcher: Matcher,
    settings: Settings,
    now: datetime,
    *,
    on_schedule: bool = False,
) -> PlanReport:
    """Create the outbox rows for every due subscriber (planned, or empty: no matches).

    A subscriber who opted in to the "nothing matched" note gets a planned digest with
    no papers instead of an empty one. `on_schedule`: see `select_papers`.
    """
    report = PlanReport()
    with engine.begin() as conn:
        pending: list[dict[str, Any]] = []  # DigestPaper rows, inserted in large batches
        for chosen in select_papers(conn, matcher, settings, now, on_schedule=on_schedule):
            digest_id = _record(conn, chosen, now)
            if digest_id is None:
                report.already += 1
                continue
            pending += _paper_rows(digest_id, chosen)
            if len(pending) >= PAPER_ROWS_BATCH:
                conn.execute(sa.insert(DIGEST_PAPERS), pending)
                pending = []
            if chosen.papers:
                report.planned += 1
            elif chosen.note:
                report.notes += 1
            else:
                report.empty += 1
        if pending:
            conn.execute(sa.insert(DIGEST_PAPERS), pending)
    return report

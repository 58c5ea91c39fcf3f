"""Planning: which papers each due subscriber's digest holds, recorded in the outbox.

A digest covers the papers first seen since the subscriber's previous digest (their
first one: the last `first_digest_days` days) that match one of their interests and are
not in their ledger (SentPaper), best first, capped at their `max_papers`. Each distinct
interest is evaluated once over the batch; the results are fanned out to subscribers.
Who is due is `slots`' job; what the email shows of the chosen papers is `views`'.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from digest.config import Settings
from digest.db import insert_ignore
from digest.delivery import slots
from digest.delivery.slots import Due
from digest.match.engine import Hit, Matcher
from digest.models import (
    DIGEST_PAPERS,
    DIGESTS,
    PAPERS,
    SENT_PAPERS,
    DigestStatus,
)
from digest.papers import DOC_COLUMNS, paper_doc
from digest.subscribers import Line, lines_of


@dataclass(frozen=True)
class Choice:
    """A paper chosen for a digest."""

    paper_id: int
    score: float
    interest: str
    terms: tuple[str, ...]
    rank: int = 0  # its place in the planned digest, once planned


@dataclass
class Selection:
    """What one subscriber's digest would hold."""

    subscriber_id: int
    period: str
    window_start: datetime
    window_end: datetime
    papers: list[Choice]
    matched_count: int
    note: bool = False


@dataclass
class PlanReport:
    """What planning did."""

    planned: int = 0
    empty: int = 0
    already: int = 0
    notes: int = 0


@dataclass
class Candidates:
    """What the due subscribers' digests are chosen from: papers, interests, matches, ledger."""

    starts: dict[int, datetime]  # each subscriber's window start
    seen_at: dict[int, datetime]  # each paper's first_seen_at
    interests: dict[int, list[Line]]  # (as typed, canonical) per subscriber
    hits: dict[str, list[Hit]]  # per canonical interest
    ledger: set[tuple[int, int]]  # (subscriber, paper) already sent

    def choose(self, due: Due, now: datetime) -> Selection:
        """One subscriber's digest: their best match per paper, new to them, best first."""
        start = self.starts[due.subscriber_id]
        best: dict[int, Choice] = {}
        for query, canonical in self.interests.get(due.subscriber_id, []):
            for hit in self.hits.get(canonical, []):
                paper = hit.paper_id
                if self.seen_at[paper] <= start or (due.subscriber_id, paper) in self.ledger:
                    continue
                current = best.get(paper)
                if current is None or hit.score > current.score:
                    best[paper] = Choice(paper, hit.score, query, hit.terms)
        ranked = sorted(best.values(), key=lambda c: (-c.score, c.paper_id))
        return Selection(
            due.subscriber_id,
            due.period,
            start,
            now,
            ranked[: due.max_papers],
            len(ranked),
            due.empty_note,
        )


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


def _candidates(
    conn: Connection, matcher: Matcher, settings: Settings, due: list[Due], now: datetime
) -> Candidates:
    """Load the papers of every due window, and match every distinct interest over them once."""
    ids = [row.subscriber_id for row in due]
    starts = _window_starts(conn, ids, settings, now)
    earliest = min(starts.values())
    papers = conn.execute(
        sa.select(*DOC_COLUMNS, PAPERS.c.first_seen_at).where(
            PAPERS.c.first_seen_at > earliest, PAPERS.c.first_seen_at <= now
        )
    ).all()
    interests = lines_of(conn, ids)
    if not papers:
        return Candidates(starts, {}, interests, {}, set())
    wanted = {canonical for lines in interests.values() for _, canonical in lines}
    hits = matcher.match([paper_doc(row) for row in papers], wanted)
    seen_at = {row.id: row.first_seen_at for row in papers}
    return Candidates(starts, seen_at, interests, hits, _ledger(conn, ids, earliest))


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
    batch = _candidates(conn, matcher, settings, due, now)
    return [batch.choose(row, now) for row in due]


def _record(conn: Connection, chosen: Selection, now: datetime) -> int | None:
    """Insert one digest's outbox row and its papers; None if the period has one already."""
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
    if digest_id is not None and chosen.papers:
        conn.execute(
            sa.insert(DIGEST_PAPERS),
            [
                {
                    "digest_id": digest_id,
                    "paper_id": c.paper_id,
                    "rank": rank,
                    "score": c.score,
                    "interest": c.interest,
                    "terms": list(c.terms),
                }
                for rank, c in enumerate(chosen.papers, start=1)
            ],
        )
    return digest_id


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
        for chosen in select_papers(conn, matcher, settings, now, on_schedule=on_schedule):
            if _record(conn, chosen, now) is None:
                report.already += 1
            elif chosen.papers:
                report.planned += 1
            elif chosen.note:
                report.notes += 1
            else:
                report.empty += 1
    return report

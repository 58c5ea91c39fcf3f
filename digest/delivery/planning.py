"""Planning: which subscribers are due, and which papers each one's digest holds.

A digest covers the papers first seen since the subscriber's previous digest (their
first one: the last `first_digest_days` days) that match one of their interests and are
not in their ledger (SentPaper), best first, capped at their `max_papers`. Each distinct
interest is evaluated once over the batch; the results are fanned out to subscribers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from digest.config import Settings
from digest.db import insert_ignore
from digest.delivery import slots
from digest.delivery.slots import Due
from digest.mail.message import Rendered
from digest.mail.render import DigestView, PaperView, Renderer
from digest.match import Matcher
from digest.models import (
    DIGEST_PAPERS,
    DIGESTS,
    INTERESTS,
    PAPERS,
    SENT_PAPERS,
    SUBSCRIBERS,
    Cadence,
    DigestStatus,
    SubscriberStatus,
)
from digest.search import DOC_COLUMNS, paper_doc
from digest.tokens import PREFERENCES, UNSUBSCRIBE, make_tokens

# The web app serves a digest's full list at /digests/{token}/{digest_id}.
DIGESTS_LINK = "digests"


def period_key(cadence: str, timezone: str, now: datetime) -> str | None:
    """The period `now` falls in for a subscriber; None on a day they get nothing."""
    local = now.astimezone(ZoneInfo(timezone))
    if cadence == Cadence.weekly:
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    if cadence == Cadence.weekdays and local.weekday() >= 5:
        return None
    return local.date().isoformat()


# A paper as shown for one interest and its matched terms.
ViewKey = tuple[int, str, tuple[str, ...]]


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


def _due(conn: Connection, now: datetime, only: int | None) -> list[Due]:
    """Active subscribers with no digest in the period of `now`, whatever their send hour.

    With `only`, that one subscriber whatever their state (for previews).
    """
    query = sa.select(
        SUBSCRIBERS.c.id,
        SUBSCRIBERS.c.cadence,
        SUBSCRIBERS.c.timezone,
        SUBSCRIBERS.c.max_papers,
        SUBSCRIBERS.c.empty_note,
    )
    if only is None:
        query = query.where(SUBSCRIBERS.c.status == SubscriberStatus.active)
    else:
        query = query.where(SUBSCRIBERS.c.id == only)
    wanted: list[Due] = []
    for sub_id, cadence, timezone, max_papers, note in conn.execute(query):
        period = period_key(cadence, timezone, now)
        if only is not None:
            return [Due(sub_id, period or "preview", max_papers, note)]
        if period is not None:
            wanted.append(Due(sub_id, period, max_papers, note))
    periods = {row.period for row in wanted}
    existing = set()
    if periods:
        rows = conn.execute(
            sa.select(DIGESTS.c.subscriber_id, DIGESTS.c.period).where(
                DIGESTS.c.period.in_(periods)
            )
        )
        existing = {(sub_id, period) for sub_id, period in rows}
    return [row for row in wanted if (row.subscriber_id, row.period) not in existing]


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
    if on_schedule and only is None:
        due = slots.due(conn, now, timedelta(hours=settings.catch_up_hours))
    else:
        due = _due(conn, now, only)
    if not due:
        return []
    ids = [row.subscriber_id for row in due]
    previous: dict[int, datetime] = dict(
        conn.execute(
            sa.select(DIGESTS.c.subscriber_id, sa.func.max(DIGESTS.c.window_end))
            .where(DIGESTS.c.subscriber_id.in_(ids))
            .group_by(DIGESTS.c.subscriber_id)
        ).all()
    )
    default_start = now - timedelta(days=settings.first_digest_days)
    starts = {sub_id: previous.get(sub_id) or default_start for sub_id in ids}
    earliest = min(starts.values())

    papers = conn.execute(
        sa.select(*DOC_COLUMNS, PAPERS.c.first_seen_at).where(
            PAPERS.c.first_seen_at > earliest, PAPERS.c.first_seen_at <= now
        )
    ).all()
    seen_at = {row.id: row.first_seen_at for row in papers}
    docs = [paper_doc(row) for row in papers]

    interests: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for sub_id, canonical, query in conn.execute(
        sa.select(INTERESTS.c.subscriber_id, INTERESTS.c.canonical, INTERESTS.c.query)
        .where(INTERESTS.c.subscriber_id.in_(ids))
        .order_by(INTERESTS.c.subscriber_id, INTERESTS.c.position)
    ):
        interests[sub_id].append((canonical, query))
    hits = (
        matcher.match(docs, {c for lines in interests.values() for c, _ in lines}) if docs else {}
    )

    ledger: set[tuple[int, int]] = set()
    if docs:
        recent = sa.select(PAPERS.c.id).where(PAPERS.c.first_seen_at > earliest)
        ledger = {
            (s, p)
            for s, p in conn.execute(
                sa.select(SENT_PAPERS.c.subscriber_id, SENT_PAPERS.c.paper_id).where(
                    SENT_PAPERS.c.subscriber_id.in_(ids), SENT_PAPERS.c.paper_id.in_(recent)
                )
            )
        }

    selections = []
    for sub_id, period, max_papers, note in due:
        best: dict[int, Choice] = {}
        for canonical, query in interests.get(sub_id, []):
            for hit in hits.get(canonical, []):
                if seen_at[hit.paper_id] <= starts[sub_id] or (sub_id, hit.paper_id) in ledger:
                    continue
                current = best.get(hit.paper_id)
                if current is None or hit.score > current.score:
                    best[hit.paper_id] = Choice(hit.paper_id, hit.score, query, hit.terms)
        ranked = sorted(best.values(), key=lambda c: (-c.score, c.paper_id))
        selections.append(
            Selection(sub_id, period, starts[sub_id], now, ranked[:max_papers], len(ranked), note)
        )
    return selections


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
        selections = select_papers(conn, matcher, settings, now, on_schedule=on_schedule)
        for chosen in selections:
            sendable = bool(chosen.papers) or chosen.note
            status = DigestStatus.planned if sendable else DigestStatus.empty
            result = conn.execute(
                insert_ignore(conn, DIGESTS, ["subscriber_id", "period"])
                .values(
                    subscriber_id=chosen.subscriber_id,
                    period=chosen.period,
                    status=status,
                    window_start=chosen.window_start,
                    window_end=chosen.window_end,
                    created_at=now,
                    matched_count=chosen.matched_count,
                    attempts=0,
                )
                .returning(DIGESTS.c.id)
            ).first()
            if result is None:
                report.already += 1
                continue
            if not chosen.papers:
                if chosen.note:
                    report.notes += 1
                else:
                    report.empty += 1
                continue
            report.planned += 1
            conn.execute(
                sa.insert(DIGEST_PAPERS),
                [
                    {
                        "digest_id": result.id,
                        "paper_id": c.paper_id,
                        "rank": rank,
                        "score": c.score,
                        "interest": c.interest,
                        "terms": list(c.terms),
                    }
                    for rank, c in enumerate(chosen.papers, start=1)
                ],
            )
    return report


def hf_url(row: Any) -> str | None:
    """The paper's Hugging Face page, when it came from HF Daily Papers (or has upvotes)."""
    from_hf = row.upvotes is not None or any("hf" in s or "hugging" in s for s in row.sources)
    return f"https://huggingface.co/papers/{row.arxiv_id}" if row.arxiv_id and from_hf else None


def paper_views(
    conn: Connection,
    choices: Iterable[Choice],
    papers: Mapping[int, Any] | None = None,
    views: dict[ViewKey, PaperView] | None = None,
) -> list[PaperView]:
    """The papers of `choices`, in order, as templates show them (loaded unless given).

    `views` keeps the views made, by paper and interest, to reuse in the next digests.
    """
    chosen = list(choices)
    rows = papers
    if rows is None:
        query = sa.select(PAPERS).where(PAPERS.c.id.in_([c.paper_id for c in chosen]))
        rows = {row.id: row for row in conn.execute(query)}
    made = {} if views is None else views
    out = []
    for c in chosen:
        key = (c.paper_id, c.interest, c.terms)
        view = made.get(key)
        if view is None:
            view = made[key] = _paper_view(rows[c.paper_id], c)
        out.append(view)
    return out


def _paper_view(row: Any, c: Choice) -> PaperView:
    published = row.published_at or row.first_seen_at
    return PaperView(
        title=row.title,
        abstract=row.abstract,
        url=f"https://arxiv.org/abs/{row.arxiv_id}" if row.arxiv_id else row.url,
        authors=tuple(row.authors),
        categories=tuple(row.categories),
        interest=c.interest,
        terms=c.terms,
        upvotes=row.upvotes,
        pdf_url=row.pdf_url or (f"https://arxiv.org/pdf/{row.arxiv_id}" if row.arxiv_id else None),
        hf_url=hf_url(row),
        code_url=row.github_repo,
        published=published.date() if published else None,
    )


def digest_view(
    conn: Connection,
    settings: Settings,
    subscriber: Any,
    period: str,
    choices: list[Choice],
    more_count: int,
    *,
    papers: Mapping[int, Any] | None = None,
    digest_id: int | None = None,
    subscribed: list[str] | None = None,
    views: dict[ViewKey, PaperView] | None = None,
) -> DigestView:
    """The template context of one subscriber's digest (`digest_id` links the full list).

    `papers` and `subscribed` (the subscriber's interest lines) are loaded unless given;
    `views` keeps the paper views made, for the next digests of a batch.
    """
    secret, base = settings.secret_key.get_secret_value(), settings.base_url.rstrip("/")
    more_link = bool(digest_id and more_count)
    purposes = [UNSUBSCRIBE, PREFERENCES, *([DIGESTS_LINK] if more_link else [])]
    tokens = make_tokens(secret, purposes, subscriber.id, subscriber.token_version)

    def link(purpose: str) -> str:
        return f"{base}/{purpose}/{tokens[purpose]}"

    return DigestView(
        email=subscriber.email,
        period=period,
        papers=paper_views(conn, choices, papers, views),
        interests=list(dict.fromkeys(c.interest for c in choices)),
        more_count=more_count,
        unsubscribe_url=link(UNSUBSCRIBE),
        preferences_url=link(PREFERENCES),
        more_url=f"{link(DIGESTS_LINK)}/{digest_id}" if more_link else "",
        subscribed=subscribed
        if subscribed is not None
        else interest_lines(conn, [subscriber.id]).get(subscriber.id, []),
    )


def interest_lines(conn: Connection, subscriber_ids: Iterable[int]) -> dict[int, list[str]]:
    """Each subscriber's interest lines as typed, in their order."""
    lines: dict[int, list[str]] = defaultdict(list)
    for sub_id, query in conn.execute(
        sa.select(INTERESTS.c.subscriber_id, INTERESTS.c.query)
        .where(INTERESTS.c.subscriber_id.in_(list(subscriber_ids)))
        .order_by(INTERESTS.c.subscriber_id, INTERESTS.c.position)
    ):
        lines[sub_id].append(query)
    return lines


def preview(
    engine: Engine, matcher: Matcher, renderer: Renderer, subscriber_id: int, now: datetime
) -> tuple[Rendered, int] | None:
    """Render the digest a subscriber would get now (nothing is stored); None if empty."""
    with engine.connect() as conn:
        selections = select_papers(conn, matcher, renderer.settings, now, only=subscriber_id)
        if not selections or not selections[0].papers:
            return None
        chosen = selections[0]
        subscriber = conn.execute(
            sa.select(SUBSCRIBERS).where(SUBSCRIBERS.c.id == subscriber_id)
        ).one()
        more = chosen.matched_count - len(chosen.papers)
        view = digest_view(conn, renderer.settings, subscriber, chosen.period, chosen.papers, more)
    return renderer.digest(view), len(chosen.papers)

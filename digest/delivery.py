"""The outbox: plan one digest per subscriber and period, then send, retry and record.

Planning picks, for each due subscriber, the papers first seen since their previous
digest that match one of their interests and are not in their ledger (SentPaper).
Sending claims a planned digest, renders it, hands it to the transport and records the
result and the ledger in one transaction after the server accepted the message.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import Connection, Engine
from sqlalchemy.dialects import postgresql, sqlite

from digest.config import Settings
from digest.mailer import SendError, Transport
from digest.match import Matcher, PaperDoc
from digest.models import (
    Cadence,
    Digest,
    DigestPaper,
    DigestStatus,
    Interest,
    Paper,
    SentPaper,
    Subscriber,
    SubscriberStatus,
    table_of,
)
from digest.render import (
    DigestView,
    PaperView,
    Rendered,
    Renderer,
    build_message,
    message_domain,
)
from digest.tokens import UNSUBSCRIBE, make_token

T_SUB = table_of(Subscriber)
T_INT = table_of(Interest)
T_PAPER = table_of(Paper)
T_DIGEST = table_of(Digest)
T_DP = table_of(DigestPaper)
T_SENT = table_of(SentPaper)

LEASE = timedelta(minutes=10)
RETRY_BASE = timedelta(minutes=1)
GIVE_UP_AFTER = 8


def period_key(cadence: str, timezone: str, now: datetime) -> str | None:
    """The period `now` falls in for a subscriber; None on a day they get nothing."""
    local = now.astimezone(ZoneInfo(timezone))
    if cadence == Cadence.weekly:
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    if cadence == Cadence.weekdays and local.weekday() >= 5:
        return None
    return local.date().isoformat()


@dataclass(frozen=True)
class Choice:
    """A paper chosen for a digest."""

    paper_id: int
    score: float
    interest: str
    terms: tuple[str, ...]


@dataclass
class Selection:
    """What one subscriber's digest would hold."""

    subscriber_id: int
    period: str
    window_start: datetime
    window_end: datetime
    papers: list[Choice]
    matched_count: int


@dataclass
class PlanReport:
    """What planning did."""

    planned: int = 0
    empty: int = 0
    already: int = 0


def _due(conn: Connection, now: datetime, only: int | None) -> list[tuple[int, str, int]]:
    """(subscriber id, period, max papers) of active subscribers with no digest this period.

    With `only`, that one subscriber whatever their state (for previews).
    """
    query = sa.select(T_SUB.c.id, T_SUB.c.cadence, T_SUB.c.timezone, T_SUB.c.max_papers)
    if only is None:
        query = query.where(T_SUB.c.status == SubscriberStatus.active)
    else:
        query = query.where(T_SUB.c.id == only)
    wanted: list[tuple[int, str, int]] = []
    for sub_id, cadence, timezone, max_papers in conn.execute(query):
        period = period_key(cadence, timezone, now)
        if only is not None:
            return [(sub_id, period or "preview", max_papers)]
        if period is not None:
            wanted.append((sub_id, period, max_papers))
    periods = {period for _, period, _ in wanted}
    existing = set()
    if periods:
        rows = conn.execute(
            sa.select(T_DIGEST.c.subscriber_id, T_DIGEST.c.period).where(
                T_DIGEST.c.period.in_(periods)
            )
        )
        existing = {(sub_id, period) for sub_id, period in rows}
    return [row for row in wanted if (row[0], row[1]) not in existing]


def select_papers(
    conn: Connection,
    matcher: Matcher,
    settings: Settings,
    now: datetime,
    *,
    only: int | None = None,
) -> list[Selection]:
    """Choose the papers of each due subscriber's digest (or of subscriber `only`)."""
    due = _due(conn, now, only)
    if not due:
        return []
    ids = [sub_id for sub_id, _, _ in due]
    previous: dict[int, datetime] = dict(
        conn.execute(
            sa.select(T_DIGEST.c.subscriber_id, sa.func.max(T_DIGEST.c.window_end))
            .where(T_DIGEST.c.subscriber_id.in_(ids))
            .group_by(T_DIGEST.c.subscriber_id)
        ).all()
    )
    default_start = now - timedelta(days=settings.first_digest_days)
    starts = {sub_id: previous.get(sub_id) or default_start for sub_id in ids}
    earliest = min(starts.values())

    papers = conn.execute(
        sa.select(
            T_PAPER.c.id,
            T_PAPER.c.title,
            T_PAPER.c.abstract,
            T_PAPER.c.upvotes,
            T_PAPER.c.first_seen_at,
        ).where(T_PAPER.c.first_seen_at > earliest, T_PAPER.c.first_seen_at <= now)
    ).all()
    seen_at = {row.id: row.first_seen_at for row in papers}
    docs = [PaperDoc(row.id, row.title, row.abstract, row.upvotes) for row in papers]

    interests: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for sub_id, canonical, query in conn.execute(
        sa.select(T_INT.c.subscriber_id, T_INT.c.canonical, T_INT.c.query)
        .where(T_INT.c.subscriber_id.in_(ids))
        .order_by(T_INT.c.subscriber_id, T_INT.c.position)
    ):
        interests[sub_id].append((canonical, query))
    hits = (
        matcher.match(docs, {c for lines in interests.values() for c, _ in lines}) if docs else {}
    )

    ledger: set[tuple[int, int]] = set()
    if docs:
        recent = sa.select(T_PAPER.c.id).where(T_PAPER.c.first_seen_at > earliest)
        ledger = {
            (s, p)
            for s, p in conn.execute(
                sa.select(T_SENT.c.subscriber_id, T_SENT.c.paper_id).where(
                    T_SENT.c.subscriber_id.in_(ids), T_SENT.c.paper_id.in_(recent)
                )
            )
        }

    selections = []
    for sub_id, period, max_papers in due:
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
            Selection(sub_id, period, starts[sub_id], now, ranked[:max_papers], len(ranked))
        )
    return selections


def insert_ignore(conn: Connection, table: Any, keys: Sequence[str]) -> Any:
    """An INSERT ... ON CONFLICT (keys) DO NOTHING statement for SQLite and PostgreSQL."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=list(keys))
    return sqlite.insert(table).on_conflict_do_nothing(index_elements=list(keys))


def plan(engine: Engine, matcher: Matcher, settings: Settings, now: datetime) -> PlanReport:
    """Create the outbox rows for every due subscriber (planned, or empty: no matches)."""
    report = PlanReport()
    with engine.begin() as conn:
        selections = select_papers(conn, matcher, settings, now)
        for chosen in selections:
            status = DigestStatus.planned if chosen.papers else DigestStatus.empty
            result = conn.execute(
                insert_ignore(conn, T_DIGEST, ["subscriber_id", "period"])
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
                .returning(T_DIGEST.c.id)
            ).first()
            if result is None:
                report.already += 1
                continue
            if not chosen.papers:
                report.empty += 1
                continue
            report.planned += 1
            conn.execute(
                sa.insert(T_DP),
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


def message_id_for(digest_id: int, period: str, settings: Settings) -> str:
    """A Message-ID derived from the digest row, so a resend carries the same one."""
    return f"<digest.{digest_id}.{period}@{message_domain(settings)}>"


def paper_views(conn: Connection, choices: Iterable[Choice]) -> list[PaperView]:
    """Load the papers of `choices`, in the given order, as templates show them."""
    chosen = list(choices)
    rows = {
        row.id: row
        for row in conn.execute(
            sa.select(T_PAPER).where(T_PAPER.c.id.in_([c.paper_id for c in chosen]))
        )
    }
    return [
        PaperView(
            title=rows[c.paper_id].title,
            abstract=rows[c.paper_id].abstract,
            url=rows[c.paper_id].url,
            authors=rows[c.paper_id].authors,
            categories=rows[c.paper_id].categories,
            interest=c.interest,
            terms=c.terms,
            upvotes=rows[c.paper_id].upvotes,
        )
        for c in chosen
    ]


def digest_view(
    conn: Connection,
    settings: Settings,
    subscriber: Any,
    period: str,
    choices: list[Choice],
    more_count: int,
) -> DigestView:
    """The template context of one subscriber's digest."""
    token = make_token(
        settings.secret_key.get_secret_value(),
        UNSUBSCRIBE,
        subscriber.id,
        subscriber.token_version,
    )
    base = settings.base_url.rstrip("/")
    return DigestView(
        email=subscriber.email,
        period=period,
        papers=paper_views(conn, choices),
        interests=list(dict.fromkeys(c.interest for c in choices)),
        more_count=more_count,
        unsubscribe_url=f"{base}/unsubscribe/{token}",
        preferences_url=f"{base}/preferences/{token}",
    )


@dataclass(frozen=True)
class Outcome:
    """What happened to one digest."""

    digest_id: int
    email: str
    papers: int
    status: DigestStatus
    message_id: str | None
    reply: str


@dataclass
class SendReport:
    """Every digest handled by one send pass."""

    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, status: DigestStatus) -> int:
        """How many digests ended in `status`."""
        return sum(1 for outcome in self.outcomes if outcome.status is status)


def _claimable(now: datetime) -> Any:
    planned = sa.and_(
        T_DIGEST.c.status == DigestStatus.planned,
        sa.or_(T_DIGEST.c.next_attempt_at.is_(None), T_DIGEST.c.next_attempt_at <= now),
    )
    expired = sa.and_(T_DIGEST.c.status == DigestStatus.sending, T_DIGEST.c.lease_until < now)
    return sa.or_(planned, expired)


def claim(engine: Engine, now: datetime) -> int | None:
    """Take one sendable digest (planned and due, or with an expired lease) under a lease."""
    with engine.begin() as conn:
        ids = conn.execute(
            sa.select(T_DIGEST.c.id).where(_claimable(now)).order_by(T_DIGEST.c.id).limit(20)
        ).scalars()
        for digest_id in ids:
            taken = conn.execute(
                sa.update(T_DIGEST)
                .where(T_DIGEST.c.id == digest_id, _claimable(now))
                .values(status=DigestStatus.sending, lease_until=now + LEASE)
            )
            if taken.rowcount == 1:
                return int(digest_id)
    return None


def _finish(conn: Connection, digest_id: int, status: DigestStatus, **values: Any) -> None:
    conn.execute(
        sa.update(T_DIGEST)
        .where(T_DIGEST.c.id == digest_id)
        .values(status=status, lease_until=None, **values)
    )


async def send_one(
    engine: Engine, transport: Transport, renderer: Renderer, digest_id: int, now: datetime
) -> Outcome:
    """Re-check, render, send and record one claimed digest."""
    settings = renderer.settings
    with engine.begin() as conn:
        row = conn.execute(sa.select(T_DIGEST).where(T_DIGEST.c.id == digest_id)).one()
        subscriber = conn.execute(sa.select(T_SUB).where(T_SUB.c.id == row.subscriber_id)).one()
        if subscriber.status != SubscriberStatus.active:
            reply = f"not sent: subscriber is {subscriber.status}"
            _finish(conn, digest_id, DigestStatus.failed, last_reply=reply)
            return Outcome(digest_id, subscriber.email, 0, DigestStatus.failed, None, reply)
        already = sa.select(T_SENT.c.paper_id).where(T_SENT.c.subscriber_id == subscriber.id)
        choices = [
            Choice(dp.paper_id, dp.score, dp.interest, tuple(dp.terms))
            for dp in conn.execute(
                sa.select(T_DP)
                .where(T_DP.c.digest_id == digest_id, T_DP.c.paper_id.not_in(already))
                .order_by(T_DP.c.rank)
            )
        ]
        if not choices:
            _finish(conn, digest_id, DigestStatus.empty, last_reply="every paper already sent")
            return Outcome(digest_id, subscriber.email, 0, DigestStatus.empty, None, "")
        more = max(row.matched_count - len(choices), 0)
        view = digest_view(conn, settings, subscriber, row.period, choices, more)
    message_id = message_id_for(digest_id, row.period, settings)
    message = build_message(
        renderer.digest(view),
        to=subscriber.email,
        settings=settings,
        message_id=message_id,
        date=now,
        unsubscribe_url=view.unsubscribe_url,
    )
    try:
        reply = await transport.send(message)
    except SendError as exc:
        return _record_failure(engine, row, subscriber.email, exc, now)
    with engine.begin() as conn:
        _finish(
            conn,
            digest_id,
            DigestStatus.sent,
            sent_at=now,
            message_id=message_id,
            last_reply=reply[:1000],
            attempts=row.attempts + 1,
        )
        conn.execute(
            insert_ignore(conn, T_SENT, ["subscriber_id", "paper_id"]),
            [
                {
                    "subscriber_id": subscriber.id,
                    "paper_id": c.paper_id,
                    "digest_id": digest_id,
                    "sent_at": now,
                }
                for c in choices
            ],
        )
    return Outcome(digest_id, subscriber.email, len(choices), DigestStatus.sent, message_id, reply)


def _record_failure(engine: Engine, row: Any, email: str, exc: SendError, now: datetime) -> Outcome:
    """Schedule a retry with exponential backoff and jitter, or give up."""
    attempts = row.attempts + 1
    with engine.begin() as conn:
        if exc.permanent or attempts >= GIVE_UP_AFTER:
            _finish(conn, row.id, DigestStatus.failed, attempts=attempts, last_reply=exc.reply)
            return Outcome(row.id, email, 0, DigestStatus.failed, None, exc.reply)
        delay = RETRY_BASE * 2 ** (attempts - 1) * random.uniform(0.8, 1.2)
        _finish(
            conn,
            row.id,
            DigestStatus.planned,
            attempts=attempts,
            next_attempt_at=now + delay,
            last_reply=exc.reply,
        )
    return Outcome(row.id, email, 0, DigestStatus.planned, None, exc.reply)


async def send_due(
    engine: Engine, transport: Transport, renderer: Renderer, now: datetime
) -> SendReport:
    """Send every claimable digest, one at a time, until none is left; then close."""
    report = SendReport()
    try:
        while (digest_id := claim(engine, now)) is not None:
            report.outcomes.append(await send_one(engine, transport, renderer, digest_id, now))
    finally:
        await transport.close()
    return report


async def run(
    engine: Engine, matcher: Matcher, transport: Transport, renderer: Renderer, now: datetime
) -> tuple[PlanReport, SendReport]:
    """The digest job: plan every due digest, then send whatever is sendable."""
    planned = plan(engine, matcher, renderer.settings, now)
    return planned, await send_due(engine, transport, renderer, now)


def preview(
    engine: Engine, matcher: Matcher, renderer: Renderer, subscriber_id: int, now: datetime
) -> tuple[Rendered, int] | None:
    """Render the digest a subscriber would get now (nothing is stored); None if empty."""
    with engine.connect() as conn:
        selections = select_papers(conn, matcher, renderer.settings, now, only=subscriber_id)
        if not selections or not selections[0].papers:
            return None
        chosen = selections[0]
        subscriber = conn.execute(sa.select(T_SUB).where(T_SUB.c.id == subscriber_id)).one()
        more = chosen.matched_count - len(chosen.papers)
        view = digest_view(conn, renderer.settings, subscriber, chosen.period, chosen.papers, more)
    return renderer.digest(view), len(chosen.papers)

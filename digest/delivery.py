"""Sending: claim planned digests under a lease, render, send, retry, and record.

A digest is recorded as sent, and its papers entered in the subscriber's ledger, in one
transaction after the server accepted the message. Its Message-ID is derived from the
row, so a resend after a crash in that window carries the same ID.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from digest.config import Settings
from digest.db import insert_ignore
from digest.mailer import SendError, Transport
from digest.match import Matcher
from digest.models import (
    DIGEST_PAPERS,
    DIGESTS,
    SENT_PAPERS,
    SUBSCRIBERS,
    DigestStatus,
    SubscriberStatus,
)
from digest.planning import Choice, PlanReport, digest_view, plan
from digest.render import Renderer, RenderError, build_message, message_domain

LEASE = timedelta(minutes=10)
RETRY_BASE = timedelta(minutes=1)
GIVE_UP_AFTER = 8


def message_id_for(digest_id: int, period: str, settings: Settings) -> str:
    """A Message-ID derived from the digest row, so a resend carries the same one."""
    return f"<digest.{digest_id}.{period}@{message_domain(settings)}>"


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
        DIGESTS.c.status == DigestStatus.planned,
        sa.or_(DIGESTS.c.next_attempt_at.is_(None), DIGESTS.c.next_attempt_at <= now),
    )
    expired = sa.and_(DIGESTS.c.status == DigestStatus.sending, DIGESTS.c.lease_until < now)
    return sa.or_(planned, expired)


def claim(engine: Engine, now: datetime) -> int | None:
    """Take one sendable digest (planned and due, or with an expired lease) under a lease."""
    with engine.begin() as conn:
        ids = conn.execute(
            sa.select(DIGESTS.c.id).where(_claimable(now)).order_by(DIGESTS.c.id).limit(20)
        ).scalars()
        for digest_id in ids:
            taken = conn.execute(
                sa.update(DIGESTS)
                .where(DIGESTS.c.id == digest_id, _claimable(now))
                .values(status=DigestStatus.sending, lease_until=now + LEASE)
            )
            if taken.rowcount == 1:
                return int(digest_id)
    return None


def _finish(conn: Connection, digest_id: int, status: DigestStatus, **values: Any) -> None:
    conn.execute(
        sa.update(DIGESTS)
        .where(DIGESTS.c.id == digest_id)
        .values(status=status, lease_until=None, **values)
    )


async def send_one(
    engine: Engine, transport: Transport, renderer: Renderer, digest_id: int, now: datetime
) -> Outcome:
    """Re-check, render, send and record one claimed digest."""
    settings = renderer.settings
    with engine.begin() as conn:
        row = conn.execute(sa.select(DIGESTS).where(DIGESTS.c.id == digest_id)).one()
        subscriber = conn.execute(
            sa.select(SUBSCRIBERS).where(SUBSCRIBERS.c.id == row.subscriber_id)
        ).one()
        if subscriber.status != SubscriberStatus.active:
            reply = f"not sent: subscriber is {subscriber.status}"
            _finish(conn, digest_id, DigestStatus.failed, last_reply=reply)
            return Outcome(digest_id, subscriber.email, 0, DigestStatus.failed, None, reply)
        already = sa.select(SENT_PAPERS.c.paper_id).where(
            SENT_PAPERS.c.subscriber_id == subscriber.id
        )
        choices = [
            Choice(dp.paper_id, dp.score, dp.interest, tuple(dp.terms))
            for dp in conn.execute(
                sa.select(DIGEST_PAPERS)
                .where(
                    DIGEST_PAPERS.c.digest_id == digest_id, DIGEST_PAPERS.c.paper_id.not_in(already)
                )
                .order_by(DIGEST_PAPERS.c.rank)
            )
        ]
        if not choices:
            _finish(conn, digest_id, DigestStatus.empty, last_reply="every paper already sent")
            return Outcome(digest_id, subscriber.email, 0, DigestStatus.empty, None, "")
        more = max(row.matched_count - len(choices), 0)
        view = digest_view(
            conn, settings, subscriber, row.period, choices, more, digest_id=digest_id
        )
    message_id = message_id_for(digest_id, row.period, settings)
    try:
        rendered = renderer.digest(view)
    except RenderError as exc:
        with engine.begin() as conn:
            _finish(conn, digest_id, DigestStatus.failed, last_reply=str(exc)[:1000])
        return Outcome(digest_id, subscriber.email, 0, DigestStatus.failed, None, str(exc))
    # Papers cut to keep the email under the size limit stay out of the ledger.
    choices = choices[: rendered.shown]
    message = build_message(
        rendered,
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
            insert_ignore(conn, SENT_PAPERS, ["subscriber_id", "paper_id"]),
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

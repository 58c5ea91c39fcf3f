"""Sending: claim planned digests under a lease, render, send, retry, and record.

A producer claims batches of digests (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite's
single writer elsewhere), renders them and queues them; one sender per SMTP connection
sends; each result is recorded, with the subscriber's ledger, in one transaction after
the server accepted the message. The Message-ID is derived from the digest row, so a
resend after a crash in that window carries the same ID.
"""

from __future__ import annotations

import json
import logging
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from digest.config import Settings
from digest.db import insert_ignore
from digest.delivery.planning import Choice
from digest.delivery.transport import Envelope, Failure, SendError
from digest.delivery.views import PaperCache, ViewKey, digest_view
from digest.mail.message import compose_wire, message_domain
from digest.mail.render import PaperView, Renderer, RenderError
from digest.models import (
    DIGEST_PAPERS,
    DIGESTS,
    SENT_PAPERS,
    SUBSCRIBERS,
    DigestStatus,
    SubscriberStatus,
)
from digest.subscribers import lines_of

log = logging.getLogger(__name__)


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
    """Every digest handled by one send pass, and why it stopped early if it did."""

    outcomes: list[Outcome] = field(default_factory=list)
    aborted: str | None = None
    released: int = 0

    def count(self, status: DigestStatus) -> int:
        """How many digests ended in `status`."""
        return sum(1 for outcome in self.outcomes if outcome.status is status)


@dataclass
class Job:
    """A claimed digest, rendered and ready to send."""

    digest_id: int
    subscriber_id: int
    email: str
    attempts: int
    created_at: datetime
    papers: int  # how many papers it shows: the first unsent ones, up to `last_rank`
    last_rank: int
    message_id: str
    envelope: Envelope


@lru_cache(maxsize=4096)
def _terms(stored: str) -> tuple[str, ...]:
    """A digest paper's matched terms from their JSON text (the same in many digests)."""
    return tuple(json.loads(stored))


def _claimable(now: datetime) -> list[Any]:
    """What a claim may take, oldest first: digests whose lease expired, then planned ones
    due now. Each is one status, so the (status, id) index yields them in id order."""
    expired = sa.and_(DIGESTS.c.status == DigestStatus.sending, DIGESTS.c.lease_until < now)
    planned = sa.and_(
        DIGESTS.c.status == DigestStatus.planned,
        sa.or_(DIGESTS.c.next_attempt_at.is_(None), DIGESTS.c.next_attempt_at <= now),
    )
    return [expired, planned]


@dataclass
class Claimed:
    """What rendering a batch of claimed digests needs, loaded in one read."""

    digests: list[Any]
    subscribers: dict[int, Any]
    choices: dict[int, list[Choice]]  # each digest's papers not yet sent, by rank
    lines: dict[int, list[str]]  # each subscriber's interest lines
    papers: dict[int, Any]


def _refusal(subscriber: Any, row: Any, chosen: list[Choice]) -> tuple[DigestStatus, str] | None:
    """Why a claimed digest is closed unsent (its status and reply), or None to send it."""
    if subscriber.status != SubscriberStatus.active:
        return DigestStatus.failed, f"not sent: subscriber is {subscriber.status}"
    if not chosen and not (subscriber.empty_note and row.matched_count == 0):
        return DigestStatus.empty, "not sent: every paper was already sent"
    return None


def _record_sent(conn: Connection, sent: list[tuple[Job, str]], now: datetime) -> None:
    """Mark digests the server accepted as sent, and add their papers to the ledger.

    Recorded even if our claim was taken over meanwhile, so the other worker's lease
    renewal fails and it does not send the digest a second time.
    """
    conn.execute(
        sa.update(DIGESTS)
        .where(DIGESTS.c.id == sa.bindparam("digest"))
        .values(
            status=DigestStatus.sent,
            lease_until=None,
            claim_token=None,
            sent_at=now,
            message_id=sa.bindparam("mid"),
            last_reply=sa.bindparam("reply"),
            attempts=sa.bindparam("tries"),
        ),
        [
            {
                "digest": job.digest_id,
                "mid": job.message_id,
                "reply": reply[:1000],
                "tries": job.attempts + 1,
            }
            for job, reply in sent
        ],
    )
    # The ledger: every paper of the digest up to the last one shown. Those not shown in
    # that range were sent before, and stay as they were.
    ledger = sa.select(
        DIGESTS.c.subscriber_id,
        DIGEST_PAPERS.c.paper_id,
        DIGEST_PAPERS.c.digest_id,
        sa.bindparam("now", now, type_=SENT_PAPERS.c.sent_at.type),
    ).where(
        DIGESTS.c.id == DIGEST_PAPERS.c.digest_id,
        DIGEST_PAPERS.c.digest_id == sa.bindparam("digest"),
        DIGEST_PAPERS.c.rank <= sa.bindparam("last"),
    )
    columns = ["subscriber_id", "paper_id", "digest_id", "sent_at"]
    insert = insert_ignore(conn, SENT_PAPERS, ["subscriber_id", "paper_id"])
    conn.execute(
        insert.from_select(columns, ledger),
        [{"digest": job.digest_id, "last": job.last_rank} for job, _ in sent],
    )


class Outbox:
    """The database side of sending: claim, load, record, release."""

    def __init__(self, engine: Engine, renderer: Renderer) -> None:
        self.engine = engine
        self.renderer = renderer
        self.settings = renderer.settings
        self.token = uuid.uuid4().hex
        self.papers = PaperCache()

    def claim(self, now: datetime, limit: int) -> list[int]:
        """Lease up to `limit` sendable digests to this outbox; returns their ids."""
        lease = now + timedelta(seconds=self.settings.send_lease_seconds)
        claimed: list[int] = []
        with self.engine.begin() as conn:
            for claimable in _claimable(now):
                room = limit - len(claimed)
                if room <= 0:
                    break
                # A materialized CTE: as an IN (subquery), PostgreSQL may run the LIMIT ...
                # SKIP LOCKED subquery once per row and claim far more than `limit` rows.
                pick = (
                    sa.select(DIGESTS.c.id)
                    .where(claimable)
                    .order_by(DIGESTS.c.id)
                    .limit(room)
                    .with_for_update(skip_locked=True)
                    .cte("picked")
                    .prefix_with("MATERIALIZED", dialect="postgresql")
                )
                rows = conn.execute(
                    sa.update(DIGESTS)
                    .where(DIGESTS.c.id == pick.c.id)
                    .values(status=DigestStatus.sending, lease_until=lease, claim_token=self.token)
                    .returning(DIGESTS.c.id)
                )
                claimed += rows.scalars()
        return sorted(claimed)

    def prepare(self, ids: list[int], now: datetime) -> tuple[list[Job], list[Outcome]]:
        """Load and render claimed digests; those with nothing to send are closed at once.

        The steps: load (one read), decide and render each digest (no transaction open),
        then record the digests closed unsent (one write).
        """
        with self.engine.connect() as conn:
            claimed = self._load(conn, ids)
        jobs: list[Job] = []
        closing: list[tuple[Any, DigestStatus, str]] = []
        views = self.papers.views
        for row in claimed.digests:
            chosen = claimed.choices.get(row.id, [])
            refusal = _refusal(claimed.subscribers[row.subscriber_id], row, chosen)
            if refusal is not None:
                closing.append((row, *refusal))
                continue
            try:
                jobs.append(self._job(row, claimed, chosen, now, views))
            except RenderError as exc:  # never send a broken email
                closing.append((row, DigestStatus.failed, str(exc)))
        return jobs, self._close(closing)

    def _load(self, conn: Connection, ids: list[int]) -> Claimed:
        d, s = DIGESTS.c, SUBSCRIBERS.c
        digests = list(
            conn.execute(
                sa.select(
                    d.id, d.subscriber_id, d.period, d.matched_count, d.attempts, d.created_at
                ).where(d.id.in_(ids))
            )
        )
        wanted = {digest.subscriber_id for digest in digests}
        people = sa.select(s.id, s.email, s.status, s.empty_note, s.token_version)
        subscribers = {row.id: row for row in conn.execute(people.where(s.id.in_(wanted)))}
        choices = self._unsent_choices(conn, ids)
        papers = self.papers.load(conn, (c.paper_id for cs in choices.values() for c in cs))
        lines = {
            sub_id: [q for q, _ in found] for sub_id, found in lines_of(conn, subscribers).items()
        }
        return Claimed(digests, subscribers, choices, lines, papers)

    def _job(
        self,
        row: Any,
        claimed: Claimed,
        chosen: list[Choice],
        now: datetime,
        views: dict[ViewKey, PaperView],
    ) -> Job:
        """Render one digest into a message ready to send (RenderError if a template fails)."""
        subscriber = claimed.subscribers[row.subscriber_id]
        view = digest_view(
            self.settings,
            subscriber,
            row.period,
            chosen,
            max(row.matched_count - len(chosen), 0),
            papers=claimed.papers,
            subscribed=claimed.lines.get(subscriber.id, []),
            digest_id=row.id,
            views=views,
        )
        # No papers at all: the "nothing matched" note they opted in to.
        rendered = (self.renderer.digest if chosen else self.renderer.nothing)(view)
        # Papers cut to keep the email under the size limit stay unsent.
        shown = chosen[: rendered.shown]
        message_id = message_id_for(row.id, row.period, self.settings)
        message, wire = compose_wire(
            rendered,
            to=subscriber.email,
            settings=self.settings,
            message_id=message_id,
            date=now,
            unsubscribe_url=view.unsubscribe_url,
        )
        return Job(
            row.id,
            subscriber.id,
            subscriber.email,
            row.attempts,
            row.created_at,
            len(shown),
            shown[-1].rank if shown else 0,
            message_id,
            Envelope.of(message, to=subscriber.email, settings=self.settings, wire=wire),
        )

    def _close(self, closing: list[tuple[Any, DigestStatus, str]]) -> list[Outcome]:
        """Close digests that will not be sent, in one transaction; those whose claim was
        taken over meanwhile are left to the worker that holds them now."""
        if not closing:
            return []
        closed = []
        with self.engine.begin() as conn:
            for row, status, reply in closing:
                if self._finish(conn, row.id, status, last_reply=reply):
                    closed.append(Outcome(row.id, "", 0, status, None, reply))
        return closed

    @staticmethod
    def _unsent_choices(conn: Connection, ids: list[int]) -> dict[int, list[Choice]]:
        """The papers of each digest that its subscriber has not received yet, by rank."""
        dp, sent = DIGEST_PAPERS, SENT_PAPERS
        query = (
            sa.select(
                dp.c.digest_id,
                dp.c.paper_id,
                dp.c.score,
                dp.c.interest,
                sa.cast(dp.c.terms, sa.Text).label("terms"),
                dp.c.rank,
                dp.c.moved,
            )
            .join(DIGESTS, DIGESTS.c.id == dp.c.digest_id)
            .outerjoin(
                sent,
                sa.and_(
                    sent.c.subscriber_id == DIGESTS.c.subscriber_id,
                    sent.c.paper_id == dp.c.paper_id,
                ),
            )
            .where(dp.c.digest_id.in_(ids), dp.c.held.is_(False), sent.c.id.is_(None))
            .order_by(dp.c.digest_id, dp.c.rank)
        )
        found: dict[int, list[Choice]] = {}
        for digest_id, paper_id, score, interest, terms, rank, moved in conn.execute(query):
            choice = Choice(paper_id, score, interest, _terms(terms), rank, moved=moved)
            found.setdefault(digest_id, []).append(choice)
        return found

    def _finish(
        self, conn: Connection, digest_id: int, status: DigestStatus, **values: Any
    ) -> bool:
        done = conn.execute(
            sa.update(DIGESTS)
            .where(DIGESTS.c.id == digest_id, DIGESTS.c.claim_token == self.token)
            .values(status=status, lease_until=None, claim_token=None, **values)
        )
        return done.rowcount == 1

    def touch(self, jobs: list[Job], now: datetime) -> tuple[list[Job], list[Outcome]]:
        """Renew the lease of jobs about to be sent; returns (still sendable, closed).

        A job is dropped when another worker took its digest over (our lease expired) or
        its subscriber is no longer active (closed as failed), so neither is ever sent.
        """
        lease = now + timedelta(seconds=self.settings.send_lease_seconds)
        ids = [job.digest_id for job in jobs]
        active = sa.select(SUBSCRIBERS.c.id).where(
            SUBSCRIBERS.c.id == DIGESTS.c.subscriber_id,
            SUBSCRIBERS.c.status == SubscriberStatus.active,
        )
        ours = sa.and_(
            DIGESTS.c.id.in_(ids),
            DIGESTS.c.claim_token == self.token,
            DIGESTS.c.status == DigestStatus.sending,
        )
        with self.engine.begin() as conn:
            renewed = set(
                conn.execute(
                    sa.update(DIGESTS)
                    .where(ours, active.exists())
                    .values(lease_until=lease)
                    .returning(DIGESTS.c.id)
                ).scalars()
            )
            closed = []
            for job in jobs:
                if job.digest_id in renewed:
                    continue
                reply = "not sent: subscriber is not active"
                if self._finish(conn, job.digest_id, DigestStatus.failed, last_reply=reply):
                    closed.append(
                        Outcome(job.digest_id, job.email, 0, DigestStatus.failed, None, reply)
                    )
        return [job for job in jobs if job.digest_id in renewed], closed

    def record(self, results: list[tuple[Job, str | SendError]], now: datetime) -> list[Outcome]:
        """Record sent and failed messages, and the ledger, in one transaction."""
        outcomes = []
        sent = [(job, reply) for job, reply in results if isinstance(reply, str)]
        with self.engine.begin() as conn:
            if sent:
                _record_sent(conn, sent, now)
            for job, result in results:
                if isinstance(result, str):
                    status = DigestStatus.sent
                    outcomes.append(
                        Outcome(
                            job.digest_id, job.email, job.papers, status, job.message_id, result
                        )
                    )
                else:
                    outcomes.append(self._failed(conn, job, result, now))
        return outcomes

    def _failed(self, conn: Connection, job: Job, error: SendError, now: datetime) -> Outcome:
        attempts = job.attempts + 1
        reply = error.reply[:1000]
        too_old = now - job.created_at > timedelta(hours=self.settings.retry_max_age_hours)
        if error.failure is Failure.recipient:
            conn.execute(
                sa.update(SUBSCRIBERS)
                .where(
                    SUBSCRIBERS.c.id == job.subscriber_id,
                    SUBSCRIBERS.c.status == SubscriberStatus.active,
                )
                .values(status=SubscriberStatus.bounced, status_changed_at=now)
            )
        if error.failure is Failure.temporary and not too_old:
            schedule = self.settings.retry_schedule or [60.0]
            delay = schedule[min(attempts, len(schedule)) - 1] * random.uniform(0.8, 1.2)
            self._finish(
                conn,
                job.digest_id,
                DigestStatus.planned,
                attempts=attempts,
                next_attempt_at=now + timedelta(seconds=delay),
                last_reply=reply,
            )
            return Outcome(job.digest_id, job.email, 0, DigestStatus.planned, None, reply)
        self._finish(conn, job.digest_id, DigestStatus.failed, attempts=attempts, last_reply=reply)
        return Outcome(job.digest_id, job.email, 0, DigestStatus.failed, None, reply)

    def release(self, ids: list[int], reply: str | None = None) -> int:
        """Hand claimed digests back (no attempt counted), e.g. on shutdown or abort."""
        if not ids:
            return 0
        values: dict[str, Any] = {
            "status": DigestStatus.planned,
            "lease_until": None,
            "claim_token": None,
        }
        if reply:
            values["last_reply"] = reply[:1000]
        with self.engine.begin() as conn:
            done = conn.execute(
                sa.update(DIGESTS)
                .where(
                    DIGESTS.c.id.in_(ids),
                    DIGESTS.c.claim_token == self.token,
                    DIGESTS.c.status == DigestStatus.sending,
                )
                .values(**values)
            )
        return int(done.rowcount)

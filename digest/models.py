"""SQLModel tables: papers, subscribers and their interests, the digest outbox and the ledger."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlmodel import JSON, Column, Field, SQLModel

from digest.clock import utcnow


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite stores it naive)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ts(*, nullable: bool = False, index: bool = False) -> Any:
    column: Column[datetime] = Column(UTCDateTime(), nullable=nullable, index=index)
    if nullable:
        return Field(default=None, sa_column=column)
    return Field(default_factory=utcnow, sa_column=column)


def table_of(model: type[SQLModel]) -> sa.Table:
    """The Core table of a model, for bulk statements."""
    table: sa.Table = model.__table__  # type: ignore[attr-defined]
    return table


class SubscriberStatus(StrEnum):
    """Where a subscriber stands; only active subscribers get digests."""

    pending = "pending"
    active = "active"
    unsubscribed = "unsubscribed"
    bounced = "bounced"
    complained = "complained"
    paused = "paused"


class Cadence(StrEnum):
    """How often a subscriber gets a digest."""

    daily = "daily"
    weekdays = "weekdays"
    weekly = "weekly"


class DigestStatus(StrEnum):
    """The outbox state machine: planned -> sending -> sent | failed; or empty."""

    planned = "planned"
    sending = "sending"
    sent = "sent"
    failed = "failed"
    empty = "empty"


class Paper(SQLModel, table=True):
    """One paper, stored once whatever the number of sources and versions it came from."""

    id: int | None = Field(default=None, primary_key=True)
    canonical_id: str = Field(max_length=200, unique=True)
    version: int | None = None
    title: str
    abstract: str = ""
    authors: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    categories: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    url: str | None = Field(default=None, max_length=500)
    pdf_url: str | None = Field(default=None, max_length=500)
    doi: str | None = Field(default=None, max_length=200)
    arxiv_id: str | None = Field(default=None, max_length=50, index=True)
    published_at: datetime | None = _ts(nullable=True)
    first_seen_at: datetime = _ts(index=True)
    updated_at: datetime = _ts()
    sources: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    upvotes: int | None = None
    announce_type: str | None = Field(default=None, max_length=20)
    primary_category: str | None = Field(default=None, max_length=50)
    comment: str | None = None
    journal_ref: str | None = Field(default=None, max_length=500)
    ai_summary: str | None = None
    ai_keywords: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    github_repo: str | None = Field(default=None, max_length=500)
    project_page: str | None = Field(default=None, max_length=500)


# The most papers a subscriber may ask for in one digest.
MAX_PAPERS = 100


class Subscriber(SQLModel, table=True):
    """A person who receives digests; the email is stored normalised (lower case)."""

    # The due query looks subscribers up by their schedule rule.
    __table_args__ = (
        sa.Index("ix_subscriber_schedule", "status", "timezone", "send_hour", "cadence", "weekday"),
    )

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True)
    status: SubscriberStatus = Field(
        default=SubscriberStatus.pending, sa_type=sa.String(20), index=True
    )
    timezone: str = Field(default="UTC", max_length=64)
    send_hour: int = 7
    cadence: Cadence = Field(default=Cadence.daily, sa_type=sa.String(20))
    weekday: int = 0
    max_papers: int = 20
    token_version: int = 1
    feed_version: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    soft_bounces: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    empty_note: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    created_at: datetime = _ts()
    confirmed_at: datetime | None = _ts(nullable=True)
    # Set by the web app: when the last confirmation email went out, and the last change
    # of status (unsubscribed, paused, ...), for the admin stats.
    confirm_sent_at: datetime | None = _ts(nullable=True)
    status_changed_at: datetime | None = _ts(nullable=True)


class Interest(SQLModel, table=True):
    """One interest line as the subscriber typed it, and its canonical form."""

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(foreign_key="subscriber.id", index=True, ondelete="CASCADE")
    query: str = Field(max_length=500)
    canonical: str = Field(max_length=500, index=True)
    position: int = 0


class Digest(SQLModel, table=True):
    """The outbox: one row per subscriber and period, holding the papers chosen for it."""

    __table_args__ = (
        sa.UniqueConstraint("subscriber_id", "period"),
        # Claims take the lowest ids of one status: read in index order, nothing sorted.
        sa.Index("ix_digest_status_id", "status", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(foreign_key="subscriber.id", ondelete="CASCADE")
    period: str = Field(max_length=20)
    status: DigestStatus = Field(default=DigestStatus.planned, sa_type=sa.String(20))
    window_start: datetime = _ts()
    window_end: datetime = _ts()
    created_at: datetime = _ts()
    matched_count: int = 0
    attempts: int = 0
    next_attempt_at: datetime | None = _ts(nullable=True)
    lease_until: datetime | None = _ts(nullable=True)
    claim_token: str | None = Field(default=None, max_length=64)
    sent_at: datetime | None = _ts(nullable=True)
    message_id: str | None = Field(default=None, max_length=250)
    last_reply: str | None = Field(default=None, max_length=1000)


class DigestPaper(SQLModel, table=True):
    """A paper a digest matched, with its rank, score and why; `held` when it did not fit
    under the subscriber's cap and waits for a later digest (the full list shows it).

    No foreign keys: planning writes millions of these rows, and checking two keys made
    each insert five times as costly. Whoever deletes digests deletes their rows too
    (`privacy.erase`, `privacy.purge_unconfirmed`)."""

    digest_id: int = Field(primary_key=True)
    paper_id: int = Field(primary_key=True)
    rank: int
    score: float
    interest: str = Field(max_length=500)
    terms: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    held: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    moved: str = Field(default="", max_length=300, sa_column_kwargs={"server_default": ""})


class FeedbackKind(StrEnum):
    """What a reader said of a paper: more like it, or not for them."""

    more = "more"
    less = "less"


class Feedback(SQLModel, table=True):
    """A reader's one click on a paper ("More like this", "Not for me"), and why; the last
    click on a paper is the one kept. `reason` is "topic", "author" or "kind", and `detail`
    the author or the kind of paper ("survey") muted."""

    subscriber_id: int = Field(foreign_key="subscriber.id", primary_key=True, ondelete="CASCADE")
    paper_id: int = Field(foreign_key="paper.id", primary_key=True, ondelete="CASCADE")
    kind: FeedbackKind = Field(sa_type=sa.String(10))
    reason: str = Field(default="", max_length=20)
    detail: str = Field(default="", max_length=300)
    created_at: datetime = _ts()


class SentPaper(SQLModel, table=True):
    """The ledger: a paper a subscriber has received; it is never sent to them again."""

    __table_args__ = (sa.UniqueConstraint("subscriber_id", "paper_id"),)

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(foreign_key="subscriber.id", ondelete="CASCADE")
    paper_id: int = Field(foreign_key="paper.id", ondelete="CASCADE")
    digest_id: int = Field(foreign_key="digest.id", ondelete="CASCADE")
    sent_at: datetime = _ts()


class Erasure(SQLModel, table=True):
    """What is left of erased subscribers: how many, when and why, and nothing about who
    (`reason`: "self" from the preferences page, "admin", or "unconfirmed" for pending
    sign-ups purged after `pending_purge_days`). `last_subscriber_id` is the highest
    subscriber id there was, so that no new subscriber is given an erased one's id."""

    id: int | None = Field(default=None, primary_key=True)
    erased_at: datetime = _ts()
    reason: str = Field(max_length=20)
    count: int = 1
    last_subscriber_id: int = 0


class IngestRun(SQLModel, table=True):
    """One ingest of one source: when, what it counted, and why it failed if it did."""

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=200, index=True)
    kind: str = Field(max_length=20)
    started_at: datetime = _ts()
    finished_at: datetime = _ts()
    fetched: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    not_modified: bool = False
    error: str | None = None
    problems: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class HttpValidator(SQLModel, table=True):
    """The ETag / Last-Modified of a URL's last stored response, for conditional GET."""

    url: str = Field(max_length=1000, primary_key=True)
    etag: str | None = Field(default=None, max_length=500)
    last_modified: str | None = Field(default=None, max_length=100)
    updated_at: datetime = _ts()


PAPERS = table_of(Paper)
SUBSCRIBERS = table_of(Subscriber)
INTERESTS = table_of(Interest)
DIGESTS = table_of(Digest)
DIGEST_PAPERS = table_of(DigestPaper)
FEEDBACK = table_of(Feedback)
SENT_PAPERS = table_of(SentPaper)
INGEST_RUNS = table_of(IngestRun)
ERASURES = table_of(Erasure)
HTTP_VALIDATORS = table_of(HttpValidator)

"""What the public pages do to subscribers: sign-up, confirmation, preferences, unsubscribe.

A sign-up never reveals whether an address is known: the caller answers the same way
whatever `request_subscription` decides, and at most one email per address per hour is
sent (recorded in Subscriber.confirm_sent_at, so it holds across processes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from digest.match import InterestError, parse
from digest.models import (
    DIGEST_PAPERS,
    DIGESTS,
    INTERESTS,
    PAPERS,
    SENT_PAPERS,
    SUBSCRIBERS,
    Cadence,
    SubscriberStatus,
)
from digest.subscribers import SubscriberError, check_timezone, normalise_email

EMAIL_INTERVAL = timedelta(hours=1)
MAX_INTERESTS = 20
MAX_PAPERS_LIMIT = 100


@dataclass
class Prefs:
    """A subscriber's choices as a form submits them, validated."""

    interests: list[tuple[str, str]]  # (line as typed, canonical form)
    timezone: str
    send_hour: int
    cadence: Cadence
    weekday: int = 0
    max_papers: int = 20


class FormError(ValueError):
    """Form input that cannot be used: messages by field, and by interest line number."""

    def __init__(self, fields: dict[str, str], lines: dict[int, str] | None = None) -> None:
        super().__init__("; ".join([*fields.values(), *(lines or {}).values()]))
        self.fields = fields
        self.lines = lines or {}


def parse_interests(text: str) -> tuple[list[tuple[str, str]], dict[int, str]]:
    """Parse one interest per line; returns (valid lines, errors by 1-based line number)."""
    valid: list[tuple[str, str]] = []
    errors: dict[int, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            valid.append((line.strip(), parse(line).canonical))
        except InterestError as exc:
            errors[number] = str(exc).removesuffix(f": {exc.line!r}")
    return valid, errors


def _int(raw: Any, name: str, low: int, high: int, fields: dict[str, str]) -> int:
    try:
        value = int(str(raw).strip())
    except ValueError:
        fields[name] = f"{name.replace('_', ' ')} must be a whole number, not {raw!r}"
        return low
    if not low <= value <= high:
        fields[name] = f"{name.replace('_', ' ')} must be between {low} and {high}, not {value}"
    return value


def validate_prefs(data: dict[str, Any], *, default_max: int = 20) -> Prefs:
    """Check the preference fields of a form; raise FormError naming every problem."""
    fields: dict[str, str] = {}
    interests, lines = parse_interests(str(data.get("interests", "")))
    if not interests and not lines:
        fields["interests"] = "enter at least one interest, one per line"
    elif len(interests) + len(lines) > MAX_INTERESTS:
        fields["interests"] = f"at most {MAX_INTERESTS} interests"
    timezone = str(data.get("timezone") or "UTC").strip()
    try:
        check_timezone(timezone)
    except SubscriberError as exc:
        fields["timezone"] = str(exc)
    send_hour = _int(data.get("send_hour", 7), "send_hour", 0, 23, fields)
    try:
        cadence = Cadence(str(data.get("cadence") or "daily"))
    except ValueError:
        fields["cadence"] = f"cadence must be one of {', '.join(Cadence)}"
        cadence = Cadence.daily
    weekday = _int(data.get("weekday", 0), "weekday", 0, 6, fields)
    max_papers = _int(
        data.get("max_papers", default_max), "max_papers", 1, MAX_PAPERS_LIMIT, fields
    )
    if fields or lines:
        raise FormError(fields, lines)
    return Prefs(interests, timezone, send_hour, cadence, weekday, max_papers)


class Action(StrEnum):
    """What a sign-up leads to (never shown to the person signing up)."""

    confirm = "confirm"  # new, pending or unsubscribed: send a confirmation link
    manage = "manage"  # already subscribed: send a link to the preferences page
    throttled = "throttled"  # an email went to this address less than an hour ago
    ignored = "ignored"  # bounced or complained: never email again from a web form


@dataclass
class SignUp:
    """The outcome of a sign-up: what to send, to whom."""

    action: Action
    subscriber_id: int | None = None
    email: str = ""
    token_version: int = 1
    interests: list[str] = field(default_factory=list)


def replace_interests(conn: Connection, subscriber_id: int, prefs: Prefs) -> None:
    conn.execute(sa.delete(INTERESTS).where(INTERESTS.c.subscriber_id == subscriber_id))
    conn.execute(
        sa.insert(INTERESTS),
        [
            {"subscriber_id": subscriber_id, "query": q, "canonical": c, "position": i}
            for i, (q, c) in enumerate(prefs.interests)
        ],
    )


def _pref_values(prefs: Prefs) -> dict[str, Any]:
    return {
        "timezone": prefs.timezone,
        "send_hour": prefs.send_hour,
        "cadence": prefs.cadence,
        "weekday": prefs.weekday,
        "max_papers": prefs.max_papers,
    }


def request_subscription(engine: Engine, email: str, prefs: Prefs, now: datetime) -> SignUp:
    """Record a sign-up as pending (or leave a known subscriber alone); say what to send."""
    address = normalise_email(email)
    lines = [q for q, _ in prefs.interests]
    try:
        with engine.begin() as conn:
            row = conn.execute(
                sa.select(SUBSCRIBERS).where(SUBSCRIBERS.c.email == address).with_for_update()
            ).first()
            if row is None:
                new_id = conn.execute(
                    sa.insert(SUBSCRIBERS)
                    .values(
                        email=address,
                        status=SubscriberStatus.pending,
                        token_version=1,
                        soft_bounces=0,
                        created_at=now,
                        confirm_sent_at=now,
                        status_changed_at=now,
                        **_pref_values(prefs),
                    )
                    .returning(SUBSCRIBERS.c.id)
                ).scalar_one()
                replace_interests(conn, new_id, prefs)
                return SignUp(Action.confirm, new_id, address, 1, lines)
            if row.status in (SubscriberStatus.bounced, SubscriberStatus.complained):
                return SignUp(Action.ignored)
            if row.confirm_sent_at is not None and now - row.confirm_sent_at < EMAIL_INTERVAL:
                return SignUp(Action.throttled)
            stamp = SUBSCRIBERS.update().where(SUBSCRIBERS.c.id == row.id)
            if row.status in (SubscriberStatus.active, SubscriberStatus.paused):
                conn.execute(stamp.values(confirm_sent_at=now))
                return SignUp(Action.manage, row.id, address, row.token_version)
            conn.execute(
                stamp.values(
                    status=SubscriberStatus.pending,
                    confirm_sent_at=now,
                    status_changed_at=now,
                    **_pref_values(prefs),
                )
            )
            replace_interests(conn, row.id, prefs)
            return SignUp(Action.confirm, row.id, address, row.token_version, lines)
    except IntegrityError:
        # A concurrent sign-up for the same new address won; it sends the one email.
        return SignUp(Action.throttled)


def email_failed(engine: Engine, subscriber_id: int) -> None:
    """Forget that an email was sent (it was not), so the person can try again at once."""
    with engine.begin() as conn:
        conn.execute(
            SUBSCRIBERS.update()
            .where(SUBSCRIBERS.c.id == subscriber_id)
            .values(confirm_sent_at=None)
        )


def load(conn: Connection, subscriber_id: int) -> Any | None:
    """The subscriber row with this id, if any."""
    return conn.execute(sa.select(SUBSCRIBERS).where(SUBSCRIBERS.c.id == subscriber_id)).first()


def interests_of(conn: Connection, subscriber_id: int) -> list[str]:
    """The subscriber's interest lines, in order."""
    return list(
        conn.execute(
            sa.select(INTERESTS.c.query)
            .where(INTERESTS.c.subscriber_id == subscriber_id)
            .order_by(INTERESTS.c.position)
        ).scalars()
    )


def confirm(engine: Engine, subscriber_id: int, now: datetime) -> bool:
    """Activate a pending subscriber; False if they were not pending (already confirmed)."""
    with engine.begin() as conn:
        done = conn.execute(
            SUBSCRIBERS.update()
            .where(
                SUBSCRIBERS.c.id == subscriber_id,
                SUBSCRIBERS.c.status == SubscriberStatus.pending,
            )
            .values(
                status=SubscriberStatus.active,
                confirmed_at=now,
                status_changed_at=now,
                confirm_sent_at=None,
            )
        )
    return done.rowcount == 1


def update_preferences(
    engine: Engine, subscriber_id: int, prefs: Prefs, *, paused: bool, now: datetime
) -> None:
    """Save edited preferences; pause or resume an active subscriber."""
    with engine.begin() as conn:
        row = load(conn, subscriber_id)
        if row is None:
            return
        values = _pref_values(prefs)
        running = (SubscriberStatus.active, SubscriberStatus.paused)
        wanted = SubscriberStatus.paused if paused else SubscriberStatus.active
        if row.status in running and row.status != wanted:
            values.update(status=wanted, status_changed_at=now)
        conn.execute(SUBSCRIBERS.update().where(SUBSCRIBERS.c.id == row.id).values(**values))
        replace_interests(conn, row.id, prefs)


def unsubscribe(engine: Engine, subscriber_id: int, now: datetime) -> int:
    """Unsubscribe at once and revoke every earlier link; returns the new token version."""
    with engine.begin() as conn:
        return int(
            conn.execute(
                SUBSCRIBERS.update()
                .where(SUBSCRIBERS.c.id == subscriber_id)
                .values(
                    status=SubscriberStatus.unsubscribed,
                    status_changed_at=now,
                    token_version=SUBSCRIBERS.c.token_version + 1,
                )
                .returning(SUBSCRIBERS.c.token_version)
            ).scalar_one()
        )


def resubscribe(engine: Engine, subscriber_id: int, now: datetime) -> bool:
    """Make an unsubscribed (once confirmed) subscriber active again; False otherwise."""
    with engine.begin() as conn:
        done = conn.execute(
            SUBSCRIBERS.update()
            .where(
                SUBSCRIBERS.c.id == subscriber_id,
                SUBSCRIBERS.c.status == SubscriberStatus.unsubscribed,
                SUBSCRIBERS.c.confirmed_at.is_not(None),
            )
            .values(status=SubscriberStatus.active, status_changed_at=now)
        )
    return done.rowcount == 1


def recent_digests(
    conn: Connection, subscriber_id: int, limit: int = 10, *, only: int | None = None
) -> list[Any]:
    """The subscriber's latest digests that were sent, newest first, with paper counts."""
    count = (
        sa.select(sa.func.count())
        .where(DIGEST_PAPERS.c.digest_id == DIGESTS.c.id)
        .scalar_subquery()
        .label("papers")
    )
    query = (
        sa.select(DIGESTS.c.id, DIGESTS.c.period, DIGESTS.c.sent_at, count)
        .where(DIGESTS.c.subscriber_id == subscriber_id, DIGESTS.c.status == "sent")
        .order_by(DIGESTS.c.sent_at.desc())
        .limit(limit)
    )
    if only is not None:
        query = query.where(DIGESTS.c.id == only)
    return list(conn.execute(query))


def digest_papers(conn: Connection, digest_id: int) -> list[Any]:
    """Every paper chosen for a digest, in rank order, with why it matched."""
    return list(
        conn.execute(
            sa.select(PAPERS, DIGEST_PAPERS.c.interest, DIGEST_PAPERS.c.rank)
            .join(DIGEST_PAPERS, DIGEST_PAPERS.c.paper_id == PAPERS.c.id)
            .where(DIGEST_PAPERS.c.digest_id == digest_id)
            .order_by(DIGEST_PAPERS.c.rank)
        )
    )


def feed_papers(conn: Connection, subscriber_id: int, limit: int = 100) -> list[Any]:
    """The papers the subscriber has received (the ledger), newest first."""
    return list(
        conn.execute(
            sa.select(PAPERS, SENT_PAPERS.c.sent_at)
            .join(SENT_PAPERS, SENT_PAPERS.c.paper_id == PAPERS.c.id)
            .where(SENT_PAPERS.c.subscriber_id == subscriber_id)
            .order_by(SENT_PAPERS.c.sent_at.desc(), PAPERS.c.id.desc())
            .limit(limit)
        )
    )

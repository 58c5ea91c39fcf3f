"""Subscribers and their interest lines: create, update and unsubscribe."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Engine
from sqlmodel import Session, select

from digest.clock import utcnow
from digest.db import session_scope
from digest.match import parse
from digest.models import Cadence, Interest, Subscriber, SubscriberStatus, table_of


class SubscriberError(ValueError):
    """Input that cannot make a valid subscriber; the message says which field and why."""


def normalise_email(address: str) -> str:
    """Validate an address (syntax only) and return it in lower case."""
    try:
        return validate_email(address.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise SubscriberError(f"email {address!r}: {exc}") from exc


def check_timezone(name: str) -> str:
    """Return `name` if it is an IANA time zone, else raise SubscriberError."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SubscriberError(f"timezone {name!r} is not an IANA time zone name") from exc
    return name


def find(session: Session, email: str) -> Subscriber | None:
    """The subscriber with this address, if any."""
    return session.exec(
        select(Subscriber).where(Subscriber.email == normalise_email(email))
    ).first()


def subscribe(
    engine: Engine,
    email: str,
    interests: Sequence[str],
    *,
    status: SubscriberStatus = SubscriberStatus.active,
    timezone: str = "UTC",
    send_hour: int = 7,
    cadence: Cadence = Cadence.daily,
    max_papers: int = 20,
    now: datetime | None = None,
    weekday: int = 0,
    empty_note: bool = False,
) -> tuple[Subscriber, bool]:
    """Create or update a subscriber and replace their interests; returns (row, created).

    Every interest line is parsed first, so an invalid one changes nothing.
    """
    if not interests:
        raise SubscriberError("at least one interest is needed")
    queries = [(line.strip(), parse(line).canonical) for line in interests]
    address = normalise_email(email)
    check_timezone(timezone)
    if not 0 <= send_hour <= 23:
        raise SubscriberError(f"send hour {send_hour} is not between 0 and 23")
    if not 0 <= weekday <= 6:
        raise SubscriberError(f"weekday {weekday} is not between 0 (Monday) and 6 (Sunday)")
    now = now or utcnow()
    with session_scope(engine) as session:
        subscriber = find(session, address)
        created = subscriber is None
        if subscriber is None:
            subscriber = Subscriber(email=address, created_at=now)
        subscriber.status = status
        subscriber.timezone = timezone
        subscriber.send_hour = send_hour
        subscriber.cadence = cadence
        subscriber.max_papers = max_papers
        subscriber.weekday = weekday
        subscriber.empty_note = empty_note
        if status is SubscriberStatus.active and subscriber.confirmed_at is None:
            subscriber.confirmed_at = now
        session.add(subscriber)
        session.flush()
        assert subscriber.id is not None
        lines = table_of(Interest)
        session.execute(sa.delete(lines).where(lines.c.subscriber_id == subscriber.id))
        for position, (query, canonical) in enumerate(queries):
            session.add(
                Interest(
                    subscriber_id=subscriber.id,
                    query=query,
                    canonical=canonical,
                    position=position,
                )
            )
    return subscriber, created


def unsubscribe(engine: Engine, email: str) -> bool:
    """Mark a subscriber unsubscribed and revoke their links; False if unknown."""
    with session_scope(engine) as session:
        subscriber = find(session, email)
        if subscriber is None:
            return False
        subscriber.status = SubscriberStatus.unsubscribed
        subscriber.status_changed_at = utcnow()
        subscriber.token_version += 1
        session.add(subscriber)
    return True

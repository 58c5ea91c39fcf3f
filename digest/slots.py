"""Send slots: when each subscriber's digest is due, from their time zone, hour and cadence.

A slot is the UTC instant of a subscriber's local send hour on a day their cadence sends;
its period key is that local date (daily, weekdays) or its ISO week (weekly). Subscribers
who share a rule (time zone, hour, cadence, weekday) share their slots, so the due query
computes slots once per distinct rule and lets the database match subscribers to them.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy import Connection

from digest.models import DIGESTS, SUBSCRIBERS, Cadence, SubscriberStatus

log = logging.getLogger(__name__)
CHUNK = 300  # rules per statement: keeps bind parameters far below SQLite's limit


@dataclass(frozen=True)
class Rule:
    """When a subscriber wants their digest."""

    timezone: str
    send_hour: int
    cadence: str
    weekday: int = 0

    def sends_on(self, day: date) -> bool:
        """Whether a digest is due on this local date."""
        if self.cadence == Cadence.weekly:
            return day.weekday() == self.weekday
        if self.cadence == Cadence.weekdays:
            return day.weekday() < 5
        return True

    def at(self, day: date) -> datetime:
        """The UTC instant of the send hour on this local date.

        A send hour skipped by a spring-forward change falls at the change itself; one
        repeated by a fall-back change is its first occurrence (PEP 495 fold=0).
        """
        local = datetime.combine(day, time(self.send_hour), tzinfo=ZoneInfo(self.timezone))
        return local.astimezone(UTC)

    def period(self, day: date) -> str:
        """The period key of the digest sent on this local date."""
        if self.cadence == Cadence.weekly:
            year, week, _ = day.isocalendar()
            return f"{year}-W{week:02d}"
        return day.isoformat()

    def today(self, now: datetime) -> date:
        """The subscriber's local date at `now`."""
        return now.astimezone(ZoneInfo(self.timezone)).date()


class Slot(NamedTuple):
    """One scheduled digest: its period key and UTC instant."""

    period: str
    at: datetime


def last_slot(rule: Rule, now: datetime) -> Slot | None:
    """The latest slot at or before `now` (None only for an impossible weekday)."""
    today = rule.today(now)
    for back in range(9):
        day = today - timedelta(days=back)
        if rule.sends_on(day) and (at := rule.at(day)) <= now:
            return Slot(rule.period(day), at)
    return None


def slots_between(rule: Rule, start: datetime, end: datetime) -> Iterator[Slot]:
    """The slots in [start, end), in order."""
    day = rule.today(start) - timedelta(days=1)
    last = rule.today(end) + timedelta(days=1)
    while day <= last:
        if rule.sends_on(day) and start <= (at := rule.at(day)) < end:
            yield Slot(rule.period(day), at)
        day += timedelta(days=1)


def _valid(rule: Rule) -> bool:
    try:
        ZoneInfo(rule.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        log.error("unknown time zone %r: its subscribers are skipped", rule.timezone)
        return False
    return True


def _rules(conn: Connection, *extra: Any) -> list[tuple[Rule, tuple[Any, ...]]]:
    s = SUBSCRIBERS.c
    query = (
        sa.select(s.timezone, s.send_hour, s.cadence, s.weekday, *extra)
        .where(s.status == SubscriberStatus.active)
        .group_by(s.timezone, s.send_hour, s.cadence, s.weekday)
    )
    found = []
    for tz, hour, cadence, weekday, *rest in conn.execute(query):
        rule = Rule(tz, hour, cadence, weekday)
        if _valid(rule):
            found.append((rule, tuple(rest)))
    return found


class Due(NamedTuple):
    """A subscriber whose digest is due: the period it is for, their cap, their note choice."""

    subscriber_id: int
    period: str
    max_papers: int
    empty_note: bool


def _wanted(rules: Sequence[tuple[Rule, str]]) -> Any:
    selects = [
        sa.select(
            sa.cast(sa.literal(rule.timezone), sa.String).label("timezone"),
            sa.cast(sa.literal(rule.send_hour), sa.Integer).label("send_hour"),
            sa.cast(sa.literal(str(rule.cadence)), sa.String).label("cadence"),
            sa.cast(sa.literal(rule.weekday), sa.Integer).label("weekday"),
            sa.cast(sa.literal(period), sa.String).label("period"),
        )
        for rule, period in rules
    ]
    union = selects[0] if len(selects) == 1 else sa.union_all(*selects)
    return union.cte("wanted")


def due(conn: Connection, now: datetime, grace: timedelta) -> list[Due]:
    """Active subscribers whose latest slot passed less than `grace` ago, with no digest yet.

    A slot older than the grace is skipped: its papers roll into the next digest.
    """
    open_rules = []
    for rule, _ in _rules(conn):
        slot = last_slot(rule, now)
        if slot is not None and now - slot.at <= grace:
            open_rules.append((rule, slot.period))
    found: list[Due] = []
    s = SUBSCRIBERS.c
    for start in range(0, len(open_rules), CHUNK):
        wanted = _wanted(open_rules[start : start + CHUNK])
        done = sa.select(DIGESTS.c.id).where(
            DIGESTS.c.subscriber_id == s.id, DIGESTS.c.period == wanted.c.period
        )
        query = (
            sa.select(s.id, wanted.c.period, s.max_papers, s.empty_note)
            .join(
                wanted,
                sa.and_(
                    s.timezone == wanted.c.timezone,
                    s.send_hour == wanted.c.send_hour,
                    s.cadence == wanted.c.cadence,
                    s.weekday == wanted.c.weekday,
                ),
            )
            .where(s.status == SubscriberStatus.active, ~done.exists())
            .order_by(s.id)
        )
        found += [Due(*row) for row in conn.execute(query)]
    return found


def forecast(conn: Connection, now: datetime, hours: int = 24) -> list[tuple[datetime, int]]:
    """Digests scheduled in the next `hours`, counted by the UTC hour they fall in."""
    end = now + timedelta(hours=hours)
    counts: Counter[datetime] = Counter()
    for rule, (subscribers,) in _rules(conn, sa.func.count()):
        for slot in slots_between(rule, now, end):
            counts[slot.at.replace(minute=0, second=0, microsecond=0)] += subscribers
    return sorted(counts.items())

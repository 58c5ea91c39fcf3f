"""Who is due: each subscriber's send slots, from their time zone, hour and cadence.

A slot is the UTC instant of a subscriber's local send hour on a day their cadence sends;
its period key is that local date (daily, weekdays) or its ISO week (weekly). Subscribers
who share a rule (time zone, hour, cadence, weekday) share their slots, so the due query
computes slots once per distinct rule and lets the database match subscribers to them.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy import Connection

from digest.models import DIGESTS, SUBSCRIBERS, Cadence, SubscriberStatus

log = logging.getLogger(__name__)


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """The time zone named (ZoneInfo's own cache keeps only a few alive)."""
    return ZoneInfo(name)


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
        local = datetime.combine(day, time(self.send_hour), tzinfo=zone(self.timezone))
        return local.astimezone(UTC)

    def period(self, day: date) -> str:
        """The period key of the digest sent on this local date."""
        if self.cadence == Cadence.weekly:
            year, week, _ = day.isocalendar()
            return f"{year}-W{week:02d}"
        return day.isoformat()

    def today(self, now: datetime) -> date:
        """The subscriber's local date at `now`."""
        return now.astimezone(zone(self.timezone)).date()

    def current_period(self, now: datetime) -> str | None:
        """The period `now` falls in, whatever the hour; None on a day that gets nothing."""
        day = self.today(now)
        if self.cadence == Cadence.weekdays and day.weekday() >= 5:
            return None
        return self.period(day)


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


# Filled per call with the rules whose slot is open; matched to subscribers in SQL.
_OPEN = sa.Table(
    "due_rule",
    sa.MetaData(),
    sa.Column("timezone", sa.String(64)),
    sa.Column("send_hour", sa.Integer),
    sa.Column("cadence", sa.String(20)),
    sa.Column("weekday", sa.Integer),
    sa.Column("period", sa.String(20)),
    sa.PrimaryKeyConstraint("timezone", "send_hour", "cadence", "weekday"),
    prefixes=["TEMPORARY"],
)


def due(conn: Connection, now: datetime, grace: timedelta) -> list[Due]:
    """Active subscribers whose latest slot passed less than `grace` ago, with no digest yet.

    A slot older than the grace is skipped: its papers roll into the next digest.
    """
    open_rules = []
    for rule, _ in _rules(conn):
        slot = last_slot(rule, now)
        if slot is not None and now - slot.at <= grace:
            open_rules.append(
                {
                    "timezone": rule.timezone,
                    "send_hour": rule.send_hour,
                    "cadence": str(rule.cadence),
                    "weekday": rule.weekday,
                    "period": slot.period,
                }
            )
    if not open_rules:
        return []
    s, o = SUBSCRIBERS.c, _OPEN.c
    done = sa.select(DIGESTS.c.id).where(
        DIGESTS.c.subscriber_id == s.id, DIGESTS.c.period == o.period
    )
    query = (
        sa.select(s.id, o.period, s.max_papers, s.empty_note)
        .select_from(_OPEN)
        .join(
            SUBSCRIBERS,
            sa.and_(
                s.timezone == o.timezone,
                s.send_hour == o.send_hour,
                s.cadence == o.cadence,
                s.weekday == o.weekday,
            ),
        )
        .where(s.status == SubscriberStatus.active, ~done.exists())
        .order_by(s.id)
    )
    # A tick that failed half-way (a lock, a lost connection) may have left the table on
    # this pooled connection: start clean, whatever the last tick did.
    conn.execute(sa.text("DROP TABLE IF EXISTS due_rule"))
    _OPEN.create(conn)
    try:
        conn.execute(sa.insert(_OPEN), open_rules)
        if conn.dialect.name == "postgresql":  # temporary tables get no statistics otherwise
            conn.execute(sa.text("ANALYZE due_rule"))
        return [Due(*row) for row in conn.execute(query)]
    finally:
        _OPEN.drop(conn)


def unplanned(conn: Connection, now: datetime) -> list[Due]:
    """Active subscribers with no digest for the period of `now`, whatever their send hour.

    What `digest run` plans: everyone whose current period (today, this week) has no
    digest yet, as opposed to `due`, which waits for each subscriber's own send hour.
    """
    s = SUBSCRIBERS.c
    query = sa.select(
        s.id, s.timezone, s.send_hour, s.cadence, s.weekday, s.max_papers, s.empty_note
    ).where(s.status == SubscriberStatus.active)
    wanted: list[Due] = []
    valid: dict[str, bool] = {}  # by time zone, so a bad one is logged once
    periods: dict[tuple[str, int, str, int], str | None] = {}  # by rule: computed once each
    for sub_id, tz, hour, cadence, weekday, max_papers, note in conn.execute(query):
        key = (tz, hour, cadence, weekday)
        if key not in periods:
            rule = Rule(*key)
            if tz not in valid:
                valid[tz] = _valid(rule)
            periods[key] = rule.current_period(now) if valid[tz] else None
        if (period := periods[key]) is not None:
            wanted.append(Due(sub_id, period, max_papers, note))
    current = {row.period for row in wanted}
    existing = set()
    if current:
        rows = conn.execute(
            sa.select(DIGESTS.c.subscriber_id, DIGESTS.c.period).where(
                DIGESTS.c.period.in_(current)
            )
        )
        existing = {(sub_id, period) for sub_id, period in rows}
    return [row for row in wanted if (row.subscriber_id, row.period) not in existing]


def one(conn: Connection, subscriber_id: int, now: datetime) -> list[Due]:
    """Subscriber `subscriber_id` as if due now, whatever their state (for previews)."""
    s = SUBSCRIBERS.c
    row = conn.execute(
        sa.select(s.timezone, s.send_hour, s.cadence, s.weekday, s.max_papers, s.empty_note).where(
            s.id == subscriber_id
        )
    ).first()
    if row is None:
        return []
    period = Rule(row.timezone, row.send_hour, row.cadence, row.weekday).current_period(now)
    return [Due(subscriber_id, period or "preview", row.max_papers, row.empty_note)]


def forecast(conn: Connection, now: datetime, hours: int = 24) -> list[tuple[datetime, int]]:
    """Digests scheduled in the next `hours`, counted by the UTC hour they fall in."""
    end = now + timedelta(hours=hours)
    counts: Counter[datetime] = Counter()
    for rule, (subscribers,) in _rules(conn, sa.func.count()):
        for slot in slots_between(rule, now, end):
            counts[slot.at.replace(minute=0, second=0, microsecond=0)] += subscribers
    return sorted(counts.items())

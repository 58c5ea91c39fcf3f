"""Due digests over simulated time: time zones, cadences, catch-up, daylight-saving days."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from digest.config import Settings
from digest.delivery import slots
from digest.delivery.planning import plan
from digest.delivery.slots import Rule, forecast, last_slot
from digest.match.engine import InterestMatcher
from digest.models import DIGEST_PAPERS, DIGESTS, PAPERS, Cadence, DigestStatus
from digest.sources.ingest import PaperIn, store
from digest.subscribers import subscribe

TICK = timedelta(minutes=15)
MATCHER = InterestMatcher()

# (time zone, local send hour, cadence, weekday): eight zones, offsets of :30 and :45,
# both hemispheres, every cadence.
PEOPLE = [
    ("UTC", 7, Cadence.daily, 0),
    ("Europe/Paris", 8, Cadence.weekdays, 0),
    ("America/New_York", 6, Cadence.weekly, 0),
    ("Asia/Tokyo", 9, Cadence.daily, 0),
    ("Australia/Sydney", 7, Cadence.weekly, 4),
    ("Asia/Kolkata", 7, Cadence.weekdays, 0),
    ("Asia/Kathmandu", 23, Cadence.daily, 0),
    ("America/Los_Angeles", 0, Cadence.weekly, 6),
    ("Pacific/Auckland", 5, Cadence.daily, 0),
]


def ticks(start: datetime, end: datetime, step: timedelta = TICK) -> Iterator[datetime]:
    at = start
    while at < end:
        yield at
        at += step


def add_people(engine: Engine, people: list[tuple[str, int, Cadence, int]]) -> list[int]:
    ids = []
    for n, (tz, hour, cadence, weekday) in enumerate(people):
        row, _ = subscribe(
            engine,
            f"p{n}@example.org",
            ["diffusion"],
            timezone=tz,
            send_hour=hour,
            cadence=cadence,
            weekday=weekday,
            max_papers=50,
            now=datetime(2026, 1, 1, tzinfo=UTC),
        )
        assert row.id is not None
        ids.append(row.id)
    return ids


def planned(engine: Engine) -> dict[int, list[tuple[str, datetime]]]:
    found: dict[int, list[tuple[str, datetime]]] = {}
    with engine.connect() as conn:
        query = sa.select(DIGESTS.c.subscriber_id, DIGESTS.c.period, DIGESTS.c.created_at)
        for sub_id, period, created in conn.execute(query.order_by(DIGESTS.c.created_at)):
            found.setdefault(sub_id, []).append((period, created))
    return found


def expected(
    tz: str, hour: int, cadence: Cadence, weekday: int, start: datetime, end: datetime
) -> list[tuple[str, datetime]]:
    """An independent oracle: the first tick whose local time reaches the send hour."""
    zone = ZoneInfo(tz)
    firsts: dict[date, datetime] = {}
    for at in ticks(start - timedelta(days=2), end):
        local = at.astimezone(zone)
        day = local.date()
        sends = {
            Cadence.daily: True,
            Cadence.weekdays: day.weekday() < 5,
            Cadence.weekly: day.weekday() == weekday,
        }[cadence]
        if sends and local.hour >= hour and day not in firsts:
            firsts[day] = at
    wanted = []
    for day, at in sorted(firsts.items()):
        key = f"{day.isocalendar()[0]}-W{day.isocalendar()[1]:02d}"
        key = key if cadence is Cadence.weekly else day.isoformat()
        if at >= start:
            wanted.append((key, at))
        elif start - at <= timedelta(hours=1):  # the week test's catch-up grace
            wanted.append((key, start))
    return wanted


def test_a_week_over_nine_time_zones_and_every_cadence(engine: Engine, settings: Settings) -> None:
    settings = settings.model_copy(update={"catch_up_hours": 1})
    ids = add_people(engine, PEOPLE)
    start = datetime(2026, 11, 22, 11, 30, tzinfo=UTC)
    end = start + timedelta(days=7)
    papers_at = {start + timedelta(hours=5 * n + 1): n for n in range(34)}
    for at in ticks(start, end):
        for seen, n in papers_at.items():
            if at - TICK < seen <= at:
                store(engine, [PaperIn(title=f"Diffusion {n}", id=f"2411.{n:05d}")], now=seen)
        plan(engine, MATCHER, settings, at, on_schedule=True)

    got = planned(engine)
    for sub_id, person in zip(ids, PEOPLE, strict=True):
        assert got.get(sub_id, []) == expected(*person, start, end), person
    for sub_id, (_, _, cadence, _) in zip(ids, PEOPLE, strict=True):
        # Seven days, plus at most one caught up at the start.
        assert len(got[sub_id]) - {"daily": 7, "weekdays": 5, "weekly": 1}[cadence] in (0, 1)

    # Each digest holds exactly the papers first seen since the previous one.
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(DIGESTS.c.id, DIGESTS.c.subscriber_id, DIGESTS.c.window_start)
            .add_columns(DIGESTS.c.window_end)
            .order_by(DIGESTS.c.subscriber_id, DIGESTS.c.window_end)
        ).all()
        held = {
            digest_id: set(titles)
            for digest_id, titles in _titles(conn, [r.id for r in rows]).items()
        }
    previous: dict[int, datetime] = {}
    for digest_id, sub_id, window_start, window_end in rows:
        if sub_id in previous:
            assert window_start == previous[sub_id]
        previous[sub_id] = window_end
        inside = {f"Diffusion {n}" for t, n in papers_at.items() if window_start < t <= window_end}
        assert held.get(digest_id, set()) == inside


def _titles(conn: sa.Connection, ids: list[int]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    query = (
        sa.select(DIGEST_PAPERS.c.digest_id, PAPERS.c.title)
        .join(PAPERS, PAPERS.c.id == DIGEST_PAPERS.c.paper_id)
        .where(DIGEST_PAPERS.c.digest_id.in_(ids))
    )
    for digest_id, title in conn.execute(query):
        found.setdefault(digest_id, []).append(title)
    return found


def test_catch_up_within_the_grace_and_skip_after_it_losing_no_paper(
    engine: Engine, settings: Settings
) -> None:
    settings = settings.model_copy(update={"catch_up_hours": 12})
    (sub_id,) = add_people(engine, [("Europe/Paris", 7, Cadence.daily, 0)])
    monday = datetime(2026, 11, 23, tzinfo=UTC)  # Paris 07:00 is 06:00 UTC
    store(engine, [PaperIn(title="Diffusion sunday", id="2411.00001")], now=monday)
    # Down from 05:00 to 09:00 on Monday: Monday's digest comes at 09:00.
    for at in ticks(monday, monday + timedelta(hours=5)):
        plan(engine, MATCHER, settings, at, on_schedule=True)
    assert planned(engine) == {}
    for at in ticks(monday + timedelta(hours=9), monday + timedelta(hours=20)):
        plan(engine, MATCHER, settings, at, on_schedule=True)
    assert planned(engine)[sub_id] == [("2026-11-23", monday + timedelta(hours=9))]

    # Down from Tuesday 05:00 to 19:00 (over 12 h past 06:00): Tuesday is skipped...
    tuesday = monday + timedelta(days=1)
    store(engine, [PaperIn(title="Diffusion tuesday", id="2411.00002")], now=tuesday)
    for at in ticks(tuesday + timedelta(hours=19), tuesday + timedelta(days=1, hours=7)):
        plan(engine, MATCHER, settings, at, on_schedule=True)
    # ...and its paper rolls into Wednesday's digest.
    wednesday = tuesday + timedelta(days=1)
    assert planned(engine)[sub_id] == [
        ("2026-11-23", monday + timedelta(hours=9)),
        ("2026-11-25", wednesday + timedelta(hours=6)),
    ]
    with engine.connect() as conn:
        last = conn.execute(sa.select(sa.func.max(DIGESTS.c.id))).scalar_one()
        assert _titles(conn, [last]) == {last: ["Diffusion tuesday"]}


# (zone, local date of the change, {send hour: UTC instant of that day's digest})
CHANGES = [
    # Berlin springs forward at 02:00 -> 03:00: 02:00 does not exist, it falls at the change.
    ("Europe/Berlin", date(2026, 3, 29), {1: "00:00", 2: "01:00", 3: "01:00", 7: "05:00"}),
    # Berlin falls back at 03:00 -> 02:00: 02:00 happens twice; the first one counts.
    ("Europe/Berlin", date(2026, 10, 25), {1: "23:00-", 2: "00:00", 3: "02:00", 7: "06:00"}),
    # Sydney falls back at 03:00 -> 02:00 (April, southern autumn).
    ("Australia/Sydney", date(2026, 4, 5), {1: "14:00-", 2: "15:00-", 3: "17:00-", 7: "21:00-"}),
    # Sydney springs forward at 02:00 -> 03:00 (October, southern spring).
    ("Australia/Sydney", date(2026, 10, 4), {1: "15:00-", 2: "16:00-", 3: "16:00-", 7: "20:00-"}),
]


@pytest.mark.parametrize(("zone", "day", "instants"), CHANGES, ids=lambda v: str(v)[:16])
def test_daylight_saving_changes_skip_nothing_and_double_nothing(
    engine: Engine, settings: Settings, zone: str, day: date, instants: dict[int, str]
) -> None:
    settings = settings.model_copy(update={"catch_up_hours": 0.2})
    hours = list(range(24))
    ids = add_people(engine, [(zone, hour, Cadence.daily, 0) for hour in hours])
    tz = ZoneInfo(zone)
    start = datetime.combine(day - timedelta(days=1), datetime.min.time(), tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=2), datetime.min.time(), tz).astimezone(UTC)
    for at in ticks(start, end):
        plan(engine, MATCHER, settings, at, on_schedule=True)
    got = planned(engine)
    days = [(day + timedelta(days=d)).isoformat() for d in (-1, 0, 1)]
    for hour, sub_id in zip(hours, ids, strict=True):
        # One digest per local day, each sent at or after its local send hour.
        assert [period for period, _ in got[sub_id]] == days, hour
        for period, at in got[sub_id]:
            local = at.astimezone(tz)
            assert local.date().isoformat() == period
            assert local.hour >= hour or (local.hour, hour) == (3, 2), (hour, local)
    for hour, text in instants.items():
        utc_day = day - timedelta(days=1) if text.endswith("-") else day
        wanted = datetime.combine(utc_day, datetime.strptime(text.rstrip("-"), "%H:%M").time(), UTC)
        on_the_day = dict(got[ids[hour]])[day.isoformat()]
        assert on_the_day == wanted, (zone, hour)


def test_last_slot_on_the_days_clocks_change() -> None:
    # New York springs forward on 2026-03-08 at 02:00: a 02:30 digest hour does not exist,
    # but a 2 o'clock subscriber still gets that day's digest at the change.
    rule = Rule("America/New_York", 2, Cadence.daily)
    slot = last_slot(rule, datetime(2026, 3, 8, 12, tzinfo=UTC))
    assert slot == ("2026-03-08", datetime(2026, 3, 8, 7, tzinfo=UTC))
    weekly = Rule("America/New_York", 6, Cadence.weekly, weekday=6)
    assert last_slot(weekly, datetime(2026, 3, 14, tzinfo=UTC)) == (
        "2026-W10",
        datetime(2026, 3, 8, 10, tzinfo=UTC),
    )


def test_forecast_counts_the_next_24_hours_by_hour(engine: Engine) -> None:
    add_people(
        engine,
        [
            ("UTC", 7, Cadence.daily, 0),
            ("UTC", 7, Cadence.weekdays, 0),
            ("Asia/Kolkata", 12, Cadence.daily, 0),  # 06:30 UTC
            ("Europe/Paris", 8, Cadence.weekly, 0),  # Mondays only
            ("America/New_York", 7, Cadence.daily, 0),  # 12:00 UTC
        ],
    )
    saturday = datetime(2026, 11, 28, 10, tzinfo=UTC)
    with engine.connect() as conn:
        ahead = forecast(conn, saturday)
    assert ahead == [
        (datetime(2026, 11, 28, 12, tzinfo=UTC), 1),
        (datetime(2026, 11, 29, 6, tzinfo=UTC), 1),
        (datetime(2026, 11, 29, 7, tzinfo=UTC), 1),
    ]
    with engine.connect() as conn:
        assert sum(c for _, c in forecast(conn, saturday + timedelta(days=1, hours=14))) == 5


def test_nothing_matched_sends_nothing_unless_asked(engine: Engine, settings: Settings) -> None:
    quiet, _ = subscribe(engine, "quiet@example.org", ["diffusion"], timezone="UTC")
    noted, _ = subscribe(engine, "note@example.org", ["diffusion"], empty_note=True)
    now = datetime(2026, 11, 23, 8, tzinfo=UTC)
    report = plan(engine, MATCHER, settings, now, on_schedule=True)
    assert (report.planned, report.notes, report.empty) == (0, 1, 1)
    with engine.connect() as conn:
        status = dict(conn.execute(sa.select(DIGESTS.c.subscriber_id, DIGESTS.c.status)).all())
    assert status == {quiet.id: DigestStatus.empty, noted.id: DigestStatus.planned}


def test_a_tick_that_failed_half_way_leaves_the_next_one_clean(engine: Engine) -> None:
    (sub_id,) = add_people(engine, [("Europe/Paris", 7, Cadence.daily, 0)])
    monday = datetime(2026, 11, 23, 6, 30, tzinfo=UTC)
    with engine.begin() as conn:
        # What a tick stopped by "database is locked" after creating its table leaves on
        # the pooled connection.
        conn.execute(sa.text("CREATE TEMPORARY TABLE due_rule (timezone VARCHAR(64))"))
        found = slots.due(conn, monday, timedelta(hours=12))
        assert [row.subscriber_id for row in found] == [sub_id]
        assert slots.due(conn, monday, timedelta(hours=12))  # and again, on the same one

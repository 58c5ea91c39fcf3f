"""Due-digest query: set-based (slots per distinct rule, matched in SQL) against per-row Python.

Subscribers spread uniformly over every IANA zone (a worst case: many distinct rules),
all 24 send hours and the three cadences; a third of those due already have this
period's digest. Baseline: load every active
subscriber, compute each one's latest slot in Python, drop those with a digest (the
approach `digest run`'s planner takes). Both run on the same database in the same run,
and must return the same subscribers.

    .venv/bin/python bench/schedule.py [--subscribers 200000] [--url sqlite:///...]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import zoneinfo
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from digest.db import make_engine, upgrade
from digest.delivery.slots import Rule, due, last_slot
from digest.models import DIGESTS, SUBSCRIBERS, Cadence, SubscriberStatus

NOW = datetime(2026, 11, 25, 9, 10, tzinfo=UTC)
GRACE = timedelta(hours=12)


def seed(engine: sa.Engine, count: int) -> None:
    rng = random.Random(1)
    zones = sorted(z for z in zoneinfo.available_timezones() if "/" in z)
    rows = []
    for n in range(count):
        cadence = rng.choice(list(Cadence))
        rows.append(
            {
                "email": f"s{n}@example.org",
                "status": SubscriberStatus.active,
                "timezone": rng.choice(zones),
                "send_hour": rng.randrange(24),
                "cadence": cadence,
                "weekday": rng.randrange(7) if cadence is Cadence.weekly else 0,
                "max_papers": 20,
                "token_version": 1,
                "soft_bounces": 0,
                "empty_note": False,
                "created_at": NOW,
            }
        )
    with engine.begin() as conn:
        conn.execute(sa.insert(SUBSCRIBERS), rows)
        wanted = due(conn, NOW, GRACE)
        done = [
            {
                "subscriber_id": d.subscriber_id,
                "period": d.period,
                "status": "sent",
                "window_start": NOW,
                "window_end": NOW,
                "created_at": NOW,
                "matched_count": 0,
                "attempts": 1,
            }
            for d in wanted[::3]
        ]
        if done:
            conn.execute(sa.insert(DIGESTS), done)


def per_row(conn: sa.Connection) -> set[int]:
    s = SUBSCRIBERS.c
    wanted = {}
    query = sa.select(s.id, s.timezone, s.send_hour, s.cadence, s.weekday).where(
        s.status == SubscriberStatus.active
    )
    for sub_id, tz, hour, cadence, weekday in conn.execute(query):
        slot = last_slot(Rule(tz, hour, cadence, weekday), NOW)
        if slot is not None and NOW - slot.at <= GRACE:
            wanted[sub_id] = slot.period
    periods = set(wanted.values())
    query = sa.select(DIGESTS.c.subscriber_id, DIGESTS.c.period)
    existing = {(s, p) for s, p in conn.execute(query.where(DIGESTS.c.period.in_(periods)))}
    return {sub_id for sub_id, period in wanted.items() if (sub_id, period) not in existing}


def best_of(runs: int, work: object) -> tuple[float, set[int]]:
    assert callable(work)
    times, result = [], set()
    for _ in range(runs):
        start = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=200_000)
    parser.add_argument("--url", default="", help="database URL (default: a temp SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        engine = make_engine(url)
        try:
            seed(engine, args.subscribers)
            with engine.connect() as conn:
                base, expected = best_of(3, lambda: per_row(conn))
                fast, found = best_of(3, lambda: {d.subscriber_id for d in due(conn, NOW, GRACE)})
        finally:
            engine.dispose()
    assert found == expected, "the two methods disagree"
    print(f"{engine.dialect.name}, {args.subscribers} subscribers, {len(found)} due now")
    print(f"per-row Python (baseline): {base:.3f} s")
    print(f"set-based due():           {fast:.3f} s  ({base / fast:.1f}x faster)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The admin CSV import: one transaction per row (the baseline) against chunks of rows.

A realistic export is built first (not timed): the columns and cells of
`GET /api/subscribers.csv`, subscribers over every IANA time zone, all 24 send hours, 10%
weekly, mostly active, with 1 to 5 interest lines drawn with Zipf popularity from
`bench/match.py`'s pool of real words, title phrases and acronyms. Each way then imports
it into an empty database (every row created) and again (every row updated), through
`CsvImport.run` as the import route runs it (the HTTP body aside), and what is stored is
checked against the file. The ways, in turn in each round, each on an empty database:

- previous (with --previous DIR, a checkout of c7eb356 or earlier): that release's
  import, a row at a time through `subscribers.save`, in a process of its own;
- per-row: `CsvImport(chunk=1)`, one transaction per row with today's statements;
- savepoints: chunks of 1,000 rows, each row in a savepoint of its own (`store`);
- chunked: chunks of 1,000 rows in a few statements each, stored row by row only if the
  database refuses one (what the import does).

    .venv/bin/python bench/csv_import.py [--rows 20000] [--url URL] [--rounds 3]
        [--ways per-row,savepoints,chunked] [--previous DIR]

Without --url, a fresh SQLite file in a temporary directory for each way and round; with
a PostgreSQL URL, its public schema is dropped and rebuilt before each (use a database of
its own). It prints one JSON object: each way's best rows/s over the rounds, created and updated,
and its ratio to the per-row way's (and to the previous release's, with --previous).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import zoneinfo
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
from daily import reset_schema
from match import load_corpus, make_pool, zipf_choice

from digest import subscribers
from digest.db import make_engine
from digest.models import INTERESTS, SUBSCRIBERS
from digest.web.subscriber_csv import CSV_FIELDS, CsvImport, cell

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
STATUSES = (
    ["active", "paused", "unsubscribed", "pending", "bounced"],
    [0.9, 0.03, 0.04, 0.02, 0.01],
)
SIZES = ([5, 10, 20, 30, 50], [0.2, 0.35, 0.25, 0.1, 0.1])


def export_rows(count: int, seed: int) -> list[list[object]]:
    """The cells of an export of `count` subscribers, as `GET /api/subscribers.csv` writes them."""
    rng = np.random.default_rng(seed)
    pool = make_pool(load_corpus(), 20_000, rng)
    zones = sorted(z for z in zoneinfo.available_timezones() if "/" in z)
    counts = rng.integers(1, 6, size=count)
    picks = zipf_choice(len(pool), int(counts.sum()), 1.0, rng).tolist()
    status = rng.choice(STATUSES[0], size=count, p=STATUSES[1])
    size = rng.choice(SIZES[0], size=count, p=SIZES[1])
    rows, at = [], 0
    for n in range(count):
        lines = list(dict.fromkeys(pool[p] for p in picks[at : at + int(counts[n])]))
        at += int(counts[n])
        weekly = rng.random() < 0.1
        values = (
            f"reader{n}@example.org",
            str(status[n]),
            zones[int(rng.integers(len(zones)))],
            int(rng.integers(24)),
            "weekly" if weekly else "daily",
            int(rng.integers(7)) if weekly else 0,
            int(size[n]),
            " | ".join(lines),
        )
        rows.append([cell(v) for v in values])
    return rows


def as_csv(rows: list[list[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*CSV_FIELDS, "interests"])
    writer.writerows(rows)
    return out.getvalue()


def stored(engine: sa.Engine) -> list[list[object]]:
    """What the database holds, in the export's cells, by id (the file's order)."""
    lines: dict[int, list[str]] = {}
    with engine.connect() as conn:
        query = sa.select(INTERESTS.c.subscriber_id, INTERESTS.c.query)
        for sub_id, line in conn.execute(query.order_by(INTERESTS.c.position)):
            lines.setdefault(sub_id, []).append(line)
        people = conn.execute(sa.select(SUBSCRIBERS).order_by(SUBSCRIBERS.c.id)).all()
    return [
        [cell(v) for v in (*(getattr(r, f) for f in CSV_FIELDS), " | ".join(lines[r.id]))]
        for r in people
    ]


class Savepoints(CsvImport):
    """Chunks of rows, each row in a savepoint: a refused row is undone alone."""

    def store(self) -> None:
        rows, self.waiting = self.waiting, []
        if not rows:
            return
        now = self.clock()
        with self.engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                # The sqlite3 driver begins no transaction before a SAVEPOINT: the first
                # row's savepoint would commit on its own when released.
                conn.exec_driver_sql("BEGIN")
            for row in rows:
                try:
                    with conn.begin_nested():
                        e = row.entry
                        _, created = subscribers.store(
                            conn, e.address, e.prefs, status=e.status, now=now
                        )
                except sa.exc.IntegrityError:
                    self._error(row.line, row.email, f"{e.address} is another's address")
                    continue
                self.report.created += created
                self.report.updated += not created


WAYS: dict[str, Callable[[sa.Engine], CsvImport]] = {
    "per-row": lambda engine: CsvImport(engine, lambda: NOW, chunk=1),
    "savepoints": lambda engine: Savepoints(engine, lambda: NOW),
    "chunked": lambda engine: CsvImport(engine, lambda: NOW),
}

# The previous release's import, run with PYTHONPATH at its checkout: argv = url, csv file.
PREVIOUS = """
import json, sys, time, types
from datetime import UTC, datetime
from digest.db import make_engine
from digest.web.admin import _import_rows
url, path = sys.argv[1:]
text = open(path, encoding="utf-8").read()
settings = types.SimpleNamespace(default_max_papers=20)
now = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
state = types.SimpleNamespace(engine=make_engine(url), clock=lambda: now, settings=settings)
seconds = []
for _ in range(2):
    start = time.perf_counter()
    report = _import_rows(state, text)
    seconds.append([time.perf_counter() - start, report.created, report.updated, report.errors])
print(json.dumps(seconds))
"""


def one_way(url: str, way: str, text: str, previous: str | None) -> list[list[Any]]:
    """Import `text` twice into an empty database: [seconds, created, updated, errors] each,
    then what is stored."""
    reset_schema(url)
    engine = make_engine(url)
    if way == "previous":
        engine.dispose()
        with tempfile.NamedTemporaryFile("w", suffix=".csv", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            env = {**os.environ, "PYTHONPATH": str(previous)}
            command = [sys.executable, "-c", PREVIOUS, url, file.name]
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        passes: list[list[Any]] = json.loads(done.stdout)
        engine = make_engine(url)
    else:
        passes = []
        for _ in range(2):
            start = time.perf_counter()
            report = WAYS[way](engine).run(io.StringIO(text, newline=""))
            seconds = time.perf_counter() - start
            passes.append([seconds, report.created, report.updated, report.errors])
    stored_rows = stored(engine)
    engine.dispose()
    return [*passes, stored_rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--url", default=None)
    parser.add_argument("--ways", default=",".join(WAYS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--previous", default=None, help="a checkout of the previous release")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    ways = (["previous"] if args.previous else []) + args.ways.split(",")
    rows = export_rows(args.rows, args.seed)
    text = as_csv(rows)
    count = len(rows)
    print(f"{count} rows, {len(text) / 1e6:.1f} MB of CSV", file=sys.stderr, flush=True)
    best: dict[str, dict[str, float]] = {way: {"created": 0, "updated": 0} for way in ways}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for way in ways:
                url = args.url or f"sqlite:///{tmp}/{way}-{round_}.db"
                first, again, stored_rows = one_way(url, way, text, args.previous)
                assert first[1:] == [count, 0, []] and again[1:] == [0, count, []], way
                assert stored_rows == rows, f"{way}: the database differs from the file"
                for key, seconds in (("created", first[0]), ("updated", again[0])):
                    best[way][key] = max(best[way][key], round(count / seconds))
                rates = f"{count / first[0]:.0f} created, {count / again[0]:.0f} updated rows/s"
                print(f"round {round_ + 1} {way}: {rates}", file=sys.stderr, flush=True)
    figures: dict[str, Any] = {
        "rows": count,
        "database": "postgresql" if args.url else "sqlite",
        "best_rows_per_s": best,
    }
    for base in ("per-row", "previous"):
        if base in best:
            figures[f"vs_{base}"] = {
                way: {key: round(rate / best[base][key], 1) for key, rate in rates.items()}
                for way, rates in best.items()
            }
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()

"""The sign-up preview's cost per request, on real titles and abstracts.

A week of papers (the 539 distinct papers of ../shared/data/papers.jsonl, repeated to
reach PER_DAY papers a day for 7 days) in a SQLite file. Measured in this run:
- baseline: loading the week's papers from the database (once a minute at most);
- keystroke: a preview of two lines where one line changed (one matcher call);
- unchanged: a preview of two lines already previewed (matches cached).
Prints milliseconds (median of ROUNDS) and each as a ratio of the baseline.

Run: .venv/bin/python bench/web_preview.py [papers per day, default 1000]
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from digest.db import make_engine, upgrade
from digest.match.engine import InterestMatcher
from digest.match.query import parse
from digest.sources.ingest import PaperIn, store
from digest.web.preview import PaperCache, preview

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "papers.jsonl"
ROUNDS = 7
LINES = ["diffusion models", '"language model" reasoning']


def median_ms(action: Callable[[], object]) -> float:
    """The median wall time of ROUNDS runs of `action`, in milliseconds."""
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def records() -> list[dict[str, str]]:
    """The real papers of the shared data set (title, abstract, ...), in file order."""
    return [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()]


def fill_week(engine: Engine, per_day: int, now: datetime) -> None:
    """Store `per_day` papers a day, first seen on each of the 7 days before `now`: the real
    papers repeated, each title made distinct by its day and number."""
    real = records()
    for day in range(7):
        batch = [
            PaperIn(
                id=f"bench:{day}-{n}",
                title=f"{real[n % len(real)]['title']} ({day}-{n})",
                abstract=real[n % len(real)]["abstract"],
            )
            for n in range(per_day)
        ]
        store(engine, batch, now=now - timedelta(days=day, hours=1))


def main(per_day: int) -> None:
    """Build the week, then time the three cases."""
    now = datetime(2026, 11, 26, 12, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        upgrade(url)
        engine = make_engine(url)
        try:
            fill_week(engine, per_day, now)
            interests = [(line, parse(line).canonical) for line in LINES]
            matcher = InterestMatcher()
            cache = PaperCache(engine)
            cache.docs(now)

            def cold() -> None:
                PaperCache(engine).docs(now)

            typed = iter(range(10**6))

            def keystroke() -> None:
                line = f"language model{'s' * next(typed)}"
                preview(cache, matcher, [interests[0], (line, parse(line).canonical)], now)

            def unchanged() -> None:
                preview(cache, matcher, interests, now)

            base = median_ms(cold)
            found = preview(cache, matcher, interests, now).total
            print(f"{7 * per_day} papers in the week, {found} matched {LINES}")
            print(f"{'load (baseline)':16} {base:8.1f} ms   1.00x")
            for name, action in (("keystroke", keystroke), ("unchanged", unchanged)):
                took = median_ms(action)
                print(f"{name:16} {took:8.1f} ms  {took / base:5.2f}x")
        finally:
            engine.dispose()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)

"""The whole daily job from the database, as `digest run` does it: plan, render, send, record.

A realistic population is built first (not timed, in its own process so that its memory
does not count): subscribers over every IANA time zone with 1 to 5 interest lines drawn
with Zipf popularity from real words, title phrases and acronyms (`bench/match.py`'s
pool), digest sizes 5 to 50, and one day of papers (real titles, sentences of real
abstracts). Then the job runs as `digest run` runs it (`plan`, then `send_due` with the
render process beside the sender) to a discarding SMTP server in its own process. The
raw aiosmtplib ceiling (500 of the job's digests, pre-built and sent in turn, over the
same connections: the same mix of sizes) is measured before and after, in the same run;
the ratio uses the better of the two. The ceiling of one median-sized digest sent again
and again, the ceiling of earlier figures, is printed beside it.

    .venv/bin/python bench/daily.py [--subscribers 100000] [--papers 1000] [--url URL]
                                    [--plan-only]

Without --url, a fresh SQLite file in a temporary directory; with a PostgreSQL URL, the
database's tables are dropped and rebuilt (use a database of its own). It prints one
JSON object: plan, send and total seconds, digests/s, the ratio to the raw ceiling, the
render CPU per digest, and peak RSS of the job, of the render processes and (with
--plan-only) of the planning processes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import sys
import tempfile
import threading
import time
import zoneinfo
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))

from match import load_corpus, make_papers, make_pool, zipf_choice
from send import raw
from smtp_sink import sink_process

from digest.config import Settings
from digest.db import make_engine, upgrade
from digest.delivery.outbox import Outbox
from digest.delivery.planning import plan
from digest.delivery.sender import RenderPool, send_due
from digest.delivery.transport import SmtpTransport
from digest.mail.render import Renderer
from digest.match.engine import InterestMatcher
from digest.models import DIGEST_PAPERS, DIGESTS, INTERESTS, SUBSCRIBERS, DigestStatus
from digest.sources.ingest import PaperIn, store

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 26, 23, 30, tzinfo=UTC)
SIZES = ([5, 10, 20, 30, 50], [0.2, 0.35, 0.25, 0.1, 0.1])
CHUNK = 50_000  # rows per bulk insert


def _subscriber_rows(count: int, rng: np.random.Generator) -> list[tuple[Any, ...]]:
    zones = sorted(z for z in zoneinfo.available_timezones() if "/" in z)
    created = NOW - timedelta(days=30)
    zone = rng.integers(len(zones), size=count)
    hour = rng.integers(24, size=count)
    size = rng.choice(SIZES[0], size=count, p=SIZES[1])
    weekly = rng.random(count) < 0.1
    return [
        (
            f"reader{n}@example.org",
            "active",
            zones[int(zone[n])],
            int(hour[n]),
            "weekly" if weekly[n] else "daily",
            int(NOW.weekday()) if weekly[n] else 0,
            int(size[n]),
            1,
            1,
            0,
            False,
            created,
        )
        for n in range(count)
    ]


SUBSCRIBER_COLUMNS = (
    "email",
    "status",
    "timezone",
    "send_hour",
    "cadence",
    "weekday",
    "max_papers",
    "token_version",
    "feed_version",
    "soft_bounces",
    "empty_note",
    "created_at",
)


def _bulk(engine: sa.Engine, table: sa.Table, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """Insert rows fast: COPY on PostgreSQL, executemany in large chunks elsewhere."""
    if engine.dialect.name == "postgresql":
        raw_conn = engine.raw_connection()
        try:
            cursor = raw_conn.cursor()
            names = ", ".join(columns)
            with cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            raw_conn.commit()
        finally:
            raw_conn.close()
        return
    with engine.begin() as conn:
        for start in range(0, len(rows), CHUNK):
            chunk = [dict(zip(columns, row, strict=True)) for row in rows[start : start + CHUNK]]
            conn.execute(sa.insert(table), chunk)


def populate(url: str, subscribers: int, papers: int, seed: int) -> dict[str, Any]:
    """Build the population; returns what it holds."""
    rng = np.random.default_rng(seed)
    engine = make_engine(url)
    corpus = load_corpus()
    docs = make_papers(corpus, papers, rng)
    store(
        engine,
        [
            PaperIn(
                id=f"bench-{doc.id}",
                title=doc.title,
                abstract=doc.abstract,
                authors=list(doc.authors),
                categories=list(doc.categories),
                upvotes=doc.upvotes,
                url=f"https://papers.example.org/{doc.id}",
            )
            for doc in docs
        ],
        now=NOW - timedelta(hours=12),
    )
    _bulk(engine, SUBSCRIBERS, SUBSCRIBER_COLUMNS, _subscriber_rows(subscribers, rng))
    pool = make_pool(corpus, 20_000, rng)
    with engine.connect() as conn:
        ids = conn.execute(sa.select(SUBSCRIBERS.c.id).order_by(SUBSCRIBERS.c.id)).scalars().all()
    counts = rng.integers(1, 6, size=len(ids))
    picks = zipf_choice(len(pool), int(counts.sum()), 1.0, rng)
    rows: list[tuple[Any, ...]] = []
    at = 0
    for sub_id, count in zip(ids, counts.tolist(), strict=True):
        chosen = dict.fromkeys(pool[int(p)] for p in picks[at : at + count])
        at += count
        rows.extend((sub_id, line, line, position) for position, line in enumerate(chosen))
    _bulk(engine, INTERESTS, ("subscriber_id", "query", "canonical", "position"), rows)
    engine.dispose()
    return {"lines": len(rows), "distinct_lines": len({row[2] for row in rows})}


def _populate_child(url: str, subscribers: int, papers: int, seed: int, out: Any) -> None:
    out.put(populate(url, subscribers, papers, seed))


def _rss_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def _sink_cpu() -> float:
    """CPU seconds of the SMTP sink (the child process running smtp_sink.py) so far."""
    for pid in ChildPeaks._children():
        try:
            if b"smtp_sink.py" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                continue
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


async def _timed_raw(
    port: int, envelope: Any, count: int, connections: int
) -> tuple[int, float, float]:
    """The raw ceiling (msg/s), and the CPU ms a message of the client and of the sink."""
    cpu, sink = time.process_time(), _sink_cpu()
    rate = await raw(port, envelope, count, connections)
    return rate, (time.process_time() - cpu) / count * 1000, (_sink_cpu() - sink) / count * 1000


class ChildPeaks:
    """The peak RSS (VmHWM) of each child process started while it runs, read from /proc
    twice a second (the planning processes, which end before the job's figures are read)."""

    def __init__(self) -> None:
        self.before = self._children()
        self.peaks: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    @staticmethod
    def _children() -> set[int]:
        found: set[int] = set()
        for task in Path("/proc/self/task").iterdir():
            text = (task / "children").read_text()
            found.update(int(pid) for pid in text.split())
        return found

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            for pid in self._children() - self.before:
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                for line in status.splitlines():
                    if line.startswith("VmHWM:"):
                        peak = int(line.split()[1]) / 1024
                        self.peaks[pid] = max(self.peaks.get(pid, 0.0), peak)

    def __enter__(self) -> ChildPeaks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def _send(engine: sa.Engine, settings: Settings, expected: int) -> tuple[int, float]:
    """`send_due` as `digest run` calls it, the render process beside it; (sent, seconds)."""
    transport = SmtpTransport(settings)
    pool = RenderPool.start(engine, settings, expected=expected)
    start = time.perf_counter()
    try:
        report = await send_due(engine, transport, Renderer(settings), clock=lambda: NOW, pool=pool)
    finally:
        await transport.close()
        if pool is not None:
            pool.close()
    return report.count(DigestStatus.sent), time.perf_counter() - start


def _render_cost(engine: sa.Engine, settings: Settings, count: int) -> tuple[float, list[Any]]:
    """CPU seconds per digest to render and build `count` planned digests, in this process
    with cold caches; and their envelopes, for the raw ceiling. The digests are released
    afterwards."""
    outbox = Outbox(engine, Renderer(settings))
    ids = outbox.claim(NOW, count)
    outbox.prepare(ids[:20], NOW)  # templates compiled, caches warm
    start = time.process_time()
    jobs, _ = outbox.prepare(ids, NOW)
    cost = (time.process_time() - start) / max(len(ids), 1)
    outbox.release(ids)
    return cost, [job.envelope for job in jobs]


def reset_schema(url: str) -> None:
    """Empty the database at `url` (PostgreSQL: its public schema) and migrate it."""
    if url.startswith("postgresql"):
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
        engine.dispose()
    upgrade(url)


def main() -> None:
    """Build, run the job, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--papers", type=int, default=1000)
    parser.add_argument("--url", default=None)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--plan-only", action="store_true", help="plan, then stop (no render, no send)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{tmp}/daily.db"
        reset_schema(url)
        context = multiprocessing.get_context("spawn")
        out = context.Queue()
        child = context.Process(
            target=_populate_child, args=(url, args.subscribers, args.papers, args.seed, out)
        )
        start = time.perf_counter()
        child.start()
        population = out.get()
        child.join()
        build = time.perf_counter() - start
        print(f"population built in {build:.0f} s: {population}", file=sys.stderr, flush=True)
        figures = run(url, args, population)
        figures["build_s"] = round(build, 1)
        print(json.dumps(figures, indent=1))


def run(url: str, args: argparse.Namespace, population: dict[str, Any]) -> dict[str, Any]:
    """The job itself, to a sink in its own process."""
    with sink_process() as port:
        engine = make_engine(url)
        settings = Settings(
            database_url=url,
            smtp_port=port,
            base_url="https://digest.example.org",
            from_="digest <digest@digest.example.org>",
            secret_key="bench-" + "k" * 40,
        )
        cpu = time.process_time()
        start = time.perf_counter()
        with ChildPeaks() as planners:
            planned = plan(engine, InterestMatcher(), settings, NOW)
        plan_s = time.perf_counter() - start
        plan_rss = _rss_mb(resource.RUSAGE_SELF)
        print(f"planned {planned} in {plan_s:.1f} s", file=sys.stderr, flush=True)
        if args.plan_only:
            engine.dispose()
            return {
                "database": engine.dialect.name,
                "subscribers": args.subscribers,
                **population,
                "planned": planned.planned,
                "empty": planned.empty,
                "plan_s": round(plan_s, 1),
                "plan_cpu_s": round(time.process_time() - cpu, 1),
                "peak_rss_mb": round(plan_rss),
                "planning_processes_peak_rss_mb": sorted(round(v) for v in planners.peaks.values()),
                "load_avg_1m": round(os.getloadavg()[0], 1),
            }
        render_cpu, envelopes = _render_cost(engine, settings, 500)
        median = sorted(envelopes, key=lambda envelope: len(envelope.data))[len(envelopes) // 2]
        connections = settings.smtp_connections
        count = min(planned.planned, 20_000)
        before, client_ms, raw_sink_ms = asyncio.run(
            _timed_raw(port, envelopes, count, connections)
        )
        one = asyncio.run(raw(port, median, count, connections))
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        sender_cpu, sink_cpu = time.process_time(), _sink_cpu()
        sent, send_s = asyncio.run(_send(engine, settings, planned.planned))
        sender_cpu, sink_cpu = time.process_time() - sender_cpu, _sink_cpu() - sink_cpu
        after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
        after = asyncio.run(raw(port, envelopes, count, connections))
        ceiling = max(before, after)
        with engine.connect() as conn:
            count_of = sa.select(sa.func.count()).select_from(DIGEST_PAPERS)
            papers = conn.execute(count_of.where(DIGEST_PAPERS.c.held.is_(False))).scalar_one()
            held = conn.execute(count_of.where(DIGEST_PAPERS.c.held.is_(True))).scalar_one()
            left = conn.execute(
                sa.select(sa.func.count()).where(DIGESTS.c.status == DigestStatus.planned)
            ).scalar_one()
        engine.dispose()
        render_children = sum(
            getattr(after_children, f) - getattr(children, f) for f in ("ru_utime", "ru_stime")
        )
        job_s = plan_s + send_s
        rate = sent / job_s
        return {
            "database": engine.dialect.name,
            "subscribers": args.subscribers,
            "papers": args.papers,
            **population,
            "planned": planned.planned,
            "empty": planned.empty,
            "sent": sent,
            "still_planned": left,
            "papers_shown": papers,
            "papers_held": held,
            "plan_s": round(plan_s, 1),
            "send_s": round(send_s, 1),
            "job_s": round(job_s, 1),
            "job_cpu_s": round(time.process_time() - cpu, 1),
            "digests_per_s": round(rate, 1),
            "send_only_per_s": round(sent / send_s, 1),
            "raw_ceiling_per_s": [round(before), round(after)],
            "job_vs_raw": round(rate / ceiling, 3),
            # Before 2026-12-07 the ceiling was one digest of median size again and again,
            # lighter for the SMTP server than the job's mix of sizes.
            "raw_median_digest_per_s": round(one),
            "job_vs_raw_median_digest": round(rate / one, 3),
            "send_vs_raw": round(sent / send_s / ceiling, 3),
            "render_ms_per_digest": round(render_cpu * 1000, 2),
            "render_process_cpu_s": round(render_children, 1),
            # CPU ms a message while sending: the sender's process, the render processes,
            # the SMTP sink; and in the raw run, aiosmtplib's client and the sink.
            "send_cpu_ms": {
                "sender": round(sender_cpu / max(sent, 1) * 1000, 2),
                "render": round(render_children / max(sent, 1) * 1000, 2),
                "sink": round(sink_cpu / max(sent, 1) * 1000, 2),
            },
            "raw_cpu_ms": {"client": round(client_ms, 2), "sink": round(raw_sink_ms, 2)},
            "peak_rss_mb_after_plan": round(plan_rss),
            "peak_rss_mb": round(_rss_mb(resource.RUSAGE_SELF)),
            "render_process_peak_rss_mb": round(_rss_mb(resource.RUSAGE_CHILDREN)),
            "connections": connections,
            "render_processes": settings.render_processes,
            "load_avg_1m": round(os.getloadavg()[0], 1),
        }


if __name__ == "__main__":
    main()

"""The scheduler wiring, `digest serve` against real servers, and leader election."""

from __future__ import annotations

import asyncio
import os
import queue
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from pydantic import ValidationError
from sqlalchemy import Engine
from typer.testing import CliRunner

from digest.cli import app
from digest.config import Settings, SourceConfig
from digest.cron import cron_trigger
from digest.db import make_engine
from digest.delivery.transport import SmtpTransport
from digest.mail.capture import free_port
from digest.mail.render import Renderer
from digest.match.engine import InterestMatcher
from digest.models import Cadence
from digest.serve.jobs import build_scheduler, missed, upcoming
from digest.serve.leader import Leadership
from digest.serve.service import serve
from digest.sources.ingest import PaperIn, store
from digest.subscribers import subscribe
from tests.kit.smtp import SmtpSink

FRIDAY = datetime(2026, 11, 27, 12, tzinfo=UTC)


def test_cron_weekdays_count_from_sunday_like_crontab() -> None:
    # arXiv announces Sunday to Thursday at 20:00 New York time.
    after_arxiv = cron_trigger("30 20 * * 0-4", "America/New_York")
    assert after_arxiv.get_next_fire_time(None, FRIDAY) == datetime(
        2026, 11, 29, 20, 30, tzinfo=after_arxiv.timezone
    )
    sundays = cron_trigger("0 9 * * 7", "UTC")
    assert sundays.get_next_fire_time(None, FRIDAY).weekday() == 6


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("* * *", "has 3 fields; expected 5"),
        ("61 * * * *", "cron '61 * * * *'"),
        ("0 9 * * 8", "weekday '8' is not 0-7"),
    ],
)
def test_a_bad_cron_expression_says_what_is_wrong(expression: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        cron_trigger(expression, "UTC")
    with pytest.raises(ValidationError, match=re.escape(problem)):
        Settings(ingest_cron=expression)
    with pytest.raises(ValidationError, match=re.escape(problem)):
        SourceConfig(kind="hf", cron=expression)


class Recorder:
    """Jobs that only record being called."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def elect(self) -> None:
        self.calls.append("elect")

    async def dispatch(self) -> None:
        self.calls.append("dispatch")

    async def ingest(self, source: SourceConfig) -> None:
        self.calls.append(f"ingest {source.label()}")

    async def inbox(self) -> None:
        self.calls.append("inbox")

    async def purge(self) -> None:
        self.calls.append("purge")


def test_the_scheduler_runs_the_election_the_dispatch_tick_and_one_ingest_per_source() -> None:
    settings = Settings(
        dispatch_seconds=120,
        sources=[
            SourceConfig(kind="arxiv", categories=["cs.LG"]),
            SourceConfig(kind="hf", name="hf", cron="0 6 * * *"),
        ],
    )

    async def start() -> list[tuple[str, Any]]:
        jobs = Recorder()
        scheduler = build_scheduler(settings, jobs, FRIDAY)
        scheduler.start(paused=True)
        try:
            return [(job.name, job.next_run_time) for job in scheduler.get_jobs()]
        finally:
            scheduler.shutdown(wait=False)

    scheduled = dict(asyncio.run(start()))
    assert set(scheduled) == {"elect", "dispatch", "purge", "ingest arxiv:cs.LG", "ingest hf"}
    assert upcoming(settings, FRIDAY) == [
        ("dispatch", FRIDAY + timedelta(minutes=2)),
        ("purge", FRIDAY + timedelta(hours=1)),
        ("ingest hf", datetime(2026, 11, 28, 11, tzinfo=UTC)),  # 06:00 in New York
        ("ingest arxiv:cs.LG", datetime(2026, 11, 30, 1, 30, tzinfo=UTC)),
    ]
    # With a mailbox configured, the inbox is read every few minutes too.
    reading = settings.model_copy(update={"inbox_maildir": "/srv/mail", "inbox_every_minutes": 3})
    assert upcoming(reading, FRIDAY)[0] == ("dispatch", FRIDAY + timedelta(minutes=2))
    assert upcoming(reading, FRIDAY)[1] == ("inbox", FRIDAY + timedelta(minutes=3))


def test_an_ingest_missed_while_down_is_owed_within_the_grace() -> None:
    hf = SourceConfig(kind="hf", cron="0 6 * * *")
    feed = SourceConfig(kind="feed", url="https://example.org/feed", cron="0 7 * * *")
    settings = Settings(sources=[hf, feed], ingest_timezone="UTC", catch_up_hours=3)
    now = datetime(2026, 11, 27, 8, 30, tzinfo=UTC)
    yesterday = now - timedelta(days=1)
    assert missed(settings, {}, now) == [hf, feed]
    assert missed(settings, {"hf": yesterday, feed.label(): yesterday}, now) == [hf, feed]
    assert missed(settings, {"hf": now.replace(hour=6, minute=1)}, now) == [feed]
    # Past the grace (06:00 is more than 2 h before 08:30 here): skipped, not owed.
    late = settings.model_copy(update={"catch_up_hours": 2})
    assert missed(late, {}, now) == [feed]


class Sink(SmtpSink):
    """An SMTP sink that signals once it holds `wanted` messages."""

    wanted = 2
    done = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        if len(self.received) >= self.wanted:
            self.done.set()
        return reply


@pytest.fixture
def sink() -> Iterator[Sink]:
    """A started sink on a free loopback port."""
    found = Sink(port=free_port())
    found.done = threading.Event()
    controller = Controller(found, hostname=found.host, port=found.port)
    controller.start()
    yield found
    controller.stop()


def test_serve_sends_each_digest_at_its_hour_and_the_opt_in_note(
    engine: Engine, settings: Settings, sink: Sink
) -> None:
    settings = settings.model_copy(
        update={"smtp_port": sink.port, "leader_lock_id": random.getrandbits(40)}
    )
    now = datetime(2026, 11, 23, 8, tzinfo=UTC)
    store(engine, [PaperIn(title="Diffusion models", id="2411.00001")], now=now)
    subscribe(engine, "due@example.org", ["diffusion"], send_hour=7, now=now)
    subscribe(engine, "note@example.org", ["quantum"], send_hour=8, empty_note=True, now=now)
    subscribe(engine, "later@example.org", ["diffusion"], send_hour=9, now=now)
    subscribe(engine, "quiet@example.org", ["quantum"], send_hour=6, now=now)

    async def go() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(
            serve(
                engine,
                settings,
                InterestMatcher(),
                SmtpTransport(settings),
                Renderer(settings),
                stop=stop,
                clock=lambda: now,
            )
        )
        delivered = await asyncio.to_thread(sink.done.wait, 60)
        stop.set()
        await task
        assert delivered

    asyncio.run(go())
    assert sorted(r.recipients[0] for r in sink.received) == ["due@example.org", "note@example.org"]
    body = sink.to("due@example.org")[0].get_body(("plain",))
    assert body is not None and "Diffusion models" in body.get_content()
    note = sink.to("note@example.org")[0]
    assert note["Subject"] == "Nothing new matched your interests (2026-11-23)"
    assert note["List-Unsubscribe"]


def test_one_leader_at_a_time_and_a_lost_connection_loses_it(database_url: str) -> None:
    key = random.getrandbits(40)
    one, two = make_engine(database_url), make_engine(database_url)
    first, second = Leadership(one, key), Leadership(two, key)
    try:
        if one.dialect.name == "sqlite":  # a single process: always the leader
            assert first.check() and second.check()
            return
        assert first.check() and not second.check()
        assert first.check()  # kept
        first.release()
        assert second.check() and not first.check()
        assert second.conn is not None
        pid = second.conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        with one.connect().execution_options(isolation_level="AUTOCOMMIT") as admin:
            admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            gone = sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid")
            deadline = time.monotonic() + 30  # termination is asynchronous
            while admin.execute(gone, {"pid": pid}).scalar_one() and time.monotonic() < deadline:
                time.sleep(0.01)
        assert first.check()
        assert not second.check() and not second.held
    finally:
        first.release()
        second.release()
        one.dispose()
        two.dispose()


class Process:
    """A `digest serve` subprocess whose log lines are read as they come."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "digest", "serve", "--no-web"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float = 60) -> float:
        """Seconds until a log line holding `text` came; fails after `timeout`."""
        start = time.monotonic()
        while True:
            left = timeout - (time.monotonic() - start)
            try:
                line = self.lines.get(timeout=max(left, 0.01))
            except queue.Empty:
                pytest.fail(f"no {text!r} from digest serve within {timeout} s")
            if text in line:
                return time.monotonic() - start
            assert "Traceback" not in line, line

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.reader.join()
        assert self.proc.stderr is not None
        self.proc.stderr.close()


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_serve_processes_elect_one_scheduler_and_a_standby_takes_over(
    engine: Engine, database_url: str, smtp: SmtpSink
) -> None:
    env = {
        **os.environ,
        "DIGEST_DATABASE_URL": database_url,
        "DIGEST_SMTP_PORT": str(smtp.port),
        "DIGEST_LEADER_LOCK_ID": str(random.getrandbits(40)),
        "DIGEST_LEADER_CHECK_SECONDS": "0.2",
        "DIGEST_DISPATCH_SECONDS": "0.2",
        "DIGEST_WORKER_POLL_SECONDS": "0.2",
        "DIGEST_FROM": "Paper Digest <digest@digest.test>",
        "DIGEST_SOURCES": "[]",  # the leader would fetch the default sources
    }
    first = Process(env)
    second: Process | None = None
    try:
        first.wait_for("this process is the leader")
        second = Process(env)
        second.wait_for("another process is the leader")
        first.proc.send_signal(signal.SIGKILL)
        assert second.wait_for("this process is the leader") < 60
        # The new leader plans: a subscriber due now gets their digest.
        now = datetime.now(UTC)
        store(engine, [PaperIn(title="Diffusion models", id="2411.00001")], now=now)
        subscribe(engine, "a@example.org", ["diffusion"], send_hour=now.hour, now=now)
        second.wait_for("sent 1 of 1 digests")
        assert [r.recipients for r in smtp.received] == [["a@example.org"]]
        second.proc.send_signal(signal.SIGTERM)
        assert second.proc.wait(timeout=60) == 0
    finally:
        first.close()
        if second is not None:
            second.close()


def test_schedule_command_lists_jobs_and_digests_due_by_hour(
    engine: Engine, cli_env: dict[str, str]
) -> None:
    now = datetime.now(UTC)
    later = (now + timedelta(hours=2)).hour
    for n in range(3):
        subscribe(engine, f"p{n}@example.org", ["diffusion"], send_hour=later, now=now)
    weekday = (now + timedelta(hours=2)).weekday()
    subscribe(
        engine, "w@example.org", ["x"], send_hour=later, cadence=Cadence.weekly, weekday=weekday
    )
    result = CliRunner().invoke(app, ["schedule"], env=cli_env)
    assert result.exit_code == 0, result.output
    assert "dispatch" in result.output
    hour = (now + timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    assert f"{hour:%Y-%m-%d %H}:00  4" in result.output
    assert "total in the next 24 h: 4" in result.output


def test_a_bad_schedule_setting_stops_the_cli_with_the_reason(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "DIGEST_INGEST_CRON": "30 20 * *"}
    result = CliRunner().invoke(app, ["schedule"], env=env)
    assert result.exit_code == 2
    assert "error: cron '30 20 * *' has 4 fields; expected 5" in " ".join(result.output.split())


def test_serve_runs_the_web_app_in_the_same_loop(engine: Engine, settings: Settings) -> None:
    settings = settings.model_copy(update={"leader_lock_id": random.getrandbits(40)})
    port = free_port()

    async def go() -> int:
        stop = asyncio.Event()
        task = asyncio.create_task(
            serve(
                engine,
                settings,
                InterestMatcher(),
                SmtpTransport(settings),
                Renderer(settings),
                stop=stop,
                web=("127.0.0.1", port),
            )
        )
        async with httpx.AsyncClient() as client:
            for _ in range(200):
                try:
                    status = (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code
                    break
                except httpx.ConnectError:
                    await asyncio.sleep(0.05)
            else:
                status = 0
        stop.set()
        await task
        return status

    assert asyncio.run(go()) == 200


def test_serve_reports_a_port_it_cannot_bind(engine: Engine, settings: Settings) -> None:
    settings = settings.model_copy(update={"leader_lock_id": random.getrandbits(40)})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        async def go() -> None:
            await serve(
                engine,
                settings,
                InterestMatcher(),
                SmtpTransport(settings),
                Renderer(settings),
                stop=asyncio.Event(),
                web=("127.0.0.1", port),
            )

        with pytest.raises(OSError):
            asyncio.run(go())


def test_a_fresh_install_ingests_hf_and_the_main_arxiv_listings(
    engine: Engine, cli_env: dict[str, str]
) -> None:
    fresh = {k: v for k, v in cli_env.items() if k != "DIGEST_SOURCES"}
    shown = CliRunner().invoke(app, ["schedule"], env=fresh)
    assert shown.exit_code == 0, shown.output
    assert "ingest hf" in shown.output
    assert "ingest arxiv:cs.LG+cs.CL+cs.CV+cs.AI" in shown.output
    feed = '[{"kind": "feed", "url": "https://lab.example.org/feed.xml"}]'
    replaced = CliRunner().invoke(app, ["schedule"], env={**fresh, "DIGEST_SOURCES": feed})
    assert "ingest feed:https://lab.example.org/feed.xml" in replaced.output
    assert "ingest hf" not in replaced.output and "arxiv" not in replaced.output

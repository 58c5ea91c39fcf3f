"""Worker processes: killed with SIGKILL and restarted, or several at once on PostgreSQL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from digest.config import Settings
from digest.delivery.planning import plan
from digest.delivery.sender import GROUP
from digest.match.engine import InterestMatcher
from digest.models import DIGESTS, DigestStatus
from tests.kit.seeds import T0, populate
from tests.kit.smtp import FaultySink, serving


@pytest.fixture
def sink() -> Iterator[FaultySink]:
    with serving(FaultySink(seed=3)) as handler:
        yield handler


def worker(
    settings: Settings,
    sink: FaultySink,
    tmp_path: Path,
    *args: str,
    lease: float = 2,
    **extra: str,
) -> subprocess.Popen[bytes]:
    """Start `digest worker` in its own process against the test database and sink."""
    env = {
        **os.environ,
        "DIGEST_DATABASE_URL": settings.sqlalchemy_url,
        "DIGEST_SMTP_HOST": "127.0.0.1",
        "DIGEST_SMTP_PORT": str(sink.port),
        "DIGEST_SMTP_CONNECTIONS": "4",
        "DIGEST_SEND_BATCH": "20",
        "DIGEST_SEND_LEASE_SECONDS": str(lease),
        "DIGEST_WORKER_POLL_SECONDS": "0.2",
        "DIGEST_FROM": settings.from_,
        "DIGEST_VAR_DIR": str(tmp_path / "var"),
        **{f"DIGEST_{name.upper()}": value for name, value in extra.items()},
    }
    return subprocess.Popen(
        [sys.executable, "-m", "digest", "worker", *args],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def statuses(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        query = sa.select(DIGESTS.c.status, sa.func.count()).group_by(DIGESTS.c.status)
        return {status: count for status, count in conn.execute(query)}


def wait_until(predicate: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.slow
def test_killed_workers_lose_nothing(
    engine: Engine, settings: Settings, sink: FaultySink, tmp_path: Path
) -> None:
    populate(engine, 250)
    plan(engine, InterestMatcher(), settings, T0)
    rng = random.Random(11)
    kills = 0
    for _ in range(3):
        process = worker(settings, sink, tmp_path)
        target = sum(sink.delivered.values()) + rng.randint(10, 40)  # leave the survivor work

        def reached(target: int = target, process: subprocess.Popen[bytes] = process) -> bool:
            return sum(sink.delivered.values()) >= target or process.poll() is not None

        wait_until(reached)
        process.send_signal(signal.SIGKILL)
        process.communicate()
        kills += 1
    survivor = worker(settings, sink, tmp_path)
    try:
        wait_until(lambda: statuses(engine) == {DigestStatus.sent: 250}, timeout=90)
    finally:
        survivor.send_signal(signal.SIGTERM)
        _, stderr = survivor.communicate(timeout=30)
    assert survivor.returncode == 0, stderr.decode()
    assert len(sink.delivered) == 250  # every digest arrived
    duplicates = sum(n - 1 for n in sink.delivered.values())
    # Only the accepted-but-unrecorded window, per kill: the messages in flight on the 4
    # connections plus the results not yet recorded (a group of GROUP at most).
    assert duplicates <= kills * (4 + GROUP)


def test_sigterm_finishes_in_flight_and_releases_the_rest(
    engine: Engine, settings: Settings, sink: FaultySink, tmp_path: Path
) -> None:
    populate(engine, 300)
    plan(engine, InterestMatcher(), settings, T0)
    process = worker(settings, sink, tmp_path)
    wait_until(lambda: sum(sink.delivered.values()) >= 30)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr.decode()
    counts = statuses(engine)
    assert DigestStatus.sending not in counts  # nothing left claimed
    assert counts[DigestStatus.sent] == sum(sink.delivered.values())
    assert counts[DigestStatus.sent] + counts.get(DigestStatus.planned, 0) == 300


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_three_workers_share_one_outbox(
    engine: Engine, settings: Settings, sink: FaultySink, tmp_path: Path
) -> None:
    populate(engine, 600)
    plan(engine, InterestMatcher(), settings, T0)
    # A lease far longer than any wait here: only the claims keep the workers apart.
    processes = [worker(settings, sink, tmp_path, "--once", lease=300) for _ in range(3)]
    for process in processes:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr.decode()
    assert statuses(engine) == {DigestStatus.sent: 600}
    assert len(sink.delivered) == 600
    assert max(sink.delivered.values()) == 1


def rate(times: list[float]) -> float:
    """Messages a second between the first delivery and the last."""
    return (len(times) - 1) / (times[-1] - times[0])


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_four_workers_send_5000_digests_once_each_and_faster_than_one(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    # A relay that takes 50 ms to accept each message: one worker's 4 connections bound
    # it, as on a real network, so more workers can send more.
    with serving(FaultySink(delay=0.05)) as sink:
        populate(engine, 5000)
        plan(engine, InterestMatcher(), settings, T0)
        alone = worker(settings, sink, tmp_path, "--once", lease=300, max_per_run="600")
        _, stderr = alone.communicate(timeout=120)
        assert alone.returncode == 0, stderr.decode()
        one = rate(sink.times)
        assert statuses(engine) == {DigestStatus.sent: 600, DigestStatus.planned: 4400}
        before = len(sink.times)
        processes = [worker(settings, sink, tmp_path, "--once", lease=300) for _ in range(4)]
        for process in processes:
            _, stderr = process.communicate(timeout=300)
            assert process.returncode == 0, stderr.decode()
        four = rate(sink.times[before:])
    assert statuses(engine) == {DigestStatus.sent: 5000}
    assert len(sink.delivered) == 5000
    assert max(sink.delivered.values()) == 1  # each sent once
    assert four > 2 * one, (one, four)

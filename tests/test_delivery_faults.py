"""2,000 digests through a faulty SMTP server: each deliverable one exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from digest.config import Settings
from digest.delivery.planning import plan
from digest.delivery.sender import send_due
from digest.delivery.transport import SmtpTransport
from digest.mail.render import Renderer
from digest.match import InterestMatcher, parse
from digest.models import DIGESTS, INTERESTS, SENT_PAPERS, SUBSCRIBERS, DigestStatus
from digest.sources.ingest import PaperIn, store
from tests.smtp_faults import FaultySink, serving

T0 = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)


def populate(engine: Engine, count: int, *, now: datetime = T0) -> list[str]:
    """`count` active subscribers interested in diffusion, and papers that match."""
    store(
        engine,
        [PaperIn(title=f"Diffusion paper {i}", id=f"2411.{i:05d}") for i in range(3)],
        now=now - timedelta(hours=1),
    )
    emails = [f"reader{i}@example.org" for i in range(count)]
    with engine.begin() as conn:
        conn.execute(
            sa.insert(SUBSCRIBERS),
            [
                {
                    "email": e,
                    "status": "active",
                    "timezone": "UTC",
                    "send_hour": 7,
                    "cadence": "daily",
                    "weekday": 0,
                    "max_papers": 20,
                    "token_version": 1,
                    "soft_bounces": 0,
                    "created_at": now - timedelta(days=1),
                }
                for e in emails
            ],
        )
        ids = conn.execute(sa.select(SUBSCRIBERS.c.id)).scalars().all()
        canonical = parse("diffusion").canonical
        conn.execute(
            sa.insert(INTERESTS),
            [
                {"subscriber_id": i, "query": "diffusion", "canonical": canonical, "position": 0}
                for i in ids
            ],
        )
    return emails


@pytest.fixture
def faulty() -> Iterator[FaultySink]:
    sink = FaultySink(seed=7, p_451=0.03, p_421=0.02, p_drop=0.02, p_stall=0.002, stall_seconds=3.0)
    with serving(sink):
        yield sink


def test_every_deliverable_digest_arrives_exactly_once(
    database_url: str, engine: Engine, settings: Settings, faulty: FaultySink
) -> None:
    # 2,000 on SQLite; the PostgreSQL run checks the same paths on a smaller outbox.
    count = 2000 if database_url.startswith("sqlite") else 500
    emails = populate(engine, count)
    faulty.hard_bounce = set(emails[::97])
    faulty.first = ["421", "drop", "stall"]  # each kind at least once, whatever the dice say
    settings = settings.model_copy(
        update={
            "smtp_port": faulty.port,
            "smtp_timeout": 2.0,  # generous: a slow 250 under load is not a stall
            "smtp_connections": 8,
            "retry_schedule": [1.0],
            "send_batch": 200,
        }
    )
    assert plan(engine, InterestMatcher(), settings, T0).planned == count

    now = T0
    for _ in range(20):

        async def one_pass(at: datetime) -> int:
            transport = SmtpTransport(settings)
            try:
                report = await send_due(engine, transport, Renderer(settings), clock=lambda: at)
            finally:
                await transport.close()
            assert report.aborted is None
            return len(report.outcomes)

        if asyncio.run(one_pass(now)) == 0:
            break
        now += timedelta(seconds=5)

    deliverable = set(emails) - faulty.hard_bounce
    assert set(faulty.recipients) == deliverable
    assert max(faulty.recipients.values()) == 1, "a digest was delivered twice"
    assert max(faulty.delivered.values()) == 1
    assert faulty.faults["451"] and faulty.faults["421"] and faulty.faults["drop"]
    assert faulty.faults["stall"]
    with engine.connect() as conn:
        states: dict[str, int] = dict(
            conn.execute(
                sa.select(DIGESTS.c.status, sa.func.count()).group_by(DIGESTS.c.status)
            ).all()
        )
        bounced = set(
            conn.execute(
                sa.select(SUBSCRIBERS.c.email).where(SUBSCRIBERS.c.status == "bounced")
            ).scalars()
        )
        ledger = conn.execute(sa.select(sa.func.count()).select_from(SENT_PAPERS)).scalar()
    assert states == {
        DigestStatus.sent: len(deliverable),
        DigestStatus.failed: len(faulty.hard_bounce),
    }
    assert bounced == faulty.hard_bounce
    assert ledger == 3 * len(deliverable)

"""2,000 digests through a faulty SMTP server: each deliverable one exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from digest.config import Settings
from digest.delivery.planning import plan
from digest.delivery.sender import send_due
from digest.delivery.transport import SmtpTransport
from digest.mail.render import Renderer
from digest.match.engine import InterestMatcher
from digest.models import DIGESTS, SENT_PAPERS, SUBSCRIBERS, DigestStatus
from tests.kit.seeds import T0, populate
from tests.kit.smtp import FaultySink, serving


@pytest.fixture
def faulty() -> Iterator[FaultySink]:
    sink = FaultySink(seed=7, p_451=0.03, p_421=0.02, p_drop=0.02, p_stall=0.002, stall_seconds=3.0)
    with serving(sink):
        yield sink


@pytest.mark.slow
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

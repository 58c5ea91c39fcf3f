"""The SMTP server refusing us (policy, authentication) stops sending and loses nothing."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy import Engine
from typer.testing import CliRunner

from digest.cli import app
from digest.clock import utcnow
from digest.models import DIGESTS, DigestStatus
from digest.sources.ingest import PaperIn, store
from digest.subscribers import subscribe
from tests.kit.smtp import SmtpSink


def test_a_refusal_of_us_stops_the_run_says_why_once_and_keeps_every_digest(
    engine: Engine, cli_env: dict[str, str], smtp: SmtpSink
) -> None:
    now = utcnow()
    papers = [PaperIn(title=f"Diffusion study {n}", id=f"2411.{n:05d}") for n in range(3)]
    store(engine, papers, now=now - timedelta(hours=1))
    for n in range(3):
        subscribe(engine, f"r{n}@example.org", ["diffusion"], now=now - timedelta(days=1))
        smtp.refuse[f"r{n}@example.org"] = "550 5.7.1 relaying denied for this client"
    result = CliRunner().invoke(app, ["run"], env=cli_env)
    assert result.exit_code == 3, result.output
    assert result.output.count("relaying denied") == 1
    assert "sending stopped: the SMTP server refused us: 550 5.7.1" in result.output
    with engine.connect() as conn:
        statuses = conn.execute(sa.select(DIGESTS.c.status, DIGESTS.c.attempts)).all()
    # Nothing failed and no attempt was counted: the digests wait for the operator's fix.
    assert statuses == [(DigestStatus.planned, 0)] * 3
    assert smtp.received == []

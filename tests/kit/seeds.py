"""What tests start from: papers and subscribers stored, digests sent, JSONL, bounce reports."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from digest.config import Settings
from digest.delivery.sender import run
from digest.delivery.transport import SmtpTransport
from digest.mail.render import Renderer
from digest.match.engine import InterestMatcher
from digest.match.query import parse
from digest.models import INTERESTS, SUBSCRIBERS
from digest.sources.ingest import PaperIn, store

T0 = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)

# Two papers about diffusion (one with authors) and one about something else.
PAPERS = [
    PaperIn(
        id="2401.00001v1",
        title="Denoising Diffusion for Molecules",
        abstract="A diffusion model generates molecules.",
        authors=["Ada Lovelace"],
        url="https://arxiv.org/abs/2401.00001",
    ),
    PaperIn(
        id="2401.00002v1",
        title="Latent Diffusion for Audio",
        abstract="Diffusion in a learned latent space.",
        url="https://arxiv.org/abs/2401.00002",
    ),
    PaperIn(id="2401.00003v1", title="Graph Networks for Traffic", abstract="Roads."),
]


def seed(engine: Engine, count: int = 3, *, now: datetime = T0) -> None:
    """`count` papers about diffusion, stored an hour before `now`."""
    papers = [
        PaperIn(title=f"Diffusion study {i}", abstract="diffusion " * (i + 1), id=f"2411.{i:05d}")
        for i in range(count)
    ]
    store(engine, papers, now=now - timedelta(hours=1))


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


def send_digest(engine: Engine, settings: Settings, now: datetime) -> None:
    """Plan and send the due digests to the test SMTP server, as the scheduler would."""
    renderer = Renderer(settings)
    asyncio.run(run(engine, InterestMatcher(), SmtpTransport(settings), renderer, now))


def write_jsonl(path: Path, papers: list[dict[str, Any]]) -> Path:
    """Write papers as JSONL and return the path."""
    path.write_text("".join(json.dumps(p) + "\n" for p in papers), encoding="utf-8")
    return path


def dsn(
    *,
    recipient: str,
    action: str,
    status: str,
    message_id: str | None,
    to: str = "bounces@x",
    original: str | None = None,
) -> bytes:
    """A delivery status notification laid out like Postfix writes one (`original`: the
    Original-Recipient, when the message was forwarded)."""
    headers = (
        f"Message-ID: {message_id}\nFrom: digest@digest.test\nTo: {recipient}\n"
        if message_id
        else f"From: digest@digest.test\nTo: {recipient}\n"
    )
    return (
        f"From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\n"
        f"To: {to}\n"
        f"Subject: Undelivered Mail Returned to Sender\n"
        f"MIME-Version: 1.0\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n'
        f"\n--B\nContent-Type: text/plain\n\nI'm sorry to have to inform you...\n"
        f"\n--B\nContent-Type: message/delivery-status\n\n"
        f"Reporting-MTA: dns; mx.example.net\n\n"
        + (f"Original-Recipient: rfc822; {original}\n" if original else "")
        + f"Final-Recipient: rfc822; {recipient}\nAction: {action}\nStatus: {status}\n"
        f"Diagnostic-Code: smtp; 550 {status} mailbox unavailable\n"
        f"\n--B\nContent-Type: text/rfc822-headers\n\n{headers}"
        f"\n--B--\n"
    ).encode()


def topical_papers() -> list[PaperIn]:
    """110 papers: 12 on state space models (all naming Mamba), 98 on graphs."""
    ssm = [
        PaperIn(
            id=f"2412.{i:05d}v1",
            title=f"Selective state space models, part {i}",
            abstract="We train Mamba, a state space model, on long sequences.",
        )
        for i in range(12)
    ]
    graphs = [
        PaperIn(
            id=f"2412.{100 + i:05d}v1",
            title=f"Graph study {i}",
            abstract=f"Message passing over graph number {i}.",
        )
        for i in range(98)
    ]
    return ssm + graphs

"""The outbox against a real SMTP server: once per period, retries, refusals, leases."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import Engine

from digest.config import Settings
from digest.delivery.outbox import Outbox, SendReport
from digest.delivery.planning import plan
from digest.delivery.sender import run, send_due
from digest.delivery.transport import SmtpTransport
from digest.delivery.views import PaperCache
from digest.mail.render import Renderer
from digest.match.engine import InterestMatcher
from digest.models import PAPERS, SUBSCRIBERS, Digest, DigestStatus, SentPaper, table_of
from digest.sources.ingest import PaperIn, store
from digest.subscribers import subscribe, unsubscribe_address
from tests.kit.seeds import T0, seed
from tests.kit.smtp import SmtpSink

DIGESTS = table_of(Digest)


def send(engine: Engine, settings: Settings, now: datetime) -> SendReport:
    async def go() -> SendReport:
        transport = SmtpTransport(settings)
        try:
            return await send_due(engine, transport, Renderer(settings), clock=lambda: now)
        finally:
            await transport.close()

    return asyncio.run(go())


def digests(engine: Engine) -> list[tuple[str, str, int]]:
    with engine.connect() as conn:
        return [
            (r.status, r.period, r.attempts)
            for r in conn.execute(sa.select(DIGESTS).order_by(DIGESTS.c.id))
        ]


def test_one_digest_per_period_and_never_a_paper_twice(
    engine: Engine, settings: Settings, smtp: SmtpSink
) -> None:
    seed(engine)
    subscribe(engine, "a@example.org", ["diffusion"], now=T0 - timedelta(days=1))
    matcher = InterestMatcher()
    first = asyncio.run(run(engine, matcher, SmtpTransport(settings), Renderer(settings), T0))
    assert first[1].count(DigestStatus.sent) == 1
    again = asyncio.run(run(engine, matcher, SmtpTransport(settings), Renderer(settings), T0))
    assert again[0].planned == 0 and again[1].outcomes == []
    next_day = T0 + timedelta(days=1)
    later = asyncio.run(run(engine, matcher, SmtpTransport(settings), Renderer(settings), next_day))
    assert later[0].empty == 1  # nothing new: the ledger holds every paper
    assert len(smtp.received) == 1
    message = smtp.received[0].message
    assert message["Message-ID"] == "<digest.1.2026-11-26@digest.test>"
    assert digests(engine) == [("sent", "2026-11-26", 1), ("empty", "2026-11-27", 0)]


def test_cap_keeps_the_best_and_counts_the_rest(
    engine: Engine, settings: Settings, smtp: SmtpSink
) -> None:
    seed(engine, count=5)
    subscribe(engine, "a@example.org", ["diffusion"], max_papers=2)
    plan(engine, InterestMatcher(), settings, T0)
    send(engine, settings, T0)
    (message,) = smtp.to("a@example.org")
    assert message["Subject"] == "2 new papers: diffusion"
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert "Diffusion study 4" in text and "Diffusion study 3" in text
    assert "Diffusion study 0" not in text
    assert "And 3 more matched" in text


def test_unsubscribe_after_planning_stops_the_digest(
    engine: Engine, settings: Settings, smtp: SmtpSink
) -> None:
    seed(engine)
    subscribe(engine, "a@example.org", ["diffusion"])
    assert plan(engine, InterestMatcher(), settings, T0).planned == 1
    unsubscribe_address(engine, "A@example.org")
    report = send(engine, settings, T0)
    assert report.outcomes[0].status is DigestStatus.failed
    assert smtp.received == []


def test_temporary_refusal_is_retried_later_and_sent_once(
    engine: Engine, settings: Settings, smtp: SmtpSink
) -> None:
    seed(engine)
    subscribe(engine, "a@example.org", ["diffusion"])
    plan(engine, InterestMatcher(), settings, T0)
    smtp.refuse["a@example.org"] = "451 4.3.0 try again later"
    assert send(engine, settings, T0).count(DigestStatus.planned) == 1
    del smtp.refuse["a@example.org"]
    assert send(engine, settings, T0).outcomes == []  # backoff: not yet
    assert send(engine, settings, T0 + timedelta(minutes=5)).count(DigestStatus.sent) == 1
    assert len(smtp.received) == 1
    assert digests(engine) == [("sent", "2026-11-26", 2)]


def test_permanent_refusal_fails_without_retry(
    engine: Engine, settings: Settings, smtp: SmtpSink
) -> None:
    seed(engine)
    subscribe(engine, "a@example.org", ["diffusion"])
    subscribe(engine, "b@example.org", ["diffusion"])
    plan(engine, InterestMatcher(), settings, T0)
    smtp.refuse["a@example.org"] = "550 5.1.1 no such user"
    report = send(engine, settings, T0)
    assert sorted((o.email, o.status) for o in report.outcomes) == [
        ("a@example.org", DigestStatus.failed),
        ("b@example.org", DigestStatus.sent),
    ]
    assert "550" in report.outcomes[0].reply or "550" in report.outcomes[1].reply
    assert send(engine, settings, T0 + timedelta(days=1)).outcomes == []
    with engine.connect() as conn:
        ledger = (
            conn.execute(sa.select(table_of(SentPaper).c.subscriber_id).distinct()).scalars().all()
        )
    assert len(ledger) == 1  # only b received papers
    with engine.connect() as conn:
        statuses = dict(conn.execute(sa.select(SUBSCRIBERS.c.email, SUBSCRIBERS.c.status)).all())
    assert statuses == {"a@example.org": "bounced", "b@example.org": "active"}


def test_an_expired_lease_is_taken_over(engine: Engine, settings: Settings, smtp: SmtpSink) -> None:
    seed(engine)
    subscribe(engine, "a@example.org", ["diffusion"])
    plan(engine, InterestMatcher(), settings, T0)
    assert Outbox(engine, Renderer(settings)).claim(T0, 10) == [1]  # claimed; worker dies
    assert send(engine, settings, T0 + timedelta(minutes=1)).outcomes == []
    lease = timedelta(seconds=settings.send_lease_seconds)
    report = send(engine, settings, T0 + lease + timedelta(seconds=1))
    assert report.count(DigestStatus.sent) == 1
    assert len(smtp.received) == 1


def test_a_claim_takes_at_most_its_limit(engine: Engine, settings: Settings) -> None:
    seed(engine)
    for i in range(30):
        subscribe(engine, f"r{i}@example.org", ["diffusion"])
    plan(engine, InterestMatcher(), settings, T0)
    first, second = Outbox(engine, Renderer(settings)), Outbox(engine, Renderer(settings))
    a, b = first.claim(T0, 10), second.claim(T0, 25)
    assert len(a) == 10 and len(b) == 20
    assert not set(a) & set(b)
    assert first.claim(T0, 10) == []


def test_a_paper_changed_between_batches_is_shown_as_it_is_now(
    engine: Engine, settings: Settings
) -> None:
    """The outbox keeps papers' rows from batch to batch; a paper stored again since (a
    new version, new upvotes) is read again, in a process that outlives many passes."""
    seed(engine, count=1)
    for reader in "abc":
        subscribe(engine, f"{reader}@example.org", ["diffusion"])
    plan(engine, InterestMatcher(), settings, T0)
    outbox = Outbox(engine, Renderer(settings))
    first, second, third = outbox.claim(T0, 3)
    jobs, _ = outbox.prepare([first], T0)
    assert b"Diffusion study 0" in jobs[0].envelope.data
    ingested = T0 - timedelta(minutes=30)
    revised = PaperIn(id="2411.00000v2", title="Diffusion study, revised", abstract="diffusion")
    store(engine, [revised], now=ingested)
    jobs, _ = outbox.prepare([second], T0)
    assert b"Diffusion study, revised" in jobs[0].envelope.data
    assert b"Diffusion study 0" not in jobs[0].envelope.data
    # Stored again at the same time (a run's pages are committed one by one): seen too.
    again = PaperIn(id="2411.00000v3", title="Diffusion study, third", abstract="diffusion")
    store(engine, [again], now=ingested)
    jobs, _ = outbox.prepare([third], T0)
    assert b"Diffusion study, third" in jobs[0].envelope.data


def test_the_paper_cache_starts_again_past_its_limit(engine: Engine) -> None:
    seed(engine, count=3)
    cache = PaperCache(limit=2)
    with engine.connect() as conn:
        ids = list(conn.execute(sa.select(PAPERS.c.id).order_by(PAPERS.c.id)).scalars())
        assert set(cache.load(conn, ids[:2])) == set(ids[:2])
        # Past the limit: everything asked for is read again, none of it lost.
        found = cache.load(conn, ids)
    assert set(found) == set(ids)
    assert [found[i].title for i in ids] == [f"Diffusion study {i}" for i in range(3)]
    assert len(cache.rows) == 3

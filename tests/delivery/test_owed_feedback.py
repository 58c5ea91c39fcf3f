"""A paper held over after feedback moved it comes back with the score it had, moved
once, whichever subscribers are planned beside its reader."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy import Engine

from digest import feedback
from digest.config import Settings
from digest.delivery.planning import select_papers
from digest.match.engine import InterestMatcher
from digest.models import PAPERS, SUBSCRIBERS
from digest.sources.ingest import PaperIn, store
from digest.subscribers import subscribe
from tests.kit.seeds import T0, send_digest
from tests.kit.smtp import SmtpSink


def test_an_owed_paper_keeps_the_score_its_feedback_gave_it_once(
    engine: Engine, settings: Settings, smtp: SmtpSink
) -> None:
    store(
        engine,
        [
            PaperIn(
                id="2410.00001",
                title="Diffusion for molecules seed",
                abstract="diffusion molecules generation",
            )
        ],
        now=T0 - timedelta(days=30),
    )
    store(
        engine,
        [
            PaperIn(
                id=f"2411.{n:05d}",
                title=f"Diffusion for molecules {n}",
                abstract="diffusion molecules" + " more" * n,
            )
            for n in range(6)
        ],
        now=T0 - timedelta(hours=1),
    )
    subscribe(engine, "ada@example.org", ["diffusion"], max_papers=2, now=T0 - timedelta(days=1))
    with engine.connect() as conn:
        ada = conn.execute(sa.select(SUBSCRIBERS.c.id)).scalar_one()
        seed = conn.execute(sa.select(PAPERS.c.id).where(PAPERS.c.title.like("%seed"))).scalar_one()
    feedback.record(engine, ada, seed, "more", now=T0 - timedelta(hours=2))
    send_digest(engine, settings, T0)
    later = T0 + timedelta(days=1)
    subscribe(engine, "bob@example.org", ["graphs"], now=later - timedelta(hours=2))
    with engine.connect() as conn:
        whole = select_papers(conn, InterestMatcher(), settings, later)
        chunked = select_papers(conn, InterestMatcher(), settings, later, chunk=1)
    a_whole = [(c.paper_id, c.score) for c in whole[0].papers]
    a_chunk = [(c.paper_id, c.score) for c in chunked[0].papers]
    assert a_whole == a_chunk

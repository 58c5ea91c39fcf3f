"""A reader whose window is short is scored over the same papers whether or not a reader
with a longer window is in the same chunk."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine

from digest.config import Settings
from digest.delivery.planning import select_papers
from digest.match.engine import InterestMatcher
from digest.sources.ingest import PaperIn, store
from digest.subscribers import subscribe
from tests.kit.seeds import T0, send_digest
from tests.kit.smtp import SmtpSink


def test_scores_do_not_depend_on_the_chunk_size(
    engine: Engine, settings: Settings, smtp: SmtpSink
) -> None:
    store(
        engine,
        [
            PaperIn(id=f"2411.{n:05d}", title=f"Graph study {n}", abstract="graphs")
            for n in range(5)
        ],
        now=T0 - timedelta(hours=1),
    )
    subscribe(
        engine, "ada@example.org", ["diffusion", "graph"], max_papers=2, now=T0 - timedelta(days=1)
    )
    send_digest(engine, settings, T0)
    later = T0 + timedelta(days=1)
    store(
        engine,
        [
            PaperIn(id="2412.00001", title="Diffusion graph study", abstract="diffusion"),
            PaperIn(id="2412.00002", title="Diffusion again", abstract="x"),
            PaperIn(id="2412.00003", title="Graph again", abstract="x"),
        ],
        now=later - timedelta(hours=1),
    )
    subscribe(engine, "bob@example.org", ["robots"], now=later - timedelta(hours=2))
    with engine.connect() as conn:
        whole = select_papers(conn, InterestMatcher(), settings, later)
        chunked = select_papers(conn, InterestMatcher(), settings, later, chunk=1)
    w = [(c.paper_id, c.score, c.interest) for c in whole[0].papers + whole[0].held]
    c = [(c.paper_id, c.score, c.interest) for c in chunked[0].papers + chunked[0].held]
    assert w == c

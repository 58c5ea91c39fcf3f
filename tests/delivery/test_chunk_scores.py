"""Scores depend on the papers matched over: every chunk of a planning run matches over
the same papers, those of the earliest window of everyone due."""

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


def test_the_papers_shown_do_not_depend_on_who_is_planned_beside(
    engine: Engine, settings: Settings, smtp: SmtpSink
) -> None:
    store(
        engine,
        [PaperIn(id=f"2411.{n:05d}", title=f"Alpha note {n}", abstract="alpha") for n in range(10)],
        now=T0 - timedelta(hours=1),
    )
    subscribe(
        engine, "ada@example.org", ["alpha", "beta"], max_papers=20, now=T0 - timedelta(days=1)
    )
    send_digest(engine, settings, T0)  # all ten sent
    subscribe(engine, "ada@example.org", ["alpha", "beta"], max_papers=1)
    later = T0 + timedelta(days=1)
    store(
        engine,
        [
            PaperIn(id="2412.00001", title="Alpha", abstract="alpha results"),
            PaperIn(id="2412.00002", title="Beta methods and more words here", abstract="beta"),
            PaperIn(id="2412.00003", title="Other", abstract="x"),
        ],
        now=later - timedelta(hours=1),
    )
    subscribe(engine, "bob@example.org", ["robots"], now=later - timedelta(hours=2))
    with engine.connect() as conn:
        whole = select_papers(conn, InterestMatcher(), settings, later)
        chunked = select_papers(conn, InterestMatcher(), settings, later, chunk=1)
    w = (
        [(c.paper_id, c.score, c.interest) for c in whole[0].papers],
        [c.paper_id for c in whole[0].held],
    )
    c = (
        [(c.paper_id, c.score, c.interest) for c in chunked[0].papers],
        [c.paper_id for c in chunked[0].held],
    )
    assert w == c

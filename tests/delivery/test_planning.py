"""Planning works through the due subscribers a chunk at a time: the same digests as in one
go, each chunk committed, and no statement with every due id in it (SQLite's limit)."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from digest.config import Settings
from digest.delivery.planning import Selection, plan, select_papers
from digest.match.engine import InterestMatcher
from digest.models import DIGEST_PAPERS, DIGESTS, SENT_PAPERS
from digest.sources.ingest import PaperIn, store
from digest.subscribers import subscribe
from tests.kit.mail import parts
from tests.kit.seeds import T0, populate, send_digest, topical_papers
from tests.kit.smtp import SmtpSink

READERS = [
    (["diffusion"], 3),
    (['"language models"', "retrieval"], 5),
    (["diffusion", 'author:"Ada Lovelace"'], 2),
    (["graph -traffic"], 10),
    (["transformer OR attention", "reasoning", "speech"], 4),
    (["nothing-matches-this"], 5),
    (["LoRA"], 1),
]


TOPICS = [
    ("Diffusion models for {}", "A diffusion model with attention."),
    ("Language models that retrieve {}", "Large language models and retrieval."),
    ("Reasoning about {} with transformers", "Chain of thought reasoning in a transformer."),
    ("Speech recognition for {}", "End-to-end speech models with attention."),
    ("LoRA adapters for {}", "Low-rank adaptation (LoRA) of language models."),
]


def readers(engine: Engine) -> None:
    papers = [
        PaperIn(
            id=f"2412.{500 + 10 * t + n:05d}",
            title=title.format(f"case {n}"),
            abstract=abstract + " more" * n,
            authors=["Ada Lovelace"] if n == 0 else [],
        )
        for t, (title, abstract) in enumerate(TOPICS)
        for n in range(6)
    ]
    store(engine, [*topical_papers()[:30], *papers], now=T0 - timedelta(hours=2))
    for n, (lines, cap) in enumerate(READERS):
        subscribe(engine, f"r{n}@example.org", lines, max_papers=cap, now=T0 - timedelta(days=1))


def summary(selections: list[Selection]) -> list[tuple[Any, ...]]:
    return [
        (
            s.subscriber_id,
            [(c.paper_id, c.score, c.interest) for c in s.papers],
            [(c.paper_id, c.score, c.interest) for c in s.held],
        )
        for s in selections
    ]


def test_chunks_of_two_choose_what_one_chunk_does(engine: Engine, settings: Settings) -> None:
    readers(engine)
    with engine.connect() as conn:
        whole = select_papers(conn, InterestMatcher(), settings, T0)
        chunked = select_papers(conn, InterestMatcher(), settings, T0, chunk=2)
    assert len(whole) == len(READERS)
    assert sum(len(s.papers) for s in whole) > 10  # the case is not empty
    assert summary(chunked) == summary(whole)


def test_each_chunk_is_committed_and_a_second_plan_adds_nothing(
    engine: Engine, settings: Settings
) -> None:
    readers(engine)
    with engine.connect() as conn:
        expected = summary(select_papers(conn, InterestMatcher(), settings, T0))
    report = plan(engine, InterestMatcher(), settings, T0, chunk=3)
    assert report.planned + report.empty == len(READERS)
    again = plan(engine, InterestMatcher(), settings, T0, chunk=3)
    assert again.planned == again.empty == 0
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(DIGESTS.c.subscriber_id, DIGEST_PAPERS.c.paper_id, DIGEST_PAPERS.c.held)
            .join(DIGESTS, DIGESTS.c.id == DIGEST_PAPERS.c.digest_id)
            .order_by(DIGESTS.c.subscriber_id, DIGEST_PAPERS.c.rank)
        ).all()
    recorded = {(sub, paper, held) for sub, paper, held in rows}
    wanted = {
        (sub, paper, held)
        for sub, shown, kept in expected
        for group, held in ((shown, False), (kept, True))
        for paper, _, _ in group
    }
    assert recorded == wanted


def test_planning_processes_record_what_one_process_chooses(
    engine: Engine, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    readers(engine)
    with engine.connect() as conn:
        expected = summary(select_papers(conn, InterestMatcher(), settings, T0))
    several = settings.model_copy(update={"plan_processes": 2, "plan_parallel_min": 0})
    with caplog.at_level(logging.INFO, logger="digest.delivery.planning"):
        report = plan(engine, InterestMatcher(), several, T0, chunk=2)
    assert report.planned + report.empty == len(READERS)
    in_processes = "in 2 processes" in caplog.text
    assert in_processes == (engine.dialect.name == "postgresql")  # SQLite: one writer
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                DIGESTS.c.subscriber_id,
                DIGEST_PAPERS.c.paper_id,
                DIGEST_PAPERS.c.score,
                DIGEST_PAPERS.c.interest,
                DIGEST_PAPERS.c.held,
            )
            .join(DIGESTS, DIGESTS.c.id == DIGEST_PAPERS.c.digest_id)
            .order_by(DIGESTS.c.subscriber_id, DIGEST_PAPERS.c.rank)
        ).all()
    recorded = [
        (sub, [(p, score, line) for _, p, score, line, held in rows if _ == sub and held is h])
        for sub, *_ in expected
        for h in (False, True)
    ]
    wanted = [(sub, group) for sub, shown, kept in expected for group in (shown, kept)]
    assert recorded == wanted


def test_more_due_subscribers_than_sqlite_binds_in_one_statement(
    engine: Engine, settings: Settings
) -> None:
    # SQLite refuses a statement with more than 32,766 bound values: planning must never
    # name every due subscriber at once.
    populate(engine, 33_000)
    report = plan(engine, InterestMatcher(), settings, T0)
    assert report.planned == 33_000
    with engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(DIGEST_PAPERS)).scalar()
    assert count == 33_000 * 3


def test_a_removed_line_takes_its_held_papers_along(
    engine: Engine, settings: Settings, smtp: SmtpSink
) -> None:
    store(
        engine,
        [
            *(PaperIn(id=f"2411.{n:05d}", title=f"Diffusion study {n}") for n in range(6)),
            *(PaperIn(id=f"2411.{100 + n:05d}", title=f"Retrieval study {n}") for n in range(6)),
        ],
        now=T0 - timedelta(hours=1),
    )
    subscribe(
        engine, "ada@example.org", ["diffusion", "retrieval"], max_papers=4, now=T0 - timedelta(1)
    )
    send_digest(engine, settings, T0)
    first = parts(smtp.to("ada@example.org")[0])[0]
    assert "held over" in first
    subscribe(engine, "ada@example.org", ["retrieval"], max_papers=4)
    send_digest(engine, settings, T0 + timedelta(days=1))
    second = parts(smtp.to("ada@example.org")[1])[0]
    titles = re.findall(r"^\d+\.\s+(.+)$", second, re.M)
    assert titles and all(t.startswith("Retrieval") for t in titles), titles
    with engine.connect() as conn:
        sent = conn.execute(sa.select(sa.func.count()).select_from(SENT_PAPERS)).scalar()
    assert sent == 4 + len(titles)


def planned_both_ways(engine: Engine, settings: Settings, when: datetime) -> tuple[Any, Any]:
    """The due digests chosen in one chunk and one subscriber a chunk, at `when`."""
    with engine.connect() as conn:
        whole = select_papers(conn, InterestMatcher(), settings, when)
        chunked = select_papers(conn, InterestMatcher(), settings, when, chunk=1)
    return whole, chunked


def test_the_papers_shown_do_not_depend_on_who_is_planned_beside(
    engine: Engine, settings: Settings, smtp: SmtpSink
) -> None:
    """Scores depend on the papers matched over: every chunk of a planning run matches over
    the same papers, those of the earliest window of everyone due."""
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
    whole, chunked = planned_both_ways(engine, settings, later)
    w = (
        [(c.paper_id, c.score, c.interest) for c in whole[0].papers],
        [c.paper_id for c in whole[0].held],
    )
    c = (
        [(c.paper_id, c.score, c.interest) for c in chunked[0].papers],
        [c.paper_id for c in chunked[0].held],
    )
    assert w == c


def test_scores_do_not_depend_on_the_chunk_size(
    engine: Engine, settings: Settings, smtp: SmtpSink
) -> None:
    """A reader whose window is short is scored over the same papers whether or not a reader
    with a longer window is in the same chunk."""
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
    whole, chunked = planned_both_ways(engine, settings, later)
    w = [(c.paper_id, c.score, c.interest) for c in whole[0].papers + whole[0].held]
    c = [(c.paper_id, c.score, c.interest) for c in chunked[0].papers + chunked[0].held]
    assert w == c


def _analysed(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_stat_clear_snapshot()"))
        rows = conn.execute(
            sa.text(
                "SELECT relname, last_analyze FROM pg_stat_user_tables"
                " WHERE relname IN ('digest', 'digestpaper', 'sentpaper')"
            )
        )
        return {name: at for name, at in rows}


def test_a_large_plan_has_postgresql_analyse_the_outbox(engine: Engine, settings: Settings) -> None:
    """Past `analyze_min` digests, the outbox's statistics are refreshed: unanalysed, a
    million new rows had PostgreSQL scan the whole table for every batch sent."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's planner uses the indexes without statistics")
    populate(engine, 3)
    before = _analysed(engine)
    assert plan(engine, InterestMatcher(), settings, T0, analyze_min=10).planned == 3
    assert _analysed(engine) == before  # a small plan leaves it to autovacuum
    started = datetime.now(UTC)
    day = T0 + timedelta(days=1)
    store(
        engine, [PaperIn(title="Diffusion, later", id="2411.09999")], now=day - timedelta(hours=1)
    )
    assert plan(engine, InterestMatcher(), settings, day, analyze_min=1).planned == 3
    after = _analysed(engine)
    assert set(after) == {"digest", "digestpaper", "sentpaper"}
    assert all(at is not None and at >= started for at in after.values())

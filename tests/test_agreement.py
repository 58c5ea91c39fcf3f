"""One interest line, four ways in: the digest sent, `search`, `explain` and the sign-up
preview find the same papers in the same stored batch (60 real arXiv entries)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from digest.config import Settings
from digest.demo import SAMPLE_PAPERS
from digest.match.engine import InterestMatcher
from digest.match.query import parse
from digest.models import DIGEST_PAPERS, DIGESTS
from digest.search import explain, search, stored_papers
from digest.sources.ingest import PaperIn, store
from digest.subscribers import subscribe
from digest.web.preview import PaperCache, preview
from tests.kit.seeds import T0, send_digest
from tests.kit.smtp import SmtpSink

LINES = [
    "reinforcement learning",
    "LLM",
    "agents -benchmark",
    "language models AND reasoning",
    '"large language models" OR diffusion',
    "like:2508.13180",  # "Search-Time Data Contamination", one of the sample papers
]


def _sample() -> list[PaperIn]:
    rows = [json.loads(line) for line in SAMPLE_PAPERS.read_text("utf-8").splitlines()]
    return [PaperIn.model_validate(row) for row in rows]


@pytest.mark.parametrize("line", LINES)
def test_digest_search_explain_and_preview_agree(
    line: str, engine: Engine, settings: Settings, smtp: SmtpSink
) -> None:
    store(engine, _sample(), now=T0 - timedelta(hours=2))
    row, _ = subscribe(
        engine, "ada@example.org", [line], now=T0 - timedelta(days=1), max_papers=100
    )
    send_digest(engine, settings, T0)
    with engine.connect() as conn:
        sent = set(
            conn.execute(
                sa.select(DIGEST_PAPERS.c.paper_id)
                .join(DIGESTS, DIGESTS.c.id == DIGEST_PAPERS.c.digest_id)
                .where(DIGESTS.c.subscriber_id == row.id)
            ).scalars()
        )
        papers = stored_papers(conn)
    assert sent, f"{line!r} should match some of the sample papers"
    assert len(smtp.to("ada@example.org")) == 1
    assert {found.paper.id for found in search(papers, line)} == sent
    explained = {p.id for p in papers if explain(engine, "ada@example.org", p.id)[1][0].matches}
    assert explained == sent
    shown = preview(PaperCache(engine), InterestMatcher(), [(line, parse(line).canonical)], T0)
    assert shown.per_interest[line] == len(sent)

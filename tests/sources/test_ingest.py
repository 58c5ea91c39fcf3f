"""Ingest: one canonical row per paper, across versions, sources and duplicates."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from digest.models import PAPERS, Paper, table_of
from digest.sources.ingest import PaperIn, clean_text, parse_arxiv_id, store


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2401.12345v3", ("2401.12345", 3)),
        ("https://arxiv.org/abs/2401.12345", ("2401.12345", None)),
        ("oai:arXiv.org:2508.13426v1", ("2508.13426", 1)),
        ("hep-th/9901001v2", ("hep-th/9901001", 2)),
        ("http://arxiv.org/abs/cond-mat/0412498v1", ("cond-mat/0412498", 1)),
        ("https://example.org/paper", None),
    ],
)
def test_arxiv_ids(text: str, expected: tuple[str, int | None] | None) -> None:
    assert parse_arxiv_id(text) == expected


def test_canonical_id_prefers_arxiv_then_doi_then_title() -> None:
    assert PaperIn(title="T", id="2401.00001v2", doi="10.1/X").identity() == (
        "arxiv:2401.00001",
        "2401.00001",
        2,
    )
    assert PaperIn(title="T", doi="10.1/ABC").identity()[0] == "doi:10.1/abc"
    by_title = PaperIn(title="Attention  is all you NEED!").identity()[0]
    assert by_title == PaperIn(title="attention is all you need").identity()[0]
    assert by_title.startswith("title:")


def test_text_is_cleaned_for_display() -> None:
    assert clean_text("  Graphs &amp; &lt;Nets&gt;\n   at\tscale ") == "Graphs & <Nets> at scale"


def rows(engine: Engine) -> list[tuple[str, int | None, str, list[str]]]:
    with engine.connect() as conn:
        table = table_of(Paper)
        return [
            (r.canonical_id, r.version, r.title, r.sources)
            for r in conn.execute(sa.select(table).order_by(table.c.id))
        ]


def test_versions_and_sources_merge_into_one_row(engine: Engine) -> None:
    t0 = datetime(2026, 11, 20, tzinfo=UTC)
    report = store(engine, [PaperIn(title="Old", id="2401.00001v1", source="arxiv")], now=t0)
    assert (report.new, report.updated) == (1, 0)
    report = store(
        engine,
        [
            PaperIn(title="New", id="2401.00001v2", source="arxiv"),
            PaperIn(title="New", arxiv_id="2401.00001", source="hf", upvotes=12),
            PaperIn(title="Older", id="2401.00001v1", source="arxiv"),
        ],
        now=datetime(2026, 11, 21, tzinfo=UTC),
    )
    assert (report.new, report.updated, report.unchanged) == (0, 1, 2)
    assert rows(engine) == [("arxiv:2401.00001", 2, "New", ["arxiv"])]
    store(engine, [PaperIn(title="New", arxiv_id="2401.00001", source="hf", upvotes=12)])
    with engine.connect() as conn:
        paper = conn.execute(sa.select(table_of(Paper))).one()
    assert paper.sources == ["arxiv", "hf"]
    assert paper.upvotes == 12
    assert paper.first_seen_at == t0  # a new version is not a new paper


def test_latex_is_stored_as_text_in_titles_abstracts_and_authors(engine: Engine) -> None:
    paper = PaperIn(
        title=r"Schr\"odinger bridges at scale with $\mu$P",
        abstract=r"We introduce \textsf{TS-Agent}; it runs in $O(n^2)$ time. Costs: $800 and $5.",
        authors=[r"Erwin Schr{\"o}dinger", r"Paul Erd\H{o}s", r"Fran\c{c}ois Chollet"],
    )
    store(engine, [paper])
    with engine.connect() as conn:
        row = conn.execute(sa.select(PAPERS)).one()
    assert row.title == "Schrödinger bridges at scale with μP"
    assert row.abstract == "We introduce TS-Agent; it runs in O(n^2) time. Costs: $800 and $5."
    assert row.authors == ["Erwin Schrödinger", "Paul Erdős", "François Chollet"]


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("url", "javascript:alert(1)", "not javascript:"),
        ("pdf_url", "data:text/html,<b>x</b>", "not data:"),
        ("project_page", "ftp://example.org/x", "not ftp:"),
        ("github_repo", "github.com/example/x", "not 'github.com/example/x'"),
    ],
)
def test_only_web_links_are_stored(field: str, value: str, said: str) -> None:
    with pytest.raises(
        ValueError, match=f"{field}\\n.*only http:// and https:// links are stored, {said}"
    ):
        PaperIn(title="A paper", **{field: value})
    kept = PaperIn(title="A paper", **{field: "HTTPS://example.org/a"})
    assert getattr(kept, field) == "HTTPS://example.org/a"
    assert PaperIn(title="A paper", **{field: ""}).model_dump()[field] is None

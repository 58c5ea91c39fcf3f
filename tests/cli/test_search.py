"""`digest search` and `digest explain` against a real database and a JSONL file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine
from typer.testing import CliRunner

from digest.cli import app
from digest.models import PAPERS
from tests.kit.seeds import write_jsonl

runner = CliRunner()

BATCH: list[dict[str, Any]] = [
    {
        "id": "2401.00001v1",
        "title": "Sparse Mixture-of-Experts at Scale",
        "abstract": "We route tokens to experts in LLMs.",
        "authors": ["Ada Lovelace"],
        "categories": ["cs.LG"],
    },
    {
        "id": "2401.00002v1",
        "title": "Denoising Diffusion for Molecules",
        "abstract": "A diffusion model generates molecules.",
        "categories": ["q-bio.BM"],
    },
    {
        "id": "2401.00003v1",
        "title": "Large language models as judges",
        "abstract": "We ask large language models to grade answers.",
    },
]


def run(env: dict[str, str], *args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args), env=env)
    assert result.exit_code == code, result.output
    return result.output


def test_search_a_file_as_json_reports_bad_lines(cli_env: dict[str, str], tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "papers.jsonl", BATCH)
    path.write_text(path.read_text() + '{"abstract": "no title"}\n', encoding="utf-8")
    output = run(cli_env, "search", "LLM", "--from", str(path), "--json")
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert [r["title"] for r in records] == [
        "Large language models as judges",
        "Sparse Mixture-of-Experts at Scale",
    ]
    assert records[0]["matched"] == ["llm"]
    # Which expansion matched: the long form in one paper, the plural acronym in the other.
    assert records[0]["found"] == {"llm": ["Large language models", "large language models"]}
    assert records[1]["found"] == {"llm": ["LLMs"]}
    assert records[0]["score"] > records[1]["score"] > 0
    assert "papers.jsonl:4: title" in output


def test_search_the_database_and_refuse_a_bad_line(
    cli_env: dict[str, str], engine: Engine, tmp_path: Path
) -> None:
    run(cli_env, "ingest", str(write_jsonl(tmp_path / "a.jsonl", BATCH)))
    output = run(cli_env, "search", 'author:"A. Lovelace" OR cat:q-bio')
    assert "Sparse Mixture-of-Experts at Scale" in output
    assert "Denoising Diffusion for Molecules" in output
    assert "2 of 3 paper(s) match" in output
    output = run(cli_env, "search", '"mixture of experts', code=2)
    assert "unbalanced quote (at column 1)" in output


def test_explain_says_which_lines_match_and_what_is_missing(
    cli_env: dict[str, str], engine: Engine, tmp_path: Path
) -> None:
    run(cli_env, "ingest", str(write_jsonl(tmp_path / "a.jsonl", BATCH)))
    run(cli_env, "subscribe", "ada@example.org", "-i", "MoE", "-i", "diffusion molecules -llm")
    with engine.connect() as conn:
        paper_id = conn.execute(
            sa.select(PAPERS.c.id).where(PAPERS.c.title.like("Sparse%"))
        ).scalar_one()
    output = run(cli_env, "explain", "ada@example.org", str(paper_id))
    assert "match  MoE  score" in output
    assert "no     diffusion molecules -llm  missing: diffusion molecules" in output
    assert "no paper with id 999" in run(cli_env, "explain", "ada@example.org", "999", code=1)
    assert "no subscriber" in run(cli_env, "explain", "bob@example.org", "1", code=1)


def test_digests_match_on_authors_and_categories(
    cli_env: dict[str, str], engine: Engine, tmp_path: Path
) -> None:
    run(cli_env, "ingest", str(write_jsonl(tmp_path / "a.jsonl", BATCH)))
    run(cli_env, "subscribe", "bob@example.org", "-i", 'author:"A. Lovelace"', "-i", "cat:q-bio")
    output = run(cli_env, "preview", "bob@example.org")
    assert "Sparse Mixture-of-Experts at Scale" in output
    assert "Denoising Diffusion for Molecules" in output
    assert "Large language models as judges" not in output


def test_ingest_skips_lines_that_are_not_utf8_or_hold_nul_and_stores_the_rest(
    cli_env: dict[str, str], engine: Engine, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / "papers.jsonl", BATCH)
    with path.open("ab") as handle:
        handle.write(b'{"title": "Caf\xe9 au lait"}\n')  # Latin-1, not UTF-8
        handle.write(b'{"title": "Nul", "abstract": "a\\u0000b"}\n')
        handle.write(b'{"title": "Last good one"}\n')
    output = run(cli_env, "ingest", str(path))
    assert "papers.jsonl:4: not valid UTF-8 (byte 15)" in output
    assert "papers.jsonl:5:" in output and "NUL character" in output
    with engine.connect() as conn:
        titles = set(conn.execute(sa.select(PAPERS.c.title)).scalars())
    assert titles == {p["title"] for p in BATCH} | {"Last good one"}

"""The whole path through the CLI: ingest -> subscribe -> run -> real SMTP server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine
from typer.testing import CliRunner

from digest.cli import app
from digest.models import Paper, table_of
from tests.kit.env import shared_papers
from tests.kit.seeds import write_jsonl
from tests.kit.smtp import SmtpSink

runner = CliRunner()
PAPERS = table_of(Paper)

FIRST_BATCH: list[dict[str, Any]] = [
    {
        "id": "2401.00001v1",
        "title": "Sparse Mixture of Experts at Scale",
        "abstract": "We route tokens to experts.",
        "authors": ["Ada Lovelace", "Alan Turing"],
    },
    {
        "id": "2401.00002v1",
        "title": "Denoising Diffusion for Molecules",
        "abstract": "A diffusion model generates molecules.",
    },
    {
        "id": "2401.00003v1",
        "title": "Graph Neural Networks for Traffic",
        "abstract": "Message passing over road graphs.",
    },
    {
        "id": "2401.00004v1",
        "title": "On Diffusional Creep in Metals",
        "abstract": "Creep of metals at high temperature.",
    },
]
SECOND_BATCH: list[dict[str, Any]] = [
    {
        "id": "2401.00001v2",
        "title": "Sparse Mixture of Experts at Scale (revised)",
        "abstract": "We route tokens to experts, better.",
    },
    {
        "id": "2401.00005v1",
        "title": "Latent Diffusion for Audio",
        "abstract": "Diffusion in a learned latent space.",
    },
    {"title": "A mixture of experts view of ensembles", "abstract": "Ensembles as experts."},
]


def invoke(env: dict[str, str], *args: str) -> str:
    """Run the CLI and fail with its output when it exits non-zero."""
    result = runner.invoke(app, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.output


def titles(message: EmailMessage) -> str:
    """The text part of a digest."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def test_daily_digest_end_to_end(
    cli_env: dict[str, str], smtp: SmtpSink, engine: Engine, tmp_path: Path
) -> None:
    invoke(cli_env, "ingest", str(write_jsonl(tmp_path / "a.jsonl", FIRST_BATCH)))
    invoke(cli_env, "subscribe", "Ada@Example.org", "--interest", '"mixture of experts"')
    invoke(cli_env, "subscribe", "bob@example.org", "-i", "diffusion", "-i", "graph neural")
    invoke(cli_env, "subscribe", "carol@example.org", "--interest", "quantum chromodynamics")

    output = invoke(cli_env, "run")
    assert "sent 2" in output
    assert sorted(r for m in smtp.received for r in m.recipients) == [
        "ada@example.org",
        "bob@example.org",
    ]
    (ada,) = smtp.to("ada@example.org")
    assert "Sparse Mixture of Experts at Scale" in titles(ada)
    assert "Diffusion" not in titles(ada)
    (bob,) = smtp.to("bob@example.org")
    assert "Denoising Diffusion for Molecules" in titles(bob)
    assert "Graph Neural Networks for Traffic" in titles(bob)
    assert "Diffusional Creep" not in titles(bob)  # whole words only
    assert "Mixture of Experts" not in titles(bob)
    assert smtp.to("carol@example.org") == []

    assert "sent 0" in invoke(cli_env, "run")
    assert len(smtp.received) == 2

    invoke(cli_env, "ingest", str(write_jsonl(tmp_path / "b.jsonl", SECOND_BATCH)))
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert "sent 2" in invoke(cli_env, "run", "--now", tomorrow)
    ada_again = smtp.to("ada@example.org")[-1]
    assert "A mixture of experts view of ensembles" in titles(ada_again)
    assert "Sparse Mixture of Experts" not in titles(ada_again)  # a new version is not new
    bob_again = smtp.to("bob@example.org")[-1]
    assert "Latent Diffusion for Audio" in titles(bob_again)
    assert "Denoising Diffusion" not in titles(bob_again)
    assert smtp.to("carol@example.org") == []

    with engine.connect() as conn:
        revised = conn.execute(
            sa.select(PAPERS.c.title, PAPERS.c.version).where(PAPERS.c.arxiv_id == "2401.00001")
        ).one()
    assert revised == ("Sparse Mixture of Experts at Scale (revised)", 2)


def test_ingest_the_shared_papers(cli_env: dict[str, str], engine: Engine) -> None:
    path = shared_papers()
    output = invoke(cli_env, "ingest", str(path))
    assert "559 read, 539 new" in output
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(PAPERS)).scalar_one() == 539
    assert "0 new" in invoke(cli_env, "ingest", str(path))


def test_malformed_line_is_reported_and_the_rest_stored(
    cli_env: dict[str, str], engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        '{"title": "First good paper", "abstract": "x"}\n'
        '{"title": "broken\n'
        '{"abstract": "no title here"}\n'
        '{"title": "Second good paper", "authors": 5}\n'
        '{"title": "Third good paper"}\n',
        encoding="utf-8",
    )
    result = runner.invoke(app, ["ingest", str(path)], env=cli_env)
    assert result.exit_code == 0
    assert f"{path}:2: not valid JSON" in result.output
    assert f"{path}:3: title: Field required" in result.output
    assert f"{path}:4: authors" in result.output
    assert "5 read, 2 new" in result.output
    with engine.connect() as conn:
        stored = set(conn.execute(sa.select(PAPERS.c.title)).scalars())
    assert stored == {"First good paper", "Third good paper"}


def test_invalid_interest_is_refused(cli_env: dict[str, str], engine: Engine) -> None:
    result = runner.invoke(
        app, ["subscribe", "x@example.org", "-i", "ok", "-i", '"unclosed phrase'], env=cli_env
    )
    assert result.exit_code == 2
    assert "unbalanced quote" in result.output
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM subscriber")).scalar_one() == 0

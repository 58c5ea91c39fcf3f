"""Digests through the real pipeline: database, planning, rendering, SMTP on loopback."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import html5lib
import sqlalchemy as sa
from sqlalchemy import Engine
from typer.testing import CliRunner

from digest.cli import app
from digest.clock import utcnow
from digest.config import Settings
from digest.delivery.sender import run
from digest.delivery.transport import SmtpTransport
from digest.mail.render import Renderer
from digest.match.engine import InterestMatcher
from digest.models import DIGESTS, SENT_PAPERS, DigestStatus
from digest.sources.ingest import PaperIn, store
from digest.subscribers import subscribe
from tests.kit.mail import make_dkim_key, parts
from tests.kit.smtp import SmtpSink

T0 = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)


def seed(engine: Engine, count: int, now: datetime = T0) -> None:
    papers = [
        PaperIn(
            title=f"Diffusion transformers, study {i}",
            abstract="We train diffusion models. " * 8 + "Results improve.",
            id=f"2611.{i:05d}",
            url=f"https://arxiv.org/abs/2611.{i:05d}",
            pdf_url=f"https://arxiv.org/pdf/2611.{i:05d}",
            authors=["Ada Lovelace", "Grace Hopper", "Alan Turing", "Kurt Gödel"],
            categories=["cs.CV", "cs.LG"],
            published=now - timedelta(days=2),
            upvotes=i,
            source="hf-daily",
        )
        for i in range(count)
    ]
    store(engine, papers, now=now - timedelta(hours=1))


def deliver(engine: Engine, settings: Settings) -> None:
    asyncio.run(run(engine, InterestMatcher(), SmtpTransport(settings), Renderer(settings), T0))


def ledger_size(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(SENT_PAPERS)).scalar_one())


def test_sent_digest_has_paper_links_and_the_full_list_link(
    engine: Engine, settings: Settings, smtp: SmtpSink
) -> None:
    seed(engine, 5)
    interests = ["diffusion", "quantum chromodynamics"]
    subscribe(engine, "a@example.org", interests, max_papers=2, now=T0 - timedelta(days=1))
    deliver(engine, settings)
    (message,) = smtp.to("a@example.org")
    assert message["Subject"] == "2 new papers: diffusion"
    assert message["List-Id"] == '"Paper Digest" <digest.digest.test>'
    assert message["List-Unsubscribe"].startswith("<https://digest.test/unsubscribe/")
    text, html = parts(message)
    html5lib.HTMLParser(strict=True).parse(html)
    shown = re.findall(r'href="https://huggingface.co/papers/2611\.0000(\d)"', html)
    assert len(set(shown)) == 2  # the two best of five, whatever the ranking
    for number in set(shown):
        assert f'href="https://arxiv.org/pdf/2611.0000{number}"' in html
        votes = f"{number} upvote{'s' * (number != '1')}"
        assert f"cs.CV, cs.LG · 24 November 2026 · {votes}<" in html
    assert "Ada Lovelace, Grace Hopper, Alan Turing et al." in text
    full_list = re.search(r"See all \d+: (\S+)", text)
    assert full_list is not None and full_list.group(1).startswith("https://digest.test/digests/")
    assert full_list.group(1).endswith("/1")  # the digest row's id
    assert f'href="{full_list.group(1)}"' in html
    assert ledger_size(engine) == 2
    assert "with these interests: diffusion; quantum chromodynamics." in " ".join(text.split())


def test_a_template_error_fails_the_digest_and_sends_nothing(
    engine: Engine, settings: Settings, smtp: SmtpSink, tmp_path: Path
) -> None:
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "digest.html").write_text("<p>\n{{ digest.papers[0].nope }}\n")
    broken = settings.model_copy(update={"templates_dir": tmp_path})
    seed(engine, 2)
    subscribe(engine, "a@example.org", ["diffusion"], now=T0 - timedelta(days=1))
    deliver(engine, broken)
    assert smtp.received == []
    with engine.connect() as conn:
        status, reply = conn.execute(sa.select(DIGESTS.c.status, DIGESTS.c.last_reply)).one()
    assert status == DigestStatus.failed
    assert "email/digest.html:2" in reply and "nope" in reply
    assert ledger_size(engine) == 0


def test_papers_cut_for_size_stay_out_of_the_ledger(
    engine: Engine, settings: Settings, smtp: SmtpSink
) -> None:
    seed(engine, 30)
    subscribe(engine, "a@example.org", ["diffusion"], max_papers=30, now=T0 - timedelta(days=1))
    deliver(engine, settings.model_copy(update={"email_max_bytes": 20_000}))
    (message,) = smtp.to("a@example.org")
    text, html = parts(message)
    assert len(html.encode()) <= 20_000
    shown = text.count("Why: your interest")
    assert 1 <= shown < 30
    assert f"And {30 - shown} more matched your interests: they are held over" in text
    assert ledger_size(engine) == shown


def test_dkim_signed_when_a_key_is_set(
    engine: Engine, settings: Settings, smtp: SmtpSink, tmp_path: Path
) -> None:
    key, _ = make_dkim_key(tmp_path)
    seed(engine, 1)
    subscribe(engine, "a@example.org", ["diffusion"], now=T0 - timedelta(days=1))
    deliver(engine, settings.model_copy(update={"dkim_private_key": key}))
    (message,) = smtp.to("a@example.org")
    assert "d=digest.test" in message["DKIM-Signature"]
    assert "s=digest" in message["DKIM-Signature"]


def test_an_unreadable_dkim_key_keeps_the_digest_for_a_retry(
    engine: Engine, settings: Settings, smtp: SmtpSink, tmp_path: Path
) -> None:
    seed(engine, 1)
    subscribe(engine, "a@example.org", ["diffusion"], now=T0 - timedelta(days=1))
    deliver(engine, settings.model_copy(update={"dkim_private_key": tmp_path / "absent.pem"}))
    assert smtp.received == []
    with engine.connect() as conn:
        status, reply = conn.execute(sa.select(DIGESTS.c.status, DIGESTS.c.last_reply)).one()
    assert status == DigestStatus.planned
    assert "cannot read DKIM key" in reply and "absent.pem" in reply


def test_preview_prints_html_or_reports_a_template_error(
    engine: Engine, cli_env: dict[str, str], tmp_path: Path
) -> None:
    now = utcnow()  # the command reads the wall clock
    seed(engine, 2, now)
    subscribe(engine, "a@example.org", ["diffusion"], now=now - timedelta(days=1))
    runner = CliRunner()
    result = runner.invoke(app, ["preview", "a@example.org", "--html"], env=cli_env)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("<!DOCTYPE html>")
    assert "transformers, study 1" in result.output
    (tmp_path / "tpl" / "email").mkdir(parents=True)
    (tmp_path / "tpl" / "email" / "digest.txt").write_text("{% if %}\n")
    env = {**cli_env, "DIGEST_TEMPLATES_DIR": str(tmp_path / "tpl")}
    failed = runner.invoke(app, ["preview", "a@example.org"], env=env)
    assert failed.exit_code == 1
    assert "digest.txt:1" in failed.output

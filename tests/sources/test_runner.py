"""Sources into the database over real loopback HTTP: one row per paper, faults survived."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from typer.testing import CliRunner

from digest.cli import app
from digest.config import Settings, SourceConfig
from digest.models import INGEST_RUNS, PAPERS
from digest.sources.files import ingest_path
from digest.sources.http import Http
from digest.sources.runner import ingest_configured, ingest_source
from tests.kit.smtp import SmtpSink
from tests.kit.sources import FIXTURES, FakeTimer, Reply, Site, serve

T1 = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
T2 = T1 + timedelta(days=3)
runner = CliRunner()


@pytest.fixture
def site() -> Iterator[Site]:
    """A loopback HTTP server."""
    with serve() as site:
        yield site


def paper_rows(engine: Engine) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        return {
            row.canonical_id: dict(row._mapping)
            for row in conn.execute(sa.select(PAPERS).order_by(PAPERS.c.id))
        }


def source_settings(site: Site, *sources: dict[str, Any]) -> Settings:
    return Settings.model_validate(
        {
            "sources": list(sources),
            "arxiv_listing_url": site.base + "/rss/",
            "hf_daily_url": site.base + "/api/daily_papers",
            "http_timeout": 2.0,
            "http_retries": 1,
        }
    )


def test_configured_sources_one_row_per_paper_and_a_dead_source_stops_nothing(
    engine: Engine, site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="digest.sources")
    site.file("/rss/cs.LG+cs.CL", "arxiv-listing-day1.xml", ETag='"day1"')
    site.file("/api/daily_papers", "hf-daily-2026-11-20.json")
    site.route("/down.xml", Reply(503))
    site.file("/cut.xml", "arxiv-listing-truncated.xml")
    site.file("/lab.xml", "lab-blog.xml", **{"Last-Modified": "Thu, 19 Nov 2026 10:00:00 GMT"})
    settings = source_settings(
        site,
        {"kind": "arxiv", "categories": ["cs.LG", "cs.CL"]},
        {"kind": "feed", "url": site.base + "/down.xml", "name": "dead-lab"},
        {"kind": "hf", "days": 1},
        {"kind": "feed", "url": site.base + "/cut.xml", "name": "cut"},
        {"kind": "feed", "url": site.base + "/lab.xml", "name": "lab"},
    )
    timer = FakeTimer()
    reports = ingest_configured(engine, settings, T1, timer=timer, rng=random.Random(1))
    lines = {r.source: r.line() for r in reports}
    assert lines["arxiv:cs.LG+cs.CL"] == (
        "arxiv:cs.LG+cs.CL: fetched 6, new 5, updated 0, unchanged 0, skipped 1"
    )
    assert lines["dead-lab"].startswith("dead-lab: fetched 0, new 0")
    assert "HTTP 503 Service Unavailable (gave up after 2 attempts)" in lines["dead-lab"]
    assert lines["hf"] == "hf: fetched 3, new 1, updated 1, unchanged 0, skipped 1"
    assert lines["cut"] == "cut: fetched 3, new 2, updated 0, unchanged 0, skipped 1, warnings 1"
    assert lines["lab"] == "lab: fetched 3, new 3, updated 0, unchanged 0, skipped 0"
    assert site.hits("/api/daily_papers")[0].query == "date=2026-11-20"
    logged = [r.getMessage() for r in caplog.records]
    assert all(line in logged for line in lines.values())
    assert any(
        m.startswith("cut: skipped ") and m.endswith("entry cut off by the malformed document")
        for m in logged
    )

    rows = paper_rows(engine)
    assert len(rows) == 5 + 1 + 2 + 3
    moe = rows["arxiv:2611.10001"]
    assert moe["sources"] == ["arxiv", "hf"]
    assert (moe["upvotes"], moe["version"], moe["announce_type"]) == (42, 1, "new")
    assert moe["categories"] == ["cs.LG", "cs.CL"]
    assert moe["github_repo"] == "https://github.com/example/mup-moe"
    assert moe["ai_keywords"][0] == "maximal update parametrization"
    assert moe["title"] == "μP Transfer for Mixture-of-Experts: Tuning Once at Small Scale"
    assert rows["arxiv:hep-th/9901001"]["version"] == 4

    with engine.connect() as conn:
        runs = conn.execute(sa.select(INGEST_RUNS).order_by(INGEST_RUNS.c.id)).all()
    assert [r.source for r in runs] == [r.source for r in reports]
    assert runs[1].error and "HTTP 503" in runs[1].error
    assert runs[3].problems[1].endswith("entry cut off by the malformed document")

    # The same responses again change nothing; unchanged feeds are not even downloaded.
    again = ingest_configured(engine, settings, T2, timer=timer, rng=random.Random(1))
    assert paper_rows(engine) == rows
    by_source = {r.source: r for r in again}
    assert by_source["arxiv:cs.LG+cs.CL"].not_modified
    assert by_source["lab"].not_modified
    assert site.hits("/rss/cs.LG+cs.CL")[1].headers["If-None-Match"] == '"day1"'
    assert (by_source["hf"].report.new, by_source["hf"].report.updated) == (0, 0)
    assert (by_source["cut"].report.new, by_source["cut"].report.updated) == (0, 0)


def test_versions_cross_lists_and_replacements(engine: Engine, site: Site) -> None:
    site.route(
        "/rss/cs.LG+cs.CL",
        Reply(200, (FIXTURES / "arxiv-listing-day1.xml").read_bytes()),
        Reply(200, (FIXTURES / "arxiv-listing-day2.xml").read_bytes()),
    )
    settings = source_settings(site)
    config = SourceConfig(kind="arxiv", categories=["cs.LG", "cs.CL"])
    with Http(settings, timer=FakeTimer()) as http:
        first = ingest_source(engine, settings, config, T1, http=http)
        before = paper_rows(engine)
        second = ingest_source(engine, settings, config, T2, http=http)
    assert first.report.new == 5
    assert (second.report.new, second.report.updated, second.report.unchanged) == (0, 2, 1)
    after = paper_rows(engine)
    assert after.keys() == before.keys()
    moe = after["arxiv:2611.10001"]
    assert moe["id"] == before["arxiv:2611.10001"]["id"]
    assert moe["version"] == 2
    assert moe["title"] == "μP Transfer for Mixture-of-Experts: Tune Once, Scale Anywhere"
    assert moe["abstract"] == "Revised abstract: μP transfers across expert counts too."
    assert moe["announce_type"] == "replacement"
    assert moe["first_seen_at"] == T1  # a new version is not a new paper
    assert moe["updated_at"] == T2
    assert moe["categories"] == ["cs.LG", "cs.CL", "stat.ML"]
    cross = after["arxiv:2611.10002"]
    assert cross["categories"] == ["eess.AS", "cs.CL", "cs.LG"]
    assert cross["first_seen_at"] == T1
    assert after["arxiv:2609.04321"] == before["arxiv:2609.04321"]


@pytest.mark.parametrize(
    "name",
    [
        "arxiv-listing-day1.xml",
        "arxiv-listing-rdf.xml",
        "arxiv-listing-truncated.xml",
        "arxiv-api-page1.xml",
        "hf-daily-2026-11-20.json",
        "lab-blog.xml",
        "journal-toc.atom",
    ],
)
def test_every_format_from_file_twice_changes_nothing(engine: Engine, name: str) -> None:
    first = ingest_path(engine, FIXTURES / name, now=T1)
    assert first.error is None and first.report.new == len(paper_rows(engine)) > 0
    rows = paper_rows(engine)
    second = ingest_path(engine, FIXTURES / name, now=T2)
    assert (second.report.new, second.report.updated) == (0, 0)
    assert paper_rows(engine) == rows


def cli(env: dict[str, str], *args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args), env=env)
    assert result.exit_code == code, result.output
    return " ".join(result.output.split())


def test_cli_ingest_from_each_source_and_show_sources(
    cli_env: dict[str, str], engine: Engine, site: Site
) -> None:
    site.file("/rss/cs.LG+cs.CL", "arxiv-listing-day1.xml")
    site.file("/api/daily_papers", "hf-daily-2026-11-20.json")
    site.file("/lab.xml", "lab-blog.xml")
    site.route(
        "/api/query",
        Reply(200, (FIXTURES / "arxiv-api-page1.xml").read_bytes()),
        Reply(200, (FIXTURES / "arxiv-api-page2.xml").read_bytes()),
    )
    env = {
        **cli_env,
        "DIGEST_ARXIV_LISTING_URL": site.base + "/rss/",
        "DIGEST_ARXIV_API_URL": site.base + "/api/query",
        "DIGEST_ARXIV_PAGE_SIZE": "2",
        "DIGEST_ARXIV_DELAY": "0",
        "DIGEST_HF_DAILY_URL": site.base + "/api/daily_papers",
        "DIGEST_HTTP_RETRIES": "0",
        "DIGEST_SOURCES": json.dumps([{"kind": "feed", "url": "https://x.test/", "name": "idle"}]),
    }
    out = cli(env, "ingest", "--source", "arxiv", "--category", "cs.LG", "-c", "cs.CL")
    assert "arxiv:cs.LG+cs.CL: fetched 6, new 5, updated 0, unchanged 0, skipped 1" in out
    assert "title is empty" in out
    out = cli(env, "ingest", "--source", "hf", "--date", "2026-11-20")
    assert "hf: fetched 3, new 1, updated 1, unchanged 0, skipped 1" in out
    assert site.hits("/api/daily_papers")[0].query == "date=2026-11-20"
    out = cli(env, "ingest", "--source", "feed", site.base + "/lab.xml")
    assert f"feed:{site.base}/lab.xml: fetched 3, new 3" in out
    out = cli(
        env, "ingest", "--source", "arxiv-api", "-c", "cs.LG", "--date", "2026-11-19",
        "--until", "2026-11-20",
    )  # fmt: skip
    assert "arxiv-api:cs.LG: fetched 3, new 1, updated 2, unchanged 0, skipped 0" in out
    out = cli(env, "ingest", "--source", "feed", site.base + "/nothing.xml", code=1)
    assert out.count("HTTP 404") == 1 and f"feed:{site.base}/nothing.xml: fetched 0" in out
    out = cli(env, "sources")
    for name in ("idle", "never", "arxiv:cs.LG+cs.CL", "hf", "arxiv-api:cs.LG", "HTTP 404"):
        assert name in out


def test_cli_ingest_files_detects_or_takes_the_format(
    cli_env: dict[str, str], engine: Engine, tmp_path: Path
) -> None:
    hf = str(FIXTURES / "hf-daily-2026-11-20.json")
    out = cli(cli_env, "ingest", hf)
    assert f"{hf}: 3 read, 2 new, 0 updated, 0 unchanged, 1 skipped" in out
    assert "entry 3 (2611.10010): upvotes" in out
    listing = str(FIXTURES / "arxiv-listing-day1.xml")
    out = cli(cli_env, "ingest", listing, "--format", "feed")
    assert f"{listing}: 6 read, 4 new, 1 updated" in out
    with engine.connect() as conn:
        sources = conn.execute(
            sa.select(PAPERS.c.sources).where(PAPERS.c.canonical_id == "arxiv:2611.10001")
        ).scalar_one()
    assert sources == ["hf", "feed"]
    out = cli(cli_env, "ingest", str(FIXTURES / "hf-wrong-type.json"), code=1)
    assert "expected a JSON list of papers, got dict" in out
    odd = tmp_path / "papers.csv"
    odd.write_text("title\n", encoding="utf-8")
    assert "cannot tell the format" in cli(cli_env, "ingest", str(odd), code=1)
    assert "no such file" in cli(cli_env, "ingest", str(tmp_path / "absent.jsonl"), code=2)


def test_a_paper_from_any_source_or_version_reaches_a_subscriber_once(
    cli_env: dict[str, str], smtp: SmtpSink, engine: Engine
) -> None:
    cli(cli_env, "ingest", str(FIXTURES / "arxiv-listing-day1.xml"))
    cli(cli_env, "subscribe", "ada@example.org", "-i", '"maximal update parametrization"')
    assert "sent 1" in cli(cli_env, "run")
    (first,) = smtp.to("ada@example.org")
    body = first.get_body(("plain",))
    assert body is not None
    assert "μP Transfer for Mixture-of-Experts" in str(body.get_content())
    for name in ("arxiv-listing-day2.xml", "hf-daily-2026-11-20.json", "arxiv-api-page1.xml"):
        cli(cli_env, "ingest", str(FIXTURES / name))
    with engine.connect() as conn:
        versions = conn.execute(
            sa.select(PAPERS.c.version, PAPERS.c.sources).where(
                PAPERS.c.canonical_id == "arxiv:2611.10001"
            )
        ).all()
    assert versions == [(2, ["arxiv", "hf"])]
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert "sent 0" in cli(cli_env, "run", "--now", tomorrow)
    assert len(smtp.to("ada@example.org")) == 1


def test_bad_source_configuration_is_refused_with_the_reason(cli_env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="an arxiv source needs categories"):
        Settings.model_validate({"sources": [{"kind": "arxiv"}]})
    with pytest.raises(ValueError, match="'cs LG' is not an arXiv category"):
        Settings.model_validate({"sources": [{"kind": "arxiv", "categories": ["cs LG"]}]})
    out = cli(cli_env, "ingest", "--source", "arxiv", code=2)
    assert "an arxiv source needs categories" in out
    assert "a feed source needs a url" in cli(cli_env, "ingest", "--source", "feed", code=2)


def test_a_failing_page_or_day_keeps_what_came_before(engine: Engine, site: Site) -> None:
    site.route(
        "/api/query",
        Reply(200, (FIXTURES / "arxiv-api-page1.xml").read_bytes()),
        Reply(503, b"", {"Retry-After": "1"}),
    )
    site.route(
        "/api/daily_papers",
        Reply(200, (FIXTURES / "hf-daily-2026-11-20.json").read_bytes()),
        Reply(500),
    )
    settings = source_settings(site).model_copy(
        update={"arxiv_api_url": site.base + "/api/query", "arxiv_page_size": 2}
    )
    timer = FakeTimer()
    with Http(settings, timer=timer, rng=random.Random(3)) as http:
        api = ingest_source(
            engine, settings, SourceConfig(kind="arxiv-api", categories=["cs.LG"]), T1, http=http
        )
        daily = ingest_source(engine, settings, SourceConfig(kind="hf", days=2), T1, http=http)
    assert api.report.new == 2
    assert api.error and "HTTP 503" in api.error and "start=2" in site.hits("/api/query")[-1].query
    assert [h.query for h in site.hits("/api/daily_papers")] == [
        "date=2026-11-19",
        "date=2026-11-20",
        "date=2026-11-20",
    ]
    assert daily.report.new == 1  # 2611.10001 came from the API already
    assert daily.error and "HTTP 500" in daily.error
    assert 3.0 in timer.sleeps  # the arXiv pace, on top of the retry delays
    assert set(paper_rows(engine)) == {
        "arxiv:2611.10001",
        "arxiv:cond-mat/0412498",
        "arxiv:2611.10009",
    }

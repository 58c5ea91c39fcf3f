"""The CLI, the sign-up page and the admin API accept and refuse the same subscribers, and
the sign-up preview matches the same papers as `digest search`."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from typer.testing import CliRunner

from digest.cli import app
from digest.config import Settings
from digest.models import INTERESTS, SUBSCRIBERS
from digest.sources.ingest import PaperIn, store
from tests.kit.web import ADMIN, Clock, client, form

runner = CliRunner()
AUTH = {"Authorization": f"Bearer {ADMIN}"}

# (what is wrong, CLI options, form fields, admin JSON fields, the message every door gives)
BAD = [
    ("no papers", ["--max-papers", "0"], {"max_papers": "0"}, {"max_papers": 0},
     "max papers must be between 1 and 100, not 0"),
    ("too many papers", ["--max-papers", "100000"], {"max_papers": "100000"},
     {"max_papers": 100000}, "max papers must be between 1 and 100, not 100000"),
    ("hour 24", ["--hour", "24"], {"send_hour": "24"}, {"send_hour": 24},
     "send hour must be between 0 and 23, not 24"),
    ("weekday 7", ["--weekday", "7"], {"weekday": "7"}, {"weekday": 7},
     "weekday must be between 0 and 6, not 7"),
    ("time zone", ["--timezone", "Mars/Olympus"], {"timezone": "Mars/Olympus"},
     {"timezone": "Mars/Olympus"}, "is not an IANA time zone name"),
]  # fmt: skip


def stored(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        subscribers = conn.execute(sa.select(sa.func.count()).select_from(SUBSCRIBERS)).scalar()
        lines = conn.execute(sa.select(sa.func.count()).select_from(INTERESTS)).scalar()
    return int(subscribers or 0), int(lines or 0)


@pytest.mark.parametrize(("case", "cli", "page", "api", "message"), BAD, ids=[b[0] for b in BAD])
def test_every_door_refuses_the_same_values_with_the_same_words(
    settings: Settings,
    engine: Engine,
    cli_env: dict[str, str],
    case: str,
    cli: list[str],
    page: dict[str, str],
    api: dict[str, object],
    message: str,
) -> None:
    by_cli = runner.invoke(
        app, ["subscribe", "c@example.org", "-i", "diffusion", *cli], env=cli_env
    )
    assert by_cli.exit_code == 2, by_cli.output
    assert message in by_cli.output
    with client(settings, engine, Clock()) as http:
        by_page = http.post("/subscribe", data=form("p@example.org", **page))
        body = {"email": "a@example.org", "interests": ["diffusion"], **api}
        by_api = http.post("/api/subscribers", json=body, headers=AUTH)
    assert by_page.status_code == 422
    assert message in html.unescape(by_page.text)
    assert by_api.status_code == 422
    assert any(message in problem["error"] for problem in by_api.json()["detail"])
    assert stored(engine) == (0, 0)


def test_every_door_names_a_bad_interest_line_and_stores_nothing(
    settings: Settings, engine: Engine, cli_env: dict[str, str]
) -> None:
    args = ["subscribe", "c@example.org", "-i", "diffusion", "-i", '"open']
    by_cli = runner.invoke(app, args, env=cli_env)
    assert by_cli.exit_code == 2
    assert "interest line 2 '\"open': unbalanced quote" in by_cli.output
    with client(settings, engine, Clock()) as http:
        by_page = http.post("/subscribe", data=form(interests='diffusion\n"open'))
        body = {"email": "a@example.org", "interests": ["diffusion", '"open']}
        by_api = http.post("/api/subscribers", json=body, headers=AUTH)
    assert by_page.status_code == 422 and "Line 2" in by_page.text
    assert "unbalanced quote" in by_page.text
    assert by_api.status_code == 422
    assert by_api.json()["detail"][0]["field"] == "interests[1]"
    assert stored(engine) == (0, 0)


def test_an_empty_interest_line_is_refused_where_lines_come_as_a_list(
    settings: Settings, engine: Engine, cli_env: dict[str, str]
) -> None:
    by_cli = runner.invoke(app, ["subscribe", "c@example.org", "-i", "a", "-i", " "], env=cli_env)
    assert (
        by_cli.exit_code == 2
        and "interest line 2: an interest line cannot be empty" in by_cli.output
    )
    with client(settings, engine, Clock()) as http:
        body = {"email": "a@example.org", "interests": ["diffusion", ""]}
        by_api = http.post("/api/subscribers", json=body, headers=AUTH)
        # A form's text has one line per interest: blank lines only separate them.
        by_page = http.post("/subscribe", data=form(interests="diffusion\n\nrobots\n"))
    assert by_api.status_code == 422 and by_api.json()["detail"][0]["field"] == "interests[1]"
    assert by_page.status_code == 200
    assert stored(engine) == (1, 2)


def test_every_door_takes_the_largest_cap(
    settings: Settings, engine: Engine, cli_env: dict[str, str]
) -> None:
    args = ["subscribe", "c@example.org", "-i", "diffusion", "--max-papers", "100"]
    assert runner.invoke(app, args, env=cli_env).exit_code == 0
    with client(settings, engine, Clock()) as http:
        assert http.post("/subscribe", data=form(max_papers="100")).status_code == 200
        body = {"email": "a@example.org", "interests": ["diffusion"], "max_papers": 100}
        assert http.post("/api/subscribers", json=body, headers=AUTH).status_code == 201
    with engine.connect() as conn:
        caps = conn.execute(sa.select(SUBSCRIBERS.c.max_papers)).scalars().all()
    assert caps == [100, 100, 100]


PAPERS = [
    PaperIn(
        id="2411.00001",
        title="Self-supervised speech models",
        authors=["Yann LeCun", "Ada Lovelace"],
        categories=["cs.CL", "cs.LG"],
    ),
    PaperIn(id="2411.00002", title="Energy-based robots", authors=["Yann LeCun"]),
    PaperIn(id="2411.00003", title="Parsing with grammars", categories=["cs.CL"]),
    PaperIn(id="2411.00004", title="Diffusion for images", categories=["cs.CV"]),
]


def previewed(http: httpx.Client, line: str) -> set[str]:
    """The titles the sign-up page's preview lists for one interest line."""
    fragment = http.post("/preview", data={"interests": line})
    assert fragment.status_code == 200
    return {
        html.unescape(t)
        for t in re.findall(r'rel="noopener noreferrer">([^<]+)</a>', fragment.text)
    }


def searched(env: dict[str, str], line: str) -> set[str]:
    """The titles `digest search` prints for one interest line."""
    result = runner.invoke(app, ["search", line, "--json"], env=env)
    assert result.exit_code == 0, result.output
    return {m for m in re.findall(r'"title": "([^"]+)"', result.output)}


@pytest.mark.parametrize(
    "line", ['author:"Yann LeCun"', "cat:cs.CL", 'author:"Ada Lovelace" cat:cs.LG']
)
def test_the_sign_up_preview_matches_what_digest_search_matches(
    settings: Settings, engine: Engine, cli_env: dict[str, str], line: str
) -> None:
    clock = Clock()
    store(engine, PAPERS, now=clock() - timedelta(hours=1))
    with client(settings, engine, clock) as http:
        shown = previewed(http, line)
    assert shown, f"the preview found nothing for {line}"
    assert shown == searched(cli_env, line)

"""The preview's cache under concurrent use: reloads that hold nobody up, lines combined
once per paper, one week's objects freed when the papers change, previews queued."""

from __future__ import annotations

import asyncio
import threading
import weakref
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import Engine, event

from digest.config import Settings
from digest.match.engine import InterestMatcher
from digest.match.query import parse
from digest.sources.ingest import store
from digest.web.app import create_app
from digest.web.preview import PaperCache, Week, preview
from tests.kit.seeds import PAPERS
from tests.kit.web import Clock


def _lines(*lines: str) -> list[tuple[str, str]]:
    return [(line, parse(line).canonical) for line in lines]


def test_a_paper_two_lines_match_counts_once_under_the_line_that_scores_it_best(
    engine: Engine,
) -> None:
    clock = Clock()
    store(engine, PAPERS, now=clock.now - timedelta(days=2))
    cache, matcher = PaperCache(engine), InterestMatcher()
    alone = {
        line: preview(cache, matcher, _lines(line), clock.now)
        for line in ("diffusion", "molecules", "title:diffusion")
    }
    both = preview(cache, matcher, _lines("diffusion", "molecules", "title:diffusion"), clock.now)
    titles = {line: {p.title for p in shown.papers} for line, shown in alone.items()}
    assert both.total == len(set().union(*titles.values()))
    assert both.per_interest == {line: shown.total for line, shown in alone.items()}
    assert sum(count for _, count in both.days) == both.total
    for paper in both.papers:
        assert paper.title in titles[paper.interest]
    # A paper two lines score alike is listed under the first of them.
    again = preview(cache, matcher, _lines("diffusion", "Diffusion"), clock.now)
    assert {paper.interest for paper in again.papers} == {"diffusion"}


def test_a_reload_holds_up_no_other_preview(engine: Engine) -> None:
    clock = Clock()
    store(engine, PAPERS[:1], now=clock.now - timedelta(hours=2))
    cache = PaperCache(engine)
    before, _ = cache.snapshot(clock.now)
    store(engine, PAPERS[1:2], now=clock.now - timedelta(hours=1))
    clock.advance(minutes=2)
    reading, release = threading.Event(), threading.Event()

    def hold(*args: Any) -> None:
        if threading.current_thread().name == "reloader":
            reading.set()
            release.wait(10)

    event.listen(engine, "before_cursor_execute", hold)
    try:
        found: dict[str, Week] = {}
        reloader = threading.Thread(
            target=lambda: found.update(reloaded=cache.snapshot(clock.now)[0]), name="reloader"
        )
        reloader.start()
        assert reading.wait(10)
        other = threading.Thread(target=lambda: found.update(other=cache.snapshot(clock.now)[0]))
        other.start()
        other.join(10)  # does not wait for the reload
        assert not other.is_alive() and found["other"] is before
        release.set()
        reloader.join(10)
    finally:
        release.set()
        event.remove(engine, "before_cursor_execute", hold)
    assert len(found["reloaded"].docs) == 2
    assert cache.snapshot(clock.now)[0] is found["reloaded"]


def test_a_weeks_objects_are_freed_when_the_papers_change(engine: Engine) -> None:
    clock = Clock()
    store(engine, PAPERS[:2], now=clock.now - timedelta(hours=2))
    cache, matcher = PaperCache(engine), InterestMatcher()
    preview(cache, matcher, _lines("diffusion"), clock.now)
    old = weakref.ref(cache.snapshot(clock.now)[0])
    store(engine, PAPERS[2:], now=clock.now - timedelta(hours=1))
    clock.advance(minutes=2)
    preview(cache, matcher, _lines("diffusion"), clock.now)
    assert len(cache.snapshot(clock.now)[0].docs) == len(PAPERS)
    assert old() is None  # freed at once: nothing in it refers back to it


def test_previews_at_once_are_all_answered(settings: Settings, engine: Engine) -> None:
    clock = Clock()
    store(engine, PAPERS, now=clock.now - timedelta(hours=1))
    app = create_app(settings, engine, clock=clock)

    async def many() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://digest.test") as http:
            lines = ["diffusion", "molecules", "audio", "diffusion\nlatent", '"oops']
            return await asyncio.gather(
                *(http.post("/preview", data={"interests": lines[n % 5]}) for n in range(20))
            )

    answers = asyncio.run(many())
    assert [a.status_code for a in answers] == [200] * 20
    assert all(a.headers["strict-transport-security"] == "max-age=31536000" for a in answers)
    assert "unbalanced quote" in answers[4].text and "<strong>2</strong>" in answers[3].text
    assert app.state.web.requests[("POST", "/preview", 200)] == 20

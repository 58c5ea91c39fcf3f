"""The shared HTTP policy against a real loopback server: retries, backoff, pacing, 304."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest

from digest.config import Settings
from digest.mail.capture import free_port
from digest.sources.arxiv import api_pages
from digest.sources.http import FetchError, Http, Validators, retry_after
from tests.kit.sources import FIXTURES, FakeTimer, Reply, Site, serve


@pytest.fixture
def site() -> Iterator[Site]:
    """A loopback HTTP server."""
    with serve() as site:
        yield site


def make_http(timer: FakeTimer, **overrides: object) -> Http:
    values: dict[str, object] = {"http_timeout": 2.0, "http_retries": 3, "http_backoff": 1.0}
    values.update(overrides)
    return Http(Settings.model_validate(values), timer=timer, rng=random.Random(7))


def test_429_with_retry_after_is_honoured(site: Site) -> None:
    url = site.route(
        "/busy", Reply(429, b"slow down", {"Retry-After": "17"}), Reply(200, b"finally")
    )
    timer = FakeTimer()
    with make_http(timer) as http:
        assert http.get(url).content == b"finally"
    assert timer.sleeps == [17.0]
    assert len(site.hits("/busy")) == 2


def test_retry_after_longer_than_the_policy_allows_gives_up(site: Site) -> None:
    url = site.route("/busy", Reply(429, b"", {"Retry-After": "3600"}), Reply(200, b"late"))
    timer = FakeTimer()
    with make_http(timer, http_backoff_max=60.0) as http, pytest.raises(FetchError) as failed:
        http.get(url)
    assert "server asks to wait 3600s" in str(failed.value)
    assert timer.sleeps == []


def test_503_then_success_backs_off_exponentially_with_jitter(site: Site) -> None:
    url = site.route("/flaky", Reply(503), Reply(502), Reply(500), Reply(200, b"ok"))
    timer = FakeTimer()
    with make_http(timer, http_backoff=2.0) as http:
        assert http.get(url).content == b"ok"
    assert len(timer.sleeps) == 3
    for attempt, slept in enumerate(timer.sleeps):
        assert 2.0 * 2**attempt * 0.5 <= slept <= 2.0 * 2**attempt
    assert len(set(timer.sleeps)) == 3


def test_persistent_5xx_fails_with_the_url_and_status(site: Site) -> None:
    url = site.route("/down", Reply(503))
    with make_http(FakeTimer(), http_retries=2) as http, pytest.raises(FetchError) as failed:
        http.get(url)
    assert f"{url}: HTTP 503 Service Unavailable (gave up after 3 attempts)" == str(failed.value)


def test_404_is_not_retried(site: Site) -> None:
    url = site.route("/missing", Reply(404))
    timer = FakeTimer()
    with make_http(timer) as http, pytest.raises(FetchError, match="HTTP 404"):
        http.get(url)
    assert timer.sleeps == []
    assert len(site.hits("/missing")) == 1


def test_a_stalled_response_times_out_and_is_retried(site: Site) -> None:
    url = site.route("/stall", Reply(stall=True), Reply(200, b"second try"))
    timer = FakeTimer()
    with make_http(timer, http_timeout=0.2) as http:
        assert http.get(url).content == b"second try"
    assert len(timer.sleeps) == 1


def test_a_stall_on_every_attempt_is_reported_as_a_timeout(site: Site) -> None:
    url = site.route("/stall", Reply(stall=True))
    with (
        make_http(FakeTimer(), http_timeout=0.1, http_retries=1) as http,
        pytest.raises(FetchError, match=r"ReadTimeout.*gave up after 2 attempts"),
    ):
        http.get(url)


def test_connection_refused_is_retried_then_reported() -> None:
    timer = FakeTimer()
    with make_http(timer, http_retries=2) as http, pytest.raises(FetchError, match="ConnectError"):
        http.get(f"http://127.0.0.1:{free_port()}/feed")
    assert len(timer.sleeps) == 2


def test_conditional_get_sends_validators_and_reports_304(site: Site) -> None:
    url = site.route("/feed", Reply(200, b"<rss/>", {"ETag": '"v1"', "Last-Modified": "x"}))
    with make_http(FakeTimer()) as http:
        first = http.get(url)
        assert first.validators == Validators('"v1"', "x")
        second = http.get(url, validators=first.validators)
    assert second.not_modified and second.content == b""
    assert site.hits("/feed")[1].headers["If-None-Match"] == '"v1"'
    assert site.hits("/feed")[1].headers["If-Modified-Since"] == "x"


def test_retry_after_as_an_http_date() -> None:
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    assert retry_after("Fri, 20 Nov 2026 12:00:30 GMT", now) == 30.0
    assert retry_after("120", now) == 120.0
    assert retry_after("soon", now) is None


def test_arxiv_api_pages_politely_with_a_descriptive_user_agent(site: Site) -> None:
    url = site.route(
        "/api/query",
        Reply(200, (FIXTURES / "arxiv-api-page1.xml").read_bytes()),
        Reply(200, (FIXTURES / "arxiv-api-page2.xml").read_bytes()),
    )
    settings = Settings(
        arxiv_api_url=url, arxiv_page_size=2, arxiv_delay=3.0, user_agent="digest-test (ops@x.org)"
    )
    timer = FakeTimer()
    with Http(settings, timer=timer) as http:
        pages = list(api_pages(http, settings, ["cs.LG"], date(2026, 11, 19), date(2026, 11, 20)))
    assert [p.identity()[0] for page in pages for p in page.papers] == [
        "arxiv:2611.10001",
        "arxiv:cond-mat/0412498",
        "arxiv:2611.10005",
    ]
    assert timer.sleeps == [3.0]
    hits = site.hits("/api/query")
    assert [h.headers["User-Agent"] for h in hits] == ["digest-test (ops@x.org)"] * 2
    assert "start=0" in hits[0].query and "start=2" in hits[1].query
    assert "max_results=2" in hits[0].query
    assert "submittedDate%3A%5B202611190000+TO+202611202359%5D" in hits[0].query

"""HTTP-level tests of what a subscriber reaches from an email: preferences, digests, feed,
and the sign-up preview."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree as ET

import sqlalchemy as sa
from sqlalchemy import Engine

from digest import subscribers
from digest.config import Settings
from digest.models import INTERESTS, SubscriberStatus
from digest.sources.ingest import PaperIn, store
from digest.sources.runner import SourceReport, record
from digest.subscribers import subscribe as add_subscriber
from digest.tokens import FEED, PREFERENCES, make_token
from tests.kit.env import SECRET
from tests.kit.seeds import PAPERS, send_digest, topical_papers
from tests.kit.smtp import SmtpSink
from tests.kit.web import Clock, client, form, link_in, subscriber

ATOM = "{http://www.w3.org/2005/Atom}"


def test_preferences_edit_pause_and_resume(settings: Settings, engine: Engine) -> None:
    row, _ = add_subscriber(engine, "ada@example.org", ["diffusion", "robots"])
    assert row.id is not None
    link = f"/preferences/{make_token(SECRET, PREFERENCES, row.id, 1)}"
    with client(settings, engine, Clock()) as http:
        page = http.get(link)
        assert page.status_code == 200 and "diffusion\nrobots</textarea>" in page.text
        assert "None sent yet" in page.text and "/feed/" in page.text
        changed = form(interests='"graph networks"\ntraffic', timezone="Asia/Tokyo", paused="1")
        saved = http.post(link, data={**changed, "max_papers": "5"})
        assert saved.status_code == 200 and "Saved." in saved.text
        after = subscriber(engine, "ada@example.org")
        assert (after.timezone, after.send_hour, after.max_papers) == ("Asia/Tokyo", 8, 5)
        assert after.status == SubscriberStatus.paused
        bad = http.post(link, data=form(interests='ok\n"broken', timezone="UTC", send_hour="9"))
        assert bad.status_code == 422 and "Line 2" in bad.text
        assert "Nothing was saved" in bad.text and "ok\n&#34;broken</textarea>" in bad.text
        assert "<option selected>UTC</option>" in bad.text  # every other change is kept
        assert subscriber(engine, "ada@example.org").timezone == "Asia/Tokyo"
        http.post(link, data=form(interests="traffic"))
        assert subscriber(engine, "ada@example.org").status == SubscriberStatus.active
    with engine.connect() as conn:
        lines = conn.execute(sa.select(INTERESTS.c.query).order_by(INTERESTS.c.position))
        assert list(lines.scalars()) == ["traffic"]


def test_digest_links_lead_to_preferences_full_list_feed_and_unsubscribe(
    settings: Settings, engine: Engine, smtp: SmtpSink
) -> None:
    clock = Clock()
    store(engine, PAPERS, now=clock.now - timedelta(hours=2))
    add_subscriber(engine, "ada@example.org", ["diffusion"], now=clock.now - timedelta(days=1))
    add_subscriber(engine, "bob@example.org", ["traffic"], now=clock.now - timedelta(days=1))
    send_digest(engine, settings, clock.now)
    [digest] = smtp.to("ada@example.org")
    with client(settings, engine, clock) as http:
        prefs = http.get(link_in(digest, "preferences"))
        assert prefs.status_code == 200
        found = re.search(r'href="(/digests/[^"]+)"', prefs.text)
        assert found is not None
        full = http.get(found[1])
        assert full.status_code == 200
        listed = re.sub(r"<[^>]+>", "", full.text)  # matched words are highlighted
        assert "Denoising Diffusion for Molecules" in listed
        assert "Latent Diffusion for Audio" in listed and "Traffic" not in listed
        other_id = int(found[1].rsplit("/", 1)[1]) + 1
        other = http.get(found[1].rsplit("/", 1)[0] + f"/{other_id}")
        assert other.status_code == 404 and "Traffic" not in other.text

        feed_url = re.search(r"https://digest\.test(/feed/[^<\s]+)", prefs.text)
        assert feed_url is not None
        feed = http.get(feed_url[1])
        assert feed.headers["content-type"].startswith("application/atom+xml")
        root = ET.fromstring(feed.content)
        titles = {e.findtext(f"{ATOM}title") for e in root.iter(f"{ATOM}entry")}
        assert titles == {"Denoising Diffusion for Molecules", "Latent Diffusion for Audio"}

        unsubscribe = digest["List-Unsubscribe"].split("<", 1)[1].split(">", 1)[0]
        assert unsubscribe.startswith("https://digest.test/unsubscribe/")
        done = http.post(unsubscribe.removeprefix("https://digest.test"))
        assert done.status_code == 200
        assert http.get(feed_url[1]).status_code == 410  # Unsubscribing revokes every link.
    assert subscriber(engine, "ada@example.org").status == SubscriberStatus.unsubscribed


def test_preview_counts_last_week_matches_per_day(settings: Settings, engine: Engine) -> None:
    clock = Clock()
    store(engine, PAPERS[:1], now=clock.now - timedelta(days=1))
    store(engine, PAPERS[1:2], now=clock.now - timedelta(days=3))
    store(engine, PAPERS[2:], now=clock.now - timedelta(days=10))
    with client(settings, engine, clock) as http:
        fragment = http.post("/preview", data={"interests": 'diffusion\ntraffic\n"oops'})
        assert fragment.status_code == 200
        assert "<strong>2</strong> papers" in fragment.text
        assert "Line 3" in fragment.text and "unbalanced quote" in fragment.text
        assert "<code>traffic</code>: 0" in fragment.text  # Ten days old: outside the week.
        counts = re.findall(r"<br>(\d+)</span>", fragment.text)
        assert len(counts) == 7 and sorted(counts) == ["0"] * 5 + ["1", "1"]
        page = http.post("/subscribe", data=form(interests="molecules", action="preview"))
        assert page.status_code == 200 and "Denoising Diffusion for Molecules" in page.text
        assert "Latent Diffusion" not in page.text
        assert "molecules</textarea>" in page.text
    assert subscriber(engine, "ada@example.org") is None  # A preview subscribes nobody.


def test_a_preview_matches_no_more_lines_than_a_subscription_may_have(
    settings: Settings, engine: Engine
) -> None:
    clock = Clock()
    store(engine, PAPERS, now=clock.now - timedelta(days=1))
    lines = [f"word{n}" for n in range(500)]
    with client(settings, engine, clock) as http:
        fragment = http.post("/preview", data={"interests": "\n".join(lines)})
    assert fragment.status_code == 200
    assert (
        "Line 21" in fragment.text
        and "at most 20 interests: this line and those after it are not previewed" in fragment.text
    )
    assert "<code>word19</code>: 0" in fragment.text
    assert "<code>word20</code>: 0" not in fragment.text and "word21" not in fragment.text
    with client(settings, engine, clock) as http:  # the page's own button, without script
        page = http.post("/subscribe", data=form(interests="\n".join(lines), action="preview"))
    assert page.status_code == 200 and "not previewed" in page.text
    assert "<code>word19</code>: 0" in page.text and "<code>word20</code>: 0" not in page.text


def test_related_terms_are_offered_and_added_only_when_pressed(
    settings: Settings, engine: Engine
) -> None:
    clock = Clock()
    store(engine, topical_papers(), now=clock.now - timedelta(hours=1))
    with client(settings, engine, clock) as http:
        fragment = http.post("/preview", data={"interests": "state space models"}).text
        assert "also finds SSM" in fragment  # the acronym: the same papers, no button
        assert 'name="add" value="mamba"' in fragment and 'form="subscribe"' in fragment
        assert 'value="graph"' not in fragment  # common in the batch, not in the matches
        # Without the script, the button submits the form: the line is added, not saved.
        page = http.post("/subscribe", data=form(interests="state space models", add="mamba"))
        assert page.status_code == 200 and "state space models\nmamba</textarea>" in page.text
        assert subscriber(engine, "ada@example.org") is None
        again = http.post(
            "/subscribe", data=form(interests="state space models\nmamba", add="Mamba")
        )
        assert "state space models\nmamba</textarea>" in again.text  # once only

        row, _ = add_subscriber(engine, "bob@example.org", ["state space models"])
        prefs = f"/preferences/{make_token(SECRET, PREFERENCES, row.id, 1)}"
        shown = http.post(prefs, data=form(interests="state space models", add="mamba"))
        assert "Nothing is saved until you press Save" in shown.text
        assert "state space models\nmamba</textarea>" in shown.text
        assert 'form="preferences"' in shown.text
    with engine.connect() as conn:
        assert subscribers.interests_of(conn, row.id) == ["state space models"]


def test_health_metrics_and_script(settings: Settings, engine: Engine) -> None:
    add_subscriber(engine, "ada@example.org", ["diffusion"])
    with client(settings, engine, Clock()) as http:
        health = http.get("/healthz")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        http.get("/")
        metrics = http.get("/metrics")
        script = http.get("/static/web.js")
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert 'digest_subscribers{status="active"} 1' in metrics.text
    assert "digest_papers 0" in metrics.text
    assert 'digest_http_requests_total{method="GET",route="/",status="200"} 1' in metrics.text
    for line in metrics.text.splitlines():
        assert line.startswith("#") or re.fullmatch(r"[a-z_]+(\{[^}]*\})? [0-9.e+-]+", line)
    assert "Intl.DateTimeFormat" in script.text


def test_health_reports_a_database_that_is_gone(settings: Settings, engine: Engine) -> None:
    broken = sa.create_engine("sqlite:////nonexistent/dir/db.sqlite")
    try:
        with client(settings, broken, Clock()) as http:
            health = http.get("/healthz")
    finally:
        broken.dispose()
    assert health.status_code == 503 and health.json()["status"] == "error"


def test_preview_sees_new_papers_once_its_cache_expires(settings: Settings, engine: Engine) -> None:
    clock = Clock()
    store(engine, PAPERS[:1], now=clock.now - timedelta(hours=1))
    with client(settings, engine, clock) as http:

        def total() -> str:
            found = re.search(
                r"<strong>(\d+)</strong>",
                http.post("/preview", data={"interests": "diffusion"}).text,
            )
            assert found is not None
            return found[1]

        assert total() == "1"
        store(engine, PAPERS[1:2], now=clock.now)
        assert total() == "1"  # Within the minute the cached week is used.
        clock.advance(seconds=61)
        assert total() == "2"


def test_metrics_print_times_in_full(settings: Settings, engine: Engine) -> None:
    report = SourceReport(
        source="hf",
        kind="hf",
        started_at=datetime(2026, 12, 1, 20, 30, 1, 250000, tzinfo=UTC),
        finished_at=datetime(2026, 12, 1, 20, 30, 7, 500000, tzinfo=UTC),
    )
    record(engine, report)
    with client(settings, engine, Clock()) as http:
        text = http.get("/metrics").text
    assert 'digest_source_last_ingest_timestamp_seconds{source="hf"} 1796157007.5' in text


def test_the_feed_address_stays_the_same_until_replaced_and_every_entry_links(
    settings: Settings, engine: Engine, smtp: SmtpSink
) -> None:
    clock = Clock()
    hf = PaperIn(id="2401.00009v1", title="Diffusion from HF", abstract="", upvotes=3)
    store(engine, [*PAPERS, hf], now=clock.now - timedelta(hours=2))
    row, _ = add_subscriber(
        engine, "ada@example.org", ["diffusion"], now=clock.now - timedelta(days=1)
    )
    send_digest(engine, settings, clock.now)
    prefs = link_in(smtp.to("ada@example.org")[0], "preferences")
    legacy = f"/feed/{make_token(SECRET, FEED, row.id, 1, now=clock.now - timedelta(days=400))}"
    with client(settings, engine, clock) as http:
        shown = [
            re.findall(r"https://digest\.test(/feed/[^<\s]+)", http.get(prefs).text) for _ in "ab"
        ]
        assert shown[0] == shown[1] and len(shown[0]) == 1  # the same address on every visit
        [feed_url] = shown[0]
        root = ET.fromstring(http.get(feed_url).content)
        entries = list(root.iter(f"{ATOM}entry"))
        assert len(entries) == 3
        for entry in entries:  # RFC 4287 4.1.2: a link, and some content or a summary
            link = entry.find(f"{ATOM}link[@rel='alternate']")
            assert link is not None and link.get("href", "").startswith("https://arxiv.org/abs/")
            assert entry.findtext(f"{ATOM}summary")
        assert http.get(legacy).status_code == 200  # a feed URL from before still works

        renewed = http.post(prefs + "/feed")
        assert renewed.status_code == 200 and "the old one no longer works" in renewed.text
        [new_url] = re.findall(r"https://digest\.test(/feed/[^<\s]+)", renewed.text)
        assert new_url != feed_url
        assert http.get(feed_url).status_code == 410
        assert http.get(legacy).status_code == 410
        assert http.get(new_url).status_code == 200
        assert http.get(prefs).status_code == 200  # the other links are untouched


def test_a_new_address_takes_effect_only_once_confirmed_from_that_mailbox(
    settings: Settings, engine: Engine, smtp: SmtpSink
) -> None:
    row, _ = add_subscriber(engine, "ada@example.org", ["diffusion"])
    add_subscriber(engine, "bob@example.org", ["robots"])
    prefs = f"/preferences/{make_token(SECRET, PREFERENCES, row.id, 1)}"
    with client(settings, engine, Clock()) as http:
        same = http.post(prefs + "/address", data={"new_email": "ADA@example.org"})
        assert same.status_code == 422 and "ada@example.org is already your address" in same.text
        bad = http.post(prefs + "/address", data={"new_email": "not an address"})
        assert bad.status_code == 422 and "email &#39;not an address&#39;: " in bad.text
        assert 'value="not an address"' in bad.text  # what was typed stays

        asked = http.post(prefs + "/address", data={"new_email": "Ada@New.example"})
        assert asked.status_code == 200 and "We sent a link to ada@new.example" in asked.text
        assert subscriber(engine, "ada@example.org") is not None  # nothing changed yet
        [check] = smtp.to("ada@new.example")
        assert check["Subject"] == "Confirm your new address for Paper Digest"
        link = link_in(check, "address")
        page = http.get(link)
        assert page.status_code == 200 and "Use this address" in page.text
        assert subscriber(engine, "ada@example.org") is not None  # a GET changes nothing
        done = http.post(link)
        assert done.status_code == 200 and "come to ada@new.example from now on" in done.text
        assert subscriber(engine, "ada@new.example").id == row.id
        assert http.get(prefs).status_code == 200  # earlier links keep working
        assert http.post(link).status_code == 410  # a change link is good once

        http.post(prefs + "/address", data={"new_email": "bob@example.org"})
        taken = http.post(link_in(smtp.to("bob@example.org")[-1], "address"))
        assert taken.status_code == 409 and "has a subscription of its own" in taken.text
        assert subscriber(engine, "ada@new.example").id == row.id

        http.post(prefs + "/address", data={"new_email": "ada@third.example"})
        late = link_in(smtp.to("ada@third.example")[0], "address")
        refused = http.post(prefs + "/address", data={"new_email": "ada@fourth.example"})
        assert refused.status_code == 429  # three changes an hour, each an email to someone
        subscribers.unsubscribe(engine, row.id, Clock().now)  # revokes every link
        assert http.post(late).status_code == 410
    assert subscriber(engine, "ada@third.example") is None

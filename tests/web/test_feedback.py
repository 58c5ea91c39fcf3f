"""One click in the email: "More like this" and "Not for me", recorded only by a button
press, undone, forgotten, and felt in the next real digest (through the test SMTP server)."""

from __future__ import annotations

import re
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from digest import subscribers
from digest.config import Settings
from digest.models import FEEDBACK
from digest.sources.ingest import PaperIn, store
from digest.subscribers import subscribe
from digest.tokens import PREFERENCES, make_paper_tokens, make_token
from tests.kit.env import SECRET
from tests.kit.seeds import T0, send_digest
from tests.kit.smtp import SmtpSink
from tests.kit.web import ADMIN, Clock, client

ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN}"}

ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN}"}

DAY_ONE = [
    PaperIn(
        id="2412.10001v1",
        title="Routing tokens to experts in sparse mixture models",
        abstract="Sparse experts, a learned router and load balancing for mixture models.",
    ),
    PaperIn(
        id="2412.10002v1",
        title="Message passing on graph models",
        abstract="Graph models pass messages between nodes.",
        authors=["Bob Graph", "Carol Node"],
    ),
    PaperIn(
        id="2412.10003v1",
        title="Weather models",
        abstract="Models of rain, with models of wind.",
    ),
]
DAY_TWO = [
    PaperIn(
        id="2412.20001v1",
        title="Load balancing a router of sparse experts",
        abstract="A router sends tokens to sparse experts in mixture models.",
    ),
    PaperIn(id="2412.20002v1", title="Soil and crop data", abstract="Crop models."),
    PaperIn(
        id="2412.20003v1",
        title="Graph models for molecules",
        abstract="Molecules as graph models.",
        authors=["Bob Graph"],
    ),
]


def feedback_link(message: EmailMessage, title: str, kind: str) -> str:
    """The path of a paper's "More like this" (more) or "Not for me" (less) link."""
    text = " ".join(message.get_body(("plain",)).get_content().split())  # type: ignore[union-attr]
    after = text[text.index(title) :]
    found = re.search(rf"https://digest\.test(/feedback/\S+/{kind})\b", after)
    assert found is not None, f"no {kind} link after {title!r}"
    return found.group(1)


def titles_in(message: EmailMessage) -> list[str]:
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    return [re.sub(r"<[^>]+>", "", t) for t in re.findall(r'<a class="t"[^>]*>(.*?)</a>', html)]


def test_clicks_are_recorded_only_by_a_button_and_count_once(
    settings: Settings, engine: Engine, smtp: SmtpSink
) -> None:
    store(engine, DAY_ONE, now=T0 - timedelta(hours=1))
    row, _ = subscribe(engine, "ada@example.org", ["models"], now=T0 - timedelta(days=1))
    send_digest(engine, settings, T0)
    (digest,) = smtp.to("ada@example.org")
    more = feedback_link(digest, "Routing tokens to experts", "more")
    with client(settings, engine, Clock()) as http:
        page = http.get(more)
        assert page.status_code == 200 and "Yes, more like this" in page.text
        assert _clicks(engine) == []  # a mail scanner opening the link records nothing
        done = http.post(more)
        assert done.status_code == 200 and "will rank higher" in done.text
        http.post(more)  # twice: counts once
        assert _clicks(engine) == [("more", "", "")]
        undo = re.search(r'action="(/feedback/[^"]+/undo)"', done.text)
        assert undo is not None
        assert "Undone" in http.post(undo[1]).text
        assert _clicks(engine) == []

        less = feedback_link(digest, "Message passing on graph models", "less")
        asked = http.get(less).text
        assert "Not my topic" in asked and 'value="Bob Graph"' in asked and "surveys" in asked
        muted = http.post(less, data={"author": "Bob Graph"})
        assert "Papers by Bob Graph will not reach you" in muted.text
        assert http.post(less, data={"author": "Nobody"}).status_code == 400
        assert _clicks(engine) == [("less", "author", "Bob Graph")]

        tampered = more.replace("/more", "").rsplit(".", 1)[0] + ".AAAA/more"
        assert http.get(tampered).status_code == 400
        wrong_purpose = f"/feedback/{make_token(SECRET, PREFERENCES, row.id, 1)}/more"
        assert http.get(wrong_purpose).status_code == 400
        subscribers.unsubscribe(engine, row.id, now=T0)  # revokes every link of the address
        assert http.get(more).status_code == 410 and http.post(more).status_code == 410


def test_the_next_digest_follows_the_clicks(
    settings: Settings, engine: Engine, smtp: SmtpSink
) -> None:
    store(engine, DAY_ONE, now=T0 - timedelta(hours=1))
    subscribe(engine, "ada@example.org", ["models"], now=T0 - timedelta(days=1))
    subscribe(engine, "bob@example.org", ["models"], now=T0 - timedelta(days=1))
    send_digest(engine, settings, T0)
    (digest,) = smtp.to("ada@example.org")
    with client(settings, engine, Clock()) as http:
        assert http.post(feedback_link(digest, "Routing tokens to experts", "more")).is_success
        less = feedback_link(digest, "Message passing on graph models", "less")
        assert http.post(less, data={"author": "Bob Graph"}).is_success
    store(engine, DAY_TWO, now=T0 + timedelta(hours=23))
    send_digest(engine, settings, T0 + timedelta(days=1))
    ada, bob = smtp.to("ada@example.org")[-1], smtp.to("bob@example.org")[-1]
    # Without feedback the soil paper ranks above the one on experts (a short abstract that
    # says "models"); with it, the liked paper's near duplicate ranks above it, and the
    # muted author's paper is gone.
    soil, experts = "Soil and crop data", "Load balancing a router of sparse experts"
    assert titles_in(bob).index(soil) < titles_in(bob).index(experts)
    assert "Graph models for molecules" in titles_in(bob)
    assert titles_in(ada).index(experts) < titles_in(ada).index(soil)
    assert "Graph models for molecules" not in titles_in(ada)
    text = " ".join(ada.get_body(("plain",)).get_content().split())  # type: ignore[union-attr]
    assert "ranked up: like “Routing tokens to experts in sparse mixture models”" in text


def test_the_settings_page_lists_and_forgets_what_was_learned(
    settings: Settings, engine: Engine
) -> None:
    _, ids, links, prefs = _reader(engine)
    with client(settings, engine, Clock()) as http:
        liked = ids["Routing tokens to experts in sparse mixture models"]
        http.post(f"/feedback/{links[liked]}/more")
        http.post(f"/feedback/{links[ids['Weather models']]}/less")
        http.post(
            f"/feedback/{links[ids['Message passing on graph models']]}/less",
            data={"paper_kind": "survey"},
        )
        page = http.get(prefs).text
        assert "More like “Routing tokens to experts" in page
        assert "Not for me: “Weather models”" in page
        assert "Muted kind of paper “survey”" in page
        metrics = http.get("/metrics").text
        assert 'digest_feedback_clicks{kind="more"} 1' in metrics
        assert 'digest_feedback_clicks{kind="less"} 2' in metrics
        stats = http.get("/api/stats", params={"days": 1}, headers=ADMIN_HEADERS).json()
        assert stats[-1]["more_like_this"] == 1 and stats[-1]["not_for_me"] == 2
        http.post(f"{prefs}/feedback", data={"paper": str(liked)})
        assert len(_clicks(engine)) == 2
        assert "Forgotten." in http.post(f"{prefs}/feedback", data={"all": "1"}).text
    assert _clicks(engine) == []


def _reader(engine: Engine) -> tuple[Any, dict[str, int], dict[int, str], str]:
    """Day one's papers stored, and ada: her row, the papers by title, her feedback link
    tokens by paper and her settings page."""
    store(engine, DAY_ONE, now=T0 - timedelta(hours=1))
    row, _ = subscribe(engine, "ada@example.org", ["models"])
    with engine.connect() as conn:
        ids = {str(t): int(i) for t, i in conn.execute(sa.text("SELECT title, id FROM paper"))}
    links = make_paper_tokens(SECRET, row.id, 1, ids.values())
    return row, ids, links, f"/preferences/{make_token(SECRET, PREFERENCES, row.id, 1)}"


def _clicks(engine: Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(FEEDBACK.c.kind, FEEDBACK.c.reason, FEEDBACK.c.detail))
        return sorted((str(k), r, d) for k, r, d in rows)


def test_three_likes_propose_an_interest_line_added_with_one_click(
    settings: Settings, engine: Engine
) -> None:
    row, by_title, links, prefs = _reader(engine)
    ids = sorted(by_title.values())
    with client(settings, engine, Clock()) as http:
        for paper in ids[:2]:
            http.post(f"/feedback/{links[paper]}/more")
        assert "Add this interest line" not in http.get(prefs).text  # two likes: too few
        http.post(f"/feedback/{links[ids[2]]}/more")
        page = http.get(prefs).text
        proposed = re.search(r'name="accept" value="([^"]+)"', page)
        assert proposed is not None and proposed[1].startswith("like:")
        with engine.connect() as conn:  # nothing is added until the button is pressed
            assert subscribers.interests_of(conn, row.id) == ["models"]
        saved = http.post(f"{prefs}/feedback", data={"accept": proposed[1]})
        assert "Saved" in saved.text and "Add this interest line" not in saved.text
    with engine.connect() as conn:
        lines = subscribers.interests_of(conn, row.id)
    assert lines[0] == "models" and lines[1].endswith("# More like what I liked")

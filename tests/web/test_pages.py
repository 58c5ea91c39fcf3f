"""HTTP-level tests of the public pages: sign-up, confirmation, links, rate limits."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from digest import subscribers
from digest.config import Settings
from digest.models import SubscriberStatus
from digest.subscribers import subscribe as add_subscriber
from digest.tokens import (
    CONFIRM,
    DIGESTS,
    FEED,
    PREFERENCES,
    RESUBSCRIBE,
    UNSUBSCRIBE,
    TokenError,
    TokenExpired,
    make_token,
    read_token,
)
from digest.web.app import serve_web
from tests.kit.env import SECRET
from tests.kit.smtp import SmtpSink
from tests.kit.web import ADMIN, Clock, client, form, link_in, subscriber, web_settings


def test_sign_up_page_has_every_field_and_a_hidden_honeypot(
    settings: Settings, engine: Engine
) -> None:
    with client(settings, engine, Clock()) as http:
        page = http.get("/")
        assert http.get("/subscribe").text == page.text
    assert page.status_code == 200
    for name in ("email", "interests", "timezone", "send_hour", "cadence", "max_papers"):
        assert f'name="{name}"' in page.text
    assert 'class="hp"' in page.text and 'name="website"' in page.text
    assert "<option selected>UTC</option>" in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    # The limits are said before anyone runs into them.
    assert "Up to 20 lines of up to 300 characters." in page.text
    assert 'data-max-lines="20"' in page.text and 'data-max-line="300"' in page.text


def test_double_opt_in_keeps_the_address_pending_until_the_button_is_pressed(
    settings: Settings, engine: Engine, smtp: SmtpSink
) -> None:
    clock = Clock()
    with client(settings, engine, clock) as http:
        sent = http.post("/subscribe", data=form(interests='diffusion\n"mixture of experts"'))
        assert sent.status_code == 200 and "Check your inbox" in sent.text
        row = subscriber(engine, "ada@example.org")
        assert row.status == SubscriberStatus.pending
        assert (row.timezone, row.send_hour) == ("Europe/Paris", 8)
        [message] = smtp.to("ada@example.org")
        assert "Confirm" in message["Subject"]
        link = link_in(message, "confirm")
        shown = http.get(link)
        assert shown.status_code == 200 and "Yes, subscribe me" in shown.text
        assert subscriber(engine, "ada@example.org").status == SubscriberStatus.pending
        done = http.post(link)
        assert done.status_code == 200 and "You are subscribed" in done.text
        row = subscriber(engine, "ada@example.org")
        assert row.status == SubscriberStatus.active and row.confirmed_at == clock.now
        assert http.get(re.search(r'href="(/preferences/[^"]+)"', done.text)[1]).status_code == 200  # type: ignore[index]
        again = http.post(link)
        assert again.status_code == 200 and "You are subscribed" in again.text


def test_the_answer_is_the_same_for_a_known_address(
    settings: Settings, engine: Engine, smtp: SmtpSink
) -> None:
    add_subscriber(engine, "known@example.org", ["graph neural networks"])
    with client(settings, engine, Clock()) as http:
        new = http.post("/subscribe", data=form(email="new@example.org"))
        known = http.post("/subscribe", data=form(email="known@example.org"))
    assert new.status_code == known.status_code == 200
    assert new.text.replace("new@", "known@") == known.text
    [manage] = smtp.to("known@example.org")
    assert "/preferences/" in link_in(manage, "preferences")
    row = subscriber(engine, "known@example.org")
    assert row.status == SubscriberStatus.active and row.timezone == "UTC"


def test_invalid_interest_lines_are_shown_with_their_line_number_and_nothing_is_stored(
    settings: Settings, engine: Engine, smtp: SmtpSink
) -> None:
    with client(settings, engine, Clock()) as http:
        page = http.post(
            "/subscribe", data=form(interests='diffusion\n\n"unbalanced phrase\nrobots')
        )
    assert page.status_code == 422
    assert "Line 3" in page.text and "unbalanced quote" in page.text
    assert "&#34;unbalanced phrase" in page.text or "&quot;unbalanced phrase" in page.text
    assert "robots" in page.text  # The form keeps what was typed.
    assert subscriber(engine, "ada@example.org") is None and not smtp.received


def test_other_bad_fields_each_get_a_message(settings: Settings, engine: Engine) -> None:
    with client(settings, engine, Clock()) as http:
        page = http.post(
            "/subscribe",
            data=form(email="not-an-address", interests="", timezone="Mars/Base", send_hour="25"),
        )
    assert page.status_code == 422
    for expected in ("valid email address", "at least one interest", "Mars/Base", "between 0"):
        assert expected in page.text


def test_a_filled_honeypot_looks_accepted_but_stores_and_sends_nothing(
    settings: Settings, engine: Engine, smtp: SmtpSink
) -> None:
    with client(settings, engine, Clock()) as http:
        page = http.post("/subscribe", data=form(website="http://spam.example"))
    assert page.status_code == 200 and "Check your inbox" in page.text
    assert subscriber(engine, "ada@example.org") is None and not smtp.received


def test_one_confirmation_email_per_address_per_hour(
    settings: Settings, engine: Engine, smtp: SmtpSink
) -> None:
    clock = Clock()
    with client(settings, engine, clock) as http:
        for _ in range(2):
            assert http.post("/subscribe", data=form()).status_code == 200
        assert len(smtp.to("ada@example.org")) == 1
        clock.advance(minutes=61)
        assert http.post("/subscribe", data=form(interests="robots")).status_code == 200
    first, second = smtp.to("ada@example.org")
    assert link_in(first, "confirm") != link_in(second, "confirm")


def test_rate_limits_per_address_and_per_ip(
    settings: Settings, engine: Engine, smtp: SmtpSink
) -> None:
    limited = web_settings(settings, subscribe_per_address_hour=2, subscribe_per_ip_hour=4)
    clock = Clock()
    with client(limited, engine, clock) as http:
        for _ in range(2):
            assert http.post("/subscribe", data=form()).status_code == 200
        refused = http.post("/subscribe", data=form())
        assert refused.status_code == 429
        assert "try again in 60 minutes" in refused.text
        assert int(refused.headers["retry-after"]) == 3601
        assert http.post("/subscribe", data=form(email="b@example.org")).status_code == 200
        assert http.post("/subscribe", data=form(email="c@example.org")).status_code == 429
        clock.advance(minutes=60)
        assert http.post("/subscribe", data=form(email="c@example.org")).status_code == 200
        metrics = http.get("/metrics").text
    assert 'digest_rate_limited_total{limit="sign-ups for this address"} 1' in metrics
    assert 'digest_rate_limited_total{limit="sign-ups from this network"} 1' in metrics


def test_a_cap_on_all_sign_ups_per_hour_says_so(settings: Settings, engine: Engine) -> None:
    assert Settings().subscribe_per_ip_hour == 100  # a department behind one NAT fits
    clock = Clock()
    with client(web_settings(settings, subscribe_per_hour=2), engine, clock) as http:
        for name in ("a", "b"):
            assert http.post("/subscribe", data=form(email=f"{name}@x.org")).status_code == 200
        refused = http.post("/subscribe", data=form(email="c@x.org"))
        assert refused.status_code == 429
        assert "Too many sign-ups on this site right now; try again in 60 minutes." in (
            refused.text
        )
        clock.advance(minutes=61)
        assert http.post("/subscribe", data=form(email="c@x.org")).status_code == 200
    assert subscriber(engine, "c@x.org") is not None


def test_every_sign_up_answers_after_the_same_delay_email_or_not(
    settings: Settings, engine: Engine, smtp: SmtpSink
) -> None:
    add_subscriber(engine, "gone@example.org", ["x"], status=SubscriberStatus.bounced)
    slow = web_settings(settings, subscribe_answer_seconds=0.4)
    with client(slow, engine, Clock()) as http:
        answers = {}
        for email in ("new@example.org", "gone@example.org"):
            started = time.monotonic()
            answer = http.post("/subscribe", data=form(email=email))
            answers[email] = (time.monotonic() - started, answer.text.replace(email, "@"))
    assert len(smtp.to("new@example.org")) == 1 and not smtp.to("gone@example.org")
    (new_time, new_text), (gone_time, gone_text) = answers.values()
    assert new_time >= 0.4 and gone_time >= 0.4  # the floor, whether an email went out or not
    assert new_text == gone_text


def test_bad_expired_revoked_and_misused_links_get_a_clear_page(
    settings: Settings, engine: Engine
) -> None:
    clock = Clock()
    row, _ = add_subscriber(engine, "ada@example.org", ["diffusion"])
    assert row.id is not None
    secret = SECRET
    prefs = make_token(secret, PREFERENCES, row.id, 1, now=clock.now)
    with client(settings, engine, clock) as http:
        assert http.get(f"/preferences/{prefs}").status_code == 200
        tampered = http.get(f"/preferences/{prefs[:-2]}xx")
        assert tampered.status_code == 400 and "This link is not valid" in tampered.text
        assert "ada@example.org" not in tampered.text
        misused = http.get(f"/unsubscribe/{prefs}")
        assert misused.status_code == 400
        forged = make_token("other-secret", PREFERENCES, row.id, 1)
        assert http.get(f"/preferences/{forged}").status_code == 400
        confirm = make_token(secret, CONFIRM, row.id, 1, now=clock.now)
        clock.advance(hours=49)
        expired = http.get(f"/confirm/{confirm}")
        assert expired.status_code == 410 and "This link has expired" in expired.text
        unsubscribe = make_token(secret, UNSUBSCRIBE, row.id, 1, now=clock.now)
        assert http.post(f"/unsubscribe/{unsubscribe}").status_code == 200
        revoked = http.get(f"/preferences/{make_token(secret, PREFERENCES, row.id, 1)}")
        assert revoked.status_code == 410 and "no longer valid" in revoked.text
        assert http.get("/confirm/").status_code == 404


def test_one_click_unsubscribe_from_a_mail_client_without_cookies(
    settings: Settings, engine: Engine, smtp: SmtpSink
) -> None:
    row, _ = add_subscriber(engine, "ada@example.org", ["diffusion"])
    assert row.id is not None
    link = f"/unsubscribe/{make_token(SECRET, UNSUBSCRIBE, row.id, 1)}"
    with client(settings, engine, Clock()) as http:
        body = "List-Unsubscribe=One-Click"
        headers = {"content-type": "application/x-www-form-urlencoded"}
        done = http.post(link, content=body, headers=headers)
        assert done.status_code == 200 and "set-cookie" not in done.headers
        assert "You are unsubscribed" in done.text
        after = subscriber(engine, "ada@example.org")
        assert after.status == SubscriberStatus.unsubscribed and after.token_version == 2
        multipart = http.post(link, files={"List-Unsubscribe": (None, "One-Click")})
        assert multipart.status_code == 200  # Some clients post multipart/form-data.
        repeat = http.post(link, content=body, headers=headers)
        assert repeat.status_code == 200 and "You are unsubscribed" in repeat.text
    assert subscriber(engine, "ada@example.org").token_version == 2
    assert not smtp.received  # One-click from a mail client sends no goodbye email.


def test_unsubscribe_page_then_goodbye_email_then_resubscribe(
    settings: Settings, engine: Engine, smtp: SmtpSink
) -> None:
    row, _ = add_subscriber(engine, "ada@example.org", ["diffusion"])
    assert row.id is not None
    link = f"/unsubscribe/{make_token(SECRET, UNSUBSCRIBE, row.id, 1)}"
    with client(settings, engine, Clock()) as http:
        page = http.get(link)
        assert page.status_code == 200 and page.text.count("<button") == 1
        done = http.post(link, data={"List-Unsubscribe": "One-Click", "source": "page"})
        assert done.status_code == 200
        [goodbye] = smtp.to("ada@example.org")
        again = link_in(goodbye, "resubscribe")
        assert "Subscribe again" in http.get(again).text
        assert http.post(again).status_code == 200
        assert subscriber(engine, "ada@example.org").status == SubscriberStatus.active
        button = re.search(r'action="(/resubscribe/[^"]+)"', done.text)
        assert button is not None and button[1] == again


def test_unsubscribed_address_signs_up_again_with_double_opt_in(
    settings: Settings, engine: Engine, smtp: SmtpSink
) -> None:
    row, _ = add_subscriber(engine, "ada@example.org", ["diffusion"])
    assert row.id is not None
    with client(settings, engine, Clock()) as http:
        http.post(f"/unsubscribe/{make_token(SECRET, UNSUBSCRIBE, row.id, 1)}")
        http.post("/subscribe", data=form(interests="robots"))
        assert subscriber(engine, "ada@example.org").status == SubscriberStatus.pending
        [message] = smtp.to("ada@example.org")
        http.post(link_in(message, "confirm"))
    assert subscriber(engine, "ada@example.org").status == SubscriberStatus.active


def test_sign_up_survives_a_refusing_mail_server(
    settings: Settings, engine: Engine, smtp: SmtpSink
) -> None:
    smtp.refuse["ada@example.org"] = "450 4.2.0 mailbox busy"
    clock = Clock()
    with client(settings, engine, clock) as http:
        failed = http.post("/subscribe", data=form(interests="graph networks\nrobots"))
        assert failed.status_code == 503 and "Nothing you typed is lost" in failed.text
        assert "graph networks\nrobots</textarea>" in failed.text  # the form, as typed
        del smtp.refuse["ada@example.org"]
        assert http.post("/subscribe", data=form()).status_code == 200
        assert 'digest_web_emails_total{kind="confirm_failed"} 1' in http.get("/metrics").text
    assert len(smtp.to("ada@example.org")) == 1


def test_tokens_tolerate_a_little_clock_skew_only() -> None:
    now = Clock().now
    ahead = make_token("s", PREFERENCES, 7, 1, now=now + timedelta(minutes=1))
    assert read_token("s", PREFERENCES, ahead, max_age=60, now=now) == (7, 1)
    far = make_token("s", PREFERENCES, 7, 1, now=now + timedelta(minutes=10))
    with pytest.raises(TokenExpired):
        read_token("s", PREFERENCES, far, max_age=60, now=now)
    old = make_token("s", PREFERENCES, 7, 1, now=now - timedelta(seconds=61))
    with pytest.raises(TokenExpired):
        read_token("s", PREFERENCES, old, max_age=60, now=now)
    with pytest.raises(TokenError) as caught:
        read_token("s", UNSUBSCRIBE, ahead, now=now)
    assert not isinstance(caught.value, TokenExpired)


def test_serve_web_reports_a_busy_port(settings: Settings, engine: Engine) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        stop = asyncio.Event()
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"):
            asyncio.run(serve_web(settings, engine, host="127.0.0.1", port=port, stop=stop))


def test_previews_are_rate_limited_per_ip(settings: Settings, engine: Engine) -> None:
    clock = Clock()
    with client(web_settings(settings, preview_per_ip_minute=2), engine, clock) as http:
        for _ in range(2):
            assert http.post("/preview", data={"interests": "diffusion"}).status_code == 200
        refused = http.post("/subscribe", data=form(action="preview"))
        assert refused.status_code == 429 and "too many previews" in refused.text.lower()
        clock.advance(seconds=61)
        assert http.post("/preview", data={"interests": "diffusion"}).status_code == 200


def test_resubscribe_links_for_an_active_or_never_confirmed_address(
    settings: Settings, engine: Engine
) -> None:
    active, _ = add_subscriber(engine, "ada@example.org", ["diffusion"])
    pending, _ = add_subscriber(
        engine, "bob@example.org", ["robots"], status=SubscriberStatus.pending
    )
    assert active.id is not None and pending.id is not None
    with client(settings, engine, Clock()) as http:
        link = f"/resubscribe/{make_token(SECRET, RESUBSCRIBE, active.id, 1)}"
        shown = http.get(link)
        assert shown.status_code == 200 and "You are subscribed" in shown.text
        assert http.post(link).status_code == 200
        unsubscribe = make_token(SECRET, UNSUBSCRIBE, pending.id, 1)
        assert http.post(f"/unsubscribe/{unsubscribe}").status_code == 200
        again = f"/resubscribe/{make_token(SECRET, RESUBSCRIBE, pending.id, 2)}"
        assert "Subscribe again" in http.get(again).text
        refused = http.post(again)
        assert refused.status_code == 409 and "never confirmed" in refused.text
    assert subscriber(engine, "bob@example.org").status == SubscriberStatus.unsubscribed


def test_an_unsubscribe_link_works_for_good_and_says_so_when_used_again(
    settings: Settings, engine: Engine
) -> None:
    clock = Clock()
    row, _ = add_subscriber(engine, "ada@example.org", ["diffusion"])
    assert row.id is not None
    old = f"/unsubscribe/{make_token(SECRET, UNSUBSCRIBE, row.id, 1, now=clock.now)}"
    clock.advance(days=400)  # an email kept for over a year
    with client(settings, engine, clock) as http:
        assert "Unsubscribe" in http.get(old).text
        first = http.post(old, data={"List-Unsubscribe": "One-Click"})
        assert first.status_code == 200 and 'id="resubscribe"' in first.text
        again = http.get(old)
        assert again.status_code == 200 and "You are unsubscribed" in again.text
        assert 'id="resubscribe"' not in again.text  # the way back is not for old links
        repeat = http.post(old, data={"List-Unsubscribe": "One-Click"})
        assert repeat.status_code == 200 and "You are unsubscribed" in repeat.text
        # Subscribed again later: the old email's one-click still unsubscribes.
        assert subscribers.resubscribe(engine, row.id, clock.now)
        assert http.post(old, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert subscriber(engine, "ada@example.org").status == SubscriberStatus.unsubscribed


def test_a_client_cannot_move_its_sign_ups_to_another_address(
    settings: Settings, engine: Engine
) -> None:
    limited = web_settings(settings, subscribe_per_ip_hour=1)
    with client(limited, engine, Clock()) as http:
        first = http.post("/subscribe", data=form("a@example.org"))
        spoofed = http.post(
            "/subscribe", data=form("b@example.org"), headers={"X-Forwarded-For": "203.0.113.9"}
        )
    assert first.status_code == 200
    assert spoofed.status_code == 429  # counted against 127.0.0.1, where it came from


def test_https_pages_and_the_feed_carry_the_security_headers(
    settings: Settings, engine: Engine
) -> None:
    row, _ = add_subscriber(engine, "ada@example.org", ["diffusion"])
    assert row.id is not None
    feed = f"/feed/{make_token(SECRET, FEED, row.id, 1)}"
    with client(settings, engine, Clock()) as http:
        for path in ("/", feed, "/healthz"):
            answer = http.get(path)
            assert answer.status_code == 200, path
            assert answer.headers["strict-transport-security"] == "max-age=31536000"
        atom = http.get(feed)
    assert atom.headers["referrer-policy"] == "no-referrer"
    assert atom.headers["cache-control"] == "no-store"


def test_people_get_pages_for_http_errors_and_programs_get_json(
    settings: Settings, engine: Engine
) -> None:
    row, _ = add_subscriber(engine, "ada@example.org", ["diffusion"])
    prefs = f"/preferences/{make_token(SECRET, PREFERENCES, row.id, 1)}"
    with client(settings, engine, Clock()) as http:
        missing = http.get("/no-such-page")
        reloaded = http.get(prefs + "/feed")  # the address bar after a button's POST
        bad_id = http.get(f"/digests/{make_token(SECRET, DIGESTS, row.id, 1)}/abc")
        api = http.get("/api/nothing", headers={"Authorization": f"Bearer {ADMIN}"})
    assert missing.status_code == 404 and "There is no such page" in missing.text
    assert reloaded.status_code == 405 and "target of a button" in reloaded.text
    assert bad_id.status_code == 400 and "This link is not valid" in bad_id.text
    assert missing.headers["content-type"].startswith("text/html")
    assert api.status_code == 404 and api.json() == {"detail": "Not Found"}

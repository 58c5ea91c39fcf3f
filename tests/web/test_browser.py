"""The whole subscriber journey in real headless Chromium (Selenium + Debian's chromedriver).

subscribe -> confirmation email at the local SMTP server -> follow the link -> edit
preferences -> unsubscribe from the link in a digest. Every page is screenshot at desktop
and phone widths under var/screenshots/web/. Without Chromium and chromedriver these tests
are skipped, unless DIGEST_TEST_REQUIRE_BROWSER=1 (CI), where they fail.
"""

from __future__ import annotations

import struct
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from digest.config import Settings
from digest.mail.capture import free_port
from digest.models import SubscriberStatus
from digest.sources.ingest import store
from tests.kit.browser import SCREENSHOTS
from tests.kit.seeds import PAPERS, send_digest, topical_papers
from tests.kit.smtp import SmtpSink
from tests.kit.web import Clock, link_in, server, subscriber

WEB_SCREENSHOTS = SCREENSHOTS / "web"
DESKTOP, PHONE = 1100, 375


def shoot(driver: Any, name: str) -> None:
    """Screenshot the page at desktop and phone widths; at phone width nothing scrolls sideways."""
    WEB_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for label, width in (("desktop", DESKTOP), ("phone", PHONE)):
        driver.set_window_size(width, 900)
        viewport = driver.execute_script("return window.innerWidth")
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(width + (width - viewport), min(max(height, 600), 4000) + 100)
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth"
        )
        assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at {width}px"
        target = WEB_SCREENSHOTS / f"{name}-{label}.png"
        driver.save_screenshot(str(target))
        head = target.read_bytes()[:24]
        assert head[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">I", head[16:20])[0] >= width - 20
    driver.set_window_size(DESKTOP, 900)


# The journey exercises the pages; the HTTP tests cover both databases.
@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_subscribe_confirm_edit_and_unsubscribe_in_chromium(
    settings: Settings, engine: Engine, smtp: SmtpSink, browser: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    wait = WebDriverWait(browser, 10)
    clock = Clock()
    store(engine, PAPERS, now=clock.now - timedelta(hours=2))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = settings.model_copy(update={"base_url": base})

    def follow(message: Any, purpose: str) -> None:
        browser.get(base + link_in_at(message, purpose, base))

    with server(settings, engine, clock, port=port):
        browser.get(base + "/")
        assert Select(browser.find_element(By.ID, "timezone")).first_selected_option.text == (
            "Asia/Tokyo"
        )  # Pre-filled by the page's script from the browser.
        shoot(browser, "1-subscribe")
        browser.find_element(By.ID, "email").send_keys("ada@example.org")
        browser.find_element(By.ID, "interests").send_keys("diffusion\nmolecules")
        wait.until(ec.text_to_be_present_in_element((By.ID, "preview"), "Best matches"))
        assert "Denoising Diffusion for Molecules" in browser.find_element(By.ID, "preview").text
        shoot(browser, "2-subscribe-preview")
        browser.find_element(By.CSS_SELECTOR, "button[value=subscribe]").click()
        wait.until(ec.title_is("Check your inbox"))
        shoot(browser, "3-check-inbox")
        assert subscriber(engine, "ada@example.org").timezone == "Asia/Tokyo"

        [confirmation] = smtp.to("ada@example.org")
        follow(confirmation, "confirm")
        shoot(browser, "4-confirm")
        browser.find_element(By.ID, "confirm").click()
        wait.until(ec.title_is("You are subscribed"))
        shoot(browser, "5-subscribed")
        assert subscriber(engine, "ada@example.org").status == SubscriberStatus.active

        browser.find_element(By.LINK_TEXT, "Change your interests").click()
        wait.until(ec.title_is("Your digest settings"))
        box = browser.find_element(By.ID, "interests")
        box.clear()
        box.send_keys('diffusion\n"latent space')
        browser.find_element(By.ID, "save").click()
        wait.until(ec.presence_of_element_located((By.ID, "interest-errors")))
        assert "unbalanced quote" in browser.find_element(By.ID, "interest-errors").text
        shoot(browser, "6-preferences-error")
        box = browser.find_element(By.ID, "interests")
        box.clear()
        box.send_keys("diffusion")
        Select(browser.find_element(By.ID, "send_hour")).select_by_visible_text("06:00")
        browser.find_element(By.ID, "save").click()
        wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, ".notice"), "Saved"))
        shoot(browser, "7-preferences-saved")
        assert subscriber(engine, "ada@example.org").send_hour == 6

        send_digest(engine, settings, clock.now)
        digest = smtp.to("ada@example.org")[-1]
        assert "2 new papers: diffusion" in digest["Subject"]
        browser.get(browser.current_url)
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "table a")))
        browser.find_element(By.CSS_SELECTOR, "table a").click()
        wait.until(ec.title_contains("Digest"))
        assert "Latent Diffusion for Audio" in browser.find_element(By.TAG_NAME, "main").text
        shoot(browser, "8-digest")

        follow(digest, "unsubscribe")
        shoot(browser, "9-unsubscribe")
        browser.find_element(By.ID, "unsubscribe").click()
        wait.until(ec.title_is("You are unsubscribed"))
        shoot(browser, "10-unsubscribed")
    assert subscriber(engine, "ada@example.org").status == SubscriberStatus.unsubscribed
    goodbye = smtp.to("ada@example.org")[-1]
    assert "unsubscribed" in goodbye["Subject"]


def link_in_at(message: Any, purpose: str, base: str) -> str:
    """The path of the first /{purpose}/ link of an email whose links start with `base`."""
    body = message.get_body(("plain",)).get_content()
    start = body.index(f"{base}/{purpose}/") + len(base)
    return str(body[start:].split()[0])


# link_in (https://digest.test) is for the HTTP tests; here links point at the live server.
_ = link_in


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_related_term_is_added_with_one_click_in_chromium(
    settings: Settings, engine: Engine, browser: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 10)
    clock = Clock()
    store(engine, topical_papers(), now=clock.now - timedelta(hours=2))
    with server(settings, engine, clock) as base:
        browser.get(base + "/")
        browser.find_element(By.ID, "interests").send_keys("state space models")
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "button.suggest")))
        preview = browser.find_element(By.ID, "preview").text
        assert "also finds SSM" in preview and "12 papers" in preview
        shoot(browser, "11-related-terms")
        browser.find_element(By.CSS_SELECTOR, "button.suggest[value=mamba]").click()
        box = browser.find_element(By.ID, "interests")
        wait.until(lambda _: box.get_property("value") == "state space models\nmamba")
        wait.until(ec.text_to_be_present_in_element((By.ID, "preview"), "mamba: 12"))
        assert browser.current_url.rstrip("/") == base  # added in place, nothing submitted
    assert subscriber(engine, "ada@example.org") is None


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_more_like_this_and_not_for_me_in_chromium(
    settings: Settings, engine: Engine, smtp: SmtpSink, browser: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from digest.subscribers import subscribe

    wait = WebDriverWait(browser, 10)
    clock = Clock()
    store(engine, PAPERS, now=clock.now - timedelta(hours=2))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = settings.model_copy(update={"base_url": base})
    subscribe(engine, "ada@example.org", ["diffusion"], now=clock.now - timedelta(days=1))
    send_digest(engine, settings, clock.now)
    (digest,) = smtp.to("ada@example.org")
    text = digest.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    more = text[text.index(f"{base}/feedback/") :].split()[0]
    assert more.endswith("/more")
    with server(settings, engine, clock, port=port):
        browser.get(more)
        wait.until(ec.title_is("More like this"))
        shoot(browser, "12-more-like-this")
        browser.find_element(By.ID, "more").click()
        wait.until(ec.title_is("Thank you"))
        assert "will rank higher" in browser.find_element(By.CSS_SELECTOR, ".notice").text
        shoot(browser, "13-thank-you")
        browser.find_element(By.ID, "undo").click()
        wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, ".notice"), "Undone"))
        browser.get(more.removesuffix("/more") + "/less")
        wait.until(ec.title_is("Not for me"))
        shoot(browser, "14-not-for-me")
        browser.find_element(By.ID, "topic").click()
        wait.until(ec.title_is("Thank you"))
        browser.find_element(By.LINK_TEXT, "See everything your digest has learned").click()
        wait.until(ec.title_is("Your digest settings"))
        assert "Not for me:" in browser.find_element(By.ID, "learned").text
        shoot(browser, "15-learned")

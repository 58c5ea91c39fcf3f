"""A digest's "See all" page in real Chromium: every matched paper, the held-over ones marked,
at phone and desktop widths, light and dark; screenshots under var/screenshots/web/."""

from __future__ import annotations

import re
import struct
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from digest.config import Settings
from digest.sources.ingest import PaperIn, store
from digest.subscribers import subscribe
from tests.kit.browser import SCREENSHOTS
from tests.kit.mail import parts
from tests.kit.seeds import send_digest
from tests.kit.smtp import SmtpSink
from tests.kit.web import Clock, server

WIDTHS = (390, 1280)


def show(driver: Any, url: str, width: int, *, dark: bool) -> dict[str, Any]:
    """Open `url` at `width` in the light or dark scheme; measure what the page shows."""
    scheme = [{"name": "prefers-color-scheme", "value": "dark" if dark else "light"}]
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": scheme})
    driver.set_window_size(width, 1000)
    driver.get(url)
    inner = driver.execute_script("return window.innerWidth")
    driver.set_window_size(width + (width - inner), 2400)
    result: dict[str, Any] = driver.execute_script(
        """return {
          overflow: document.documentElement.scrollWidth - window.innerWidth,
          background: getComputedStyle(document.body).backgroundColor,
          papers: document.querySelectorAll("li.paper").length,
          held: [...document.querySelectorAll(".tag")]
            .filter(t => t.textContent == "held over").length,
          marks: document.querySelectorAll("mark").length,
        }"""
    )
    return result


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_full_list_shows_every_match_on_a_phone_and_a_desktop_light_and_dark(
    settings: Settings, engine: Engine, smtp: SmtpSink, browser: Any
) -> None:
    clock = Clock()
    papers = [
        PaperIn(
            id=f"2411.{n:05d}",
            title=f"Sparse mixture of experts for long documents, part {n}",
            abstract="We route tokens to experts. " * 12,
            authors=["Ada Lovelace", "Grace Hopper", "Alan Turing", "Edsger Dijkstra"],
            categories=["cs.LG", "cs.CL"],
        )
        for n in range(8)
    ]
    store(engine, papers, now=clock.now - timedelta(hours=2))
    subscribe(engine, "ada@example.org", ['"mixture of experts"'], max_papers=3, now=clock.now)
    send_digest(engine, settings, clock.now + timedelta(hours=1))
    text = parts(smtp.to("ada@example.org")[0])[0]
    found = re.search(r"See all 8: https://digest\.test(/digests/\S+)", text)
    assert found is not None, text
    SCREENSHOTS.joinpath("web").mkdir(parents=True, exist_ok=True)
    with server(settings, engine, clock) as base:
        for width in WIDTHS:
            for dark in (False, True):
                seen = show(browser, base + found[1], width, dark=dark)
                name = f"full-list-{width}-{'dark' if dark else 'light'}"
                assert seen["overflow"] <= 0, f"{name} scrolls sideways"
                assert seen["papers"] == 8 and seen["held"] == 5 and seen["marks"] >= 8
                assert (seen["background"] == "rgb(20, 22, 26)") == dark, seen
                target = SCREENSHOTS / "web" / f"{name}.png"
                browser.save_screenshot(str(target))
                assert struct.unpack(">I", target.read_bytes()[16:20])[0] >= width - 20

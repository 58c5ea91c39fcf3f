"""The HTML part in a real headless Chromium: layout at desktop and phone widths, screenshots.

Screenshots are saved under var/screenshots/ for review. Without Chromium these tests are
skipped, unless DIGEST_TEST_REQUIRE_BROWSER=1 (CI), where they fail.
"""

from __future__ import annotations

import html
import json
import re
import struct
import subprocess
from datetime import datetime
from pathlib import Path

from digest.mail.render import ConfirmView, GoodbyeView, PaperView, Renderer
from tests.kit.browser import CHROMIUM_FLAGS, SCREENSHOTS, chromium
from tests.kit.env import PAPERS_JSONL
from tests.kit.mail import HOSTILE, digest_view, email_settings, paper

DESKTOP, PHONE = 1000, 375


def browse(tmp_path: Path, page: Path, *args: str) -> str:
    """Run headless Chromium on `page` with a fresh profile; return its stdout."""
    command = [
        chromium(),
        "--headless",
        *CHROMIUM_FLAGS,
        f"--user-data-dir={tmp_path / 'profile'}",
        *args,
        page.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, timeout=60, check=True)
    return done.stdout.decode()


def measure(tmp_path: Path, email_html: str, width: int, *, dark: bool = False) -> dict[str, int]:
    """Lay the email out in an iframe `width` pixels wide and measure it."""
    probe = f"""<!DOCTYPE html><html><body style="margin:0">
<iframe id="f" style="border:0;width:{width}px;height:3000px" srcdoc="{html.escape(email_html)}">
</iframe><script>
window.onload = () => {{
  const d = document.getElementById("f").contentDocument;
  const card = d.querySelector("table.card");
  const out = {{
    scroll: d.documentElement.scrollWidth,
    card: Math.round(card.getBoundingClientRect().width),
    dark: d.defaultView.getComputedStyle(card).backgroundColor === "rgb(26, 29, 35)" ? 1 : 0,
  }};
  document.body.setAttribute("data-out", JSON.stringify(out));
}};
</script></body></html>"""
    page = tmp_path / f"probe-{width}.html"
    page.write_text(probe, encoding="utf-8")
    flags = ["--force-dark-mode"] if dark else []
    dom = browse(tmp_path, page, "--dump-dom", "--virtual-time-budget=5000", *flags)
    found = re.search(r'data-out="([^"]+)"', dom)
    assert found is not None, dom[-500:]
    result: dict[str, int] = json.loads(html.unescape(found.group(1)))
    return result


def screenshot(tmp_path: Path, email_html: str, name: str, width: int, *flags: str) -> Path:
    """Save a screenshot of the email at `width` under var/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = tmp_path / f"{name}.html"
    page.write_text(email_html, encoding="utf-8")
    target = SCREENSHOTS / f"{name}.png"
    target.unlink(missing_ok=True)
    browse(tmp_path, page, f"--screenshot={target}", f"--window-size={width},1800", *flags)
    head = target.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", head[16:24]) == (width, 1800)
    return target


def realistic_papers() -> list[PaperView]:
    """Real titles and abstracts from the shared data when present, else built ones."""
    if not PAPERS_JSONL.exists():
        return [paper(n) for n in range(8)]
    interests = ["language models", "diffusion", "reinforcement learning"]
    views: list[PaperView] = []
    for line in PAPERS_JSONL.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        text = (record["title"] + " " + record["abstract"]).lower()
        for interest in interests:
            term = interest.split()[0]
            if term in text and len(views) < 8:
                views.append(
                    paper(
                        len(views),
                        interest=interest,
                        title=record["title"],
                        abstract=record["abstract"],
                        terms=(interest, term),
                        published=datetime.strptime(
                            f"{record['listing_date']} 2026", "%b %d %Y"
                        ).date(),
                        upvotes=None if len(views) % 3 else 31,
                        code_url=None if len(views) % 2 else "https://github.com/example/code",
                    )
                )
                break
    return sorted(views, key=lambda v: interests.index(v.interest))


def test_digest_fits_desktop_and_phone_widths(tmp_path: Path) -> None:
    view = digest_view(realistic_papers(), more=12, more_url="https://digest.test/digests/t/1")
    email_html = Renderer(email_settings()).digest(view).html
    wide = measure(tmp_path, email_html, DESKTOP)
    assert wide["card"] == 600 and wide["scroll"] == DESKTOP
    narrow = measure(tmp_path, email_html, PHONE)
    assert narrow["scroll"] == PHONE  # nothing sticks out: no sideways scrolling
    assert narrow["card"] == PHONE
    for width, name in ((1280, "desktop"), (390, "phone")):
        screenshot(tmp_path, email_html, f"digest-{name}", width)
        screenshot(tmp_path, email_html, f"digest-{name}-dark", width, "--force-dark-mode")


def test_dark_mode_switches_the_palette(tmp_path: Path) -> None:
    email_html = Renderer(email_settings()).digest(digest_view([paper(1)])).html
    assert measure(tmp_path, email_html, DESKTOP)["dark"] == 0
    assert measure(tmp_path, email_html, DESKTOP, dark=True)["dark"] == 1


def test_hostile_digest_keeps_its_layout(tmp_path: Path) -> None:
    email_html = Renderer(email_settings()).digest(digest_view(HOSTILE)).html
    assert measure(tmp_path, email_html, PHONE)["scroll"] == PHONE
    screenshot(tmp_path, email_html, "digest-hostile-phone", 390)


def test_account_emails_render(tmp_path: Path) -> None:
    renderer = Renderer(email_settings())
    confirm = renderer.confirm(
        ConfirmView("new@example.org", "https://digest.test/confirm/t", ["diffusion", "rag"])
    ).html
    goodbye = renderer.goodbye(GoodbyeView("old@example.org", "https://digest.test/")).html
    assert measure(tmp_path, confirm, PHONE)["scroll"] == PHONE
    screenshot(tmp_path, confirm, "confirm-phone", 390)
    screenshot(tmp_path, goodbye, "goodbye-desktop", 800)

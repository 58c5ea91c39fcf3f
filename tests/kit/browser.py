"""Headless Chromium for the browser tests: the binary, its flags, where screenshots go."""

from __future__ import annotations

import os
import shutil

from tests.kit.env import TESTS, missing

SCREENSHOTS = TESTS.parent / "var" / "screenshots"

# Headless Chromium on a machine with no network; each browser test adds its headless mode.
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def chromium() -> str:
    """The Chromium binary, or skip (fail when DIGEST_TEST_REQUIRE_BROWSER=1)."""
    for name in (os.environ.get("DIGEST_TEST_CHROMIUM"), "chromium", "chromium-browser"):
        found = shutil.which(name) if name else None
        if found:
            return found
    message = "Chromium is not installed (apt-get install chromium; make test installs it)"
    missing(message, "DIGEST_TEST_REQUIRE_BROWSER")


def chromedriver() -> str:
    """The chromedriver binary, or skip (fail when DIGEST_TEST_REQUIRE_BROWSER=1)."""
    found = shutil.which(os.environ.get("DIGEST_TEST_CHROMEDRIVER", "chromedriver"))
    if found:
        return found
    message = "chromedriver is not installed (apt-get install chromium-driver; make test does)"
    missing(message, "DIGEST_TEST_REQUIRE_BROWSER")

"""Fixtures of the web tests: a headless Chromium driven by Selenium."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kit.browser import CHROMIUM_FLAGS, chromedriver, chromium


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """Headless Chromium driven by Selenium, in the Asia/Tokyo time zone."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium()
    for flag in (
        "--headless=new",
        "--disable-dev-shm-usage",
        *CHROMIUM_FLAGS,
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    service = Service(chromedriver(), env={**os.environ, "TZ": "Asia/Tokyo"})
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()

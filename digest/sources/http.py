"""The HTTP policy every source shares: timeouts, retries with backoff, pacing, conditional GET."""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from digest.config import Settings

log = logging.getLogger("digest.sources")


class Timer(Protocol):
    """Monotonic time and sleeping; tests pass one that records sleeps instead of sleeping."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait `seconds`."""
        ...


class SystemTimer:
    """The real clock."""

    def monotonic(self) -> float:
        """time.monotonic()."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """time.sleep()."""
        time.sleep(seconds)


class FetchError(Exception):
    """A URL could not be fetched, after every retry the policy allows."""


@dataclass(frozen=True)
class Validators:
    """What a server said identifies a response, sent back to ask "changed since?"."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class Fetched:
    """A response body, or nothing when the server says it has not changed (304)."""

    url: str
    content: bytes
    validators: Validators
    not_modified: bool = False


def retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class Http:
    """An httpx client with the retry, pacing and conditional-GET policy of Settings."""

    def __init__(
        self,
        settings: Settings,
        *,
        timer: Timer | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.timer: Timer = timer or SystemTimer()
        self.rng = rng or random.Random()
        self.client = httpx.Client(
            timeout=settings.http_timeout,
            headers={"User-Agent": settings.user_agent},
            follow_redirects=True,
        )
        self.intervals: dict[str, float] = {}
        self._last: dict[str, float] = {}

    def __enter__(self) -> Http:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()

    def pace(self, url: str, seconds: float) -> None:
        """Leave at least `seconds` between two requests to the host of `url`."""
        self.intervals[urlsplit(url).netloc] = seconds

    def _wait_turn(self, host: str) -> None:
        interval = self.intervals.get(host)
        last = self._last.get(host)
        if interval and last is not None:
            wait = last + interval - self.timer.monotonic()
            if wait > 0:
                self.timer.sleep(wait)

    def backoff(self, attempt: int) -> float:
        """The delay before retry number `attempt` (0-based): doubling, capped, jittered."""
        base = min(self.settings.http_backoff_max, self.settings.http_backoff * 2.0**attempt)
        return base * (0.5 + self.rng.random() / 2)

    def get(
        self,
        url: str,
        *,
        params: dict[str, str | int] | None = None,
        validators: Validators | None = None,
    ) -> Fetched:
        """GET `url`, retrying connection errors, timeouts, 429 and 5xx; raise FetchError."""
        headers: dict[str, str] = {}
        if validators and validators.etag:
            headers["If-None-Match"] = validators.etag
        if validators and validators.last_modified:
            headers["If-Modified-Since"] = validators.last_modified
        host = urlsplit(url).netloc
        attempts = self.settings.http_retries + 1
        for attempt in range(attempts):
            self._wait_turn(host)
            delay = self.backoff(attempt)
            try:
                response = self.client.get(url, params=params, headers=headers)
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                if response.status_code == 304:
                    return Fetched(url, b"", validators or Validators(), not_modified=True)
                if response.is_success:
                    found = Validators(
                        response.headers.get("ETag"), response.headers.get("Last-Modified")
                    )
                    return Fetched(str(response.url), response.content, found)
                problem = f"HTTP {response.status_code} {response.reason_phrase}".strip()
                if response.status_code != 429 and response.status_code < 500:
                    raise FetchError(f"{url}: {problem}")
                wanted = retry_after(response.headers.get("Retry-After"), datetime.now(UTC))
                if wanted is not None:
                    if wanted > self.settings.http_backoff_max:
                        raise FetchError(f"{url}: {problem}, server asks to wait {wanted:.0f}s")
                    delay = max(delay, wanted)
            finally:
                self._last[host] = self.timer.monotonic()
            if attempt + 1 == attempts:
                raise FetchError(f"{url}: {problem} (gave up after {attempts} attempts)")
            log.warning("%s: %s; retrying in %.1fs", url, problem, delay)
            self.timer.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

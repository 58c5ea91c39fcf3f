"""In-process sliding-window rate limits (per client IP, per address).

Counters live in this process: with several web processes each one counts on its own,
so the effective limit is multiplied by the number of processes (see docs/web.md).
"""

from __future__ import annotations

from collections import defaultdict, deque
from datetime import datetime, timedelta


class RateLimited(Exception):
    """Too many attempts; `retry_after` is how long to wait."""

    def __init__(self, what: str, retry_after: timedelta) -> None:
        minutes = max(1, round(retry_after.total_seconds() / 60))
        super().__init__(f"too many {what}; try again in {minutes} minute{'s' * (minutes != 1)}")
        self.retry_after = retry_after


class Limiter:
    """At most `limit` hits per key within `window`."""

    def __init__(self, what: str, limit: int, window: timedelta) -> None:
        self.what = what
        self.limit = limit
        self.window = window
        self._hits: dict[str, deque[datetime]] = defaultdict(deque)

    def hit(self, key: str, now: datetime) -> None:
        """Count one attempt for `key`, or raise RateLimited (the refused one is not counted)."""
        hits = self._hits[key]
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            raise RateLimited(self.what, hits[0] + self.window - now)
        hits.append(now)
        if len(self._hits) > 100_000:
            self._prune(now)

    def _prune(self, now: datetime) -> None:
        for key in [k for k, v in self._hits.items() if not v or v[-1] <= now - self.window]:
            del self._hits[key]

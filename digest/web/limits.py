"""Limits: sliding-window rates in the process (per client IP, per address), body sizes.

Rate counters live in this process: with several web processes each one counts on its own,
so the effective limit is multiplied by the number of processes (see docs/web.md).
"""

from __future__ import annotations

from collections import defaultdict, deque
from datetime import datetime, timedelta

from starlette.responses import HTMLResponse, PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


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


FORM_BYTES = 100_000  # a page's form: 20 interest lines of 300 characters fit many times over
API_BYTES = 1_000_000  # one admin API request
IMPORT_BYTES = 100_000_000  # a CSV import: about a million subscribers
API = "/api/"  # the admin API's paths start so
IMPORT_PATH = f"{API}subscribers/import"


class BodyLimit:
    """ASGI middleware: a request body past its limit gets 413 before the app sees any of
    it: by Content-Length, or, for a chunked body, read up to the limit first."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        limit = IMPORT_BYTES if path == IMPORT_PATH else API_BYTES
        limit = limit if path.startswith(API) else FORM_BYTES
        length = dict(scope.get("headers") or []).get(b"content-length", b"")
        if length.isdigit():
            if int(length) > limit:
                await self._refuse(scope, receive, send, limit)
            else:
                await self.app(scope, receive, send)
            return
        body = bytearray()
        while True:  # chunked: read it all (up to the limit), then hand it on in one piece
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay(message), send)
                return
            body += message.get("body", b"")
            if len(body) > limit:
                await self._refuse(scope, receive, send, limit)
                return
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay({"type": "http.request", "body": bytes(body)}, receive), send)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        text = f"the request body is larger than {limit:,} bytes"
        if str(scope.get("path", "")).startswith(API):
            await PlainTextResponse(text, status_code=413)(scope, receive, send)
            return
        page = (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Too much '
            "at once</title></head><body><h1>Too much at once</h1><p>This form sent more "
            f"than {limit:,} bytes. Go back and send less.</p></body></html>"
        )
        await HTMLResponse(page, status_code=413)(scope, receive, send)


def _replay(first: Message, then: Receive | None = None) -> Receive:
    """A receive() that gives `first`, then what `then` gives (a disconnect, later)."""
    given = False

    async def receive() -> Message:
        nonlocal given
        if not given:
            given = True
            return first
        if then is None:
            return {"type": "http.disconnect"}
        return await then()

    return receive

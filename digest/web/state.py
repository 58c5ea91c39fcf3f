"""What every route shares: the app's state, the dependency that hands it over, LinkProblem.

The state holds the settings, database, templates, rate limits and counters.
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from sqlalchemy import Engine

from digest import resource_dir
from digest.clock import Clock
from digest.config import Settings
from digest.mail.render import Renderer
from digest.mail.text import authors_line, excerpt, highlight, period_label
from digest.match.engine import Matcher
from digest.match.query import MAX_INTEREST_LENGTH, readable
from digest.models import MAX_PAPERS, Cadence
from digest.subscribers import MAX_INTERESTS, Line
from digest.web.limits import Limiter, RateLimited
from digest.web.preview import PaperCache, Preview, preview

# Capability URLs must not leak through Referer; pages load nothing from elsewhere.
PAGE_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Cache-Control": "no-store",
}
# Previews are Python on one GIL: threads computing them at once only share it, so that
# each takes longer (a long one holds up all the others), and the event loop, which answers
# every request, gets less of it. One at a time, the others wait their turn in order
# (bench/preview_load.py, one run each: p99 479 ms with one thread, 559 ms with two).
PREVIEW_THREADS = 1
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


class LinkProblem(Exception):
    """A link that cannot be used: shown as a page that says why, with this HTTP status."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


@dataclass
class WebState:
    """What every route needs: settings, database, templates, clock, limits, counters."""

    settings: Settings
    engine: Engine
    clock: Clock
    matcher: Matcher
    renderer: Renderer
    pages: jinja2.Environment
    cache: PaperCache
    per_ip: Limiter
    sign_ups: Limiter
    address_changes: Limiter
    per_address: Limiter
    previews: Limiter
    requests: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    emails: Counter[str] = field(default_factory=Counter)
    limited: Counter[str] = field(default_factory=Counter)
    secret: str = ""
    previewing: anyio.CapacityLimiter = field(
        default_factory=lambda: anyio.CapacityLimiter(PREVIEW_THREADS)
    )

    def page(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        """Render templates/web/`name` as an HTML response."""
        context.setdefault("settings", self.settings)
        html = self.pages.get_template(f"web/{name}").render(context)
        return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)

    async def preview(self, interests: list[Line]) -> Preview:
        """What `interests` would have matched in the last days, computed in a worker thread
        (PREVIEW_THREADS at most at once)."""
        run = functools.partial(preview, self.cache, self.matcher, interests, self.clock())
        return await anyio.to_thread.run_sync(run, limiter=self.previewing)

    def link(self, purpose: str, token: str) -> str:
        """An absolute URL of one of our pages."""
        return f"{self.settings.base_url.rstrip('/')}/{purpose}/{token}"

    def check_limit(self, limiter: Limiter, key: str) -> None:
        """Count a hit; count refusals for /metrics and re-raise them."""
        try:
            limiter.hit(key, self.clock())
        except RateLimited:
            self.limited[limiter.what] += 1
            raise


def web(request: Request) -> WebState:
    """The state of the app serving `request` (a FastAPI dependency)."""
    state: WebState = request.app.state.web
    return state


def page_env(settings: Settings) -> jinja2.Environment:
    """Jinja2 for the pages: the operator's templates first, then the bundled ones."""
    paths = [resource_dir("templates")]
    if settings.templates_dir:
        paths.insert(0, Path(settings.templates_dir))
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(p) for p in paths]),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        cadences=list(Cadence),
        weekdays=WEEKDAYS,
        max_papers=MAX_PAPERS,
        max_interests=MAX_INTERESTS,
        max_line=MAX_INTEREST_LENGTH,
    )
    env.filters.update(
        authors=authors_line,
        excerpt=excerpt,
        highlight=highlight,
        period_label=period_label,
        readable=readable,
    )
    return env

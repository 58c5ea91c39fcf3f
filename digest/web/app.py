"""The FastAPI application: state shared by the routes, page rendering, health and metrics."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import jinja2
import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from sqlalchemy import Engine

from digest import resource_dir
from digest.clock import Clock, utcnow
from digest.config import Settings
from digest.db import make_engine
from digest.mail.render import Renderer
from digest.match import InterestMatcher, Matcher
from digest.models import Cadence
from digest.web.limits import Limiter, RateLimited
from digest.web.preview import PaperCache

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
    per_address: Limiter
    previews: Limiter
    requests: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    emails: Counter[str] = field(default_factory=Counter)
    limited: Counter[str] = field(default_factory=Counter)
    secret: str = ""

    def page(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        """Render templates/web/`name` as an HTML response."""
        context.setdefault("settings", self.settings)
        html = self.pages.get_template(f"web/{name}").render(context)
        return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)

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
    env.globals.update(cadences=list(Cadence), weekdays=WEEKDAYS)
    return env


def create_app(
    settings: Settings,
    engine: Engine | None = None,
    *,
    clock: Clock = utcnow,
    matcher: Matcher | None = None,
) -> FastAPI:
    """The web app; it disposes of the engine at shutdown only if it created it."""
    from digest.web.admin import router as admin_router
    from digest.web.metrics import metrics_text
    from digest.web.pages import router as pages_router

    owned = engine is None
    engine = engine or make_engine(settings.sqlalchemy_url)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if owned:
                engine.dispose()

    app = FastAPI(
        title="digest",
        summary="Admin API of the research paper digest (bearer token).",
        lifespan=lifespan,
        redoc_url=None,
    )
    app.state.web = WebState(
        settings=settings,
        engine=engine,
        clock=clock,
        matcher=matcher or InterestMatcher(),
        renderer=Renderer(settings),
        pages=page_env(settings),
        cache=PaperCache(engine),
        per_ip=Limiter("sign-ups from this network", settings.subscribe_per_ip_hour, HOUR),
        per_address=Limiter("sign-ups for this address", settings.subscribe_per_address_hour, HOUR),
        previews=Limiter("previews", settings.preview_per_ip_minute, timedelta(minutes=1)),
        secret=settings.secret_key.get_secret_value(),
    )

    @app.middleware("http")
    async def count_requests(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        app.state.web.requests[(request.method, path, response.status_code)] += 1
        return response

    @app.exception_handler(LinkProblem)
    async def link_problem(request: Request, exc: LinkProblem) -> Response:
        return web(request).page("message.html", exc.status, title=exc.title, text=exc.message)

    @app.exception_handler(RateLimited)
    async def rate_limited(request: Request, exc: RateLimited) -> Response:
        response = web(request).page(
            "message.html", 429, title="Please wait a little", text=str(exc).capitalize() + "."
        )
        response.headers["Retry-After"] = str(int(exc.retry_after.total_seconds()) + 1)
        return response

    @app.get("/healthz", tags=["operations"], summary="Liveness and database check")
    def healthz(request: Request) -> Response:
        try:
            with web(request).engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError as exc:
            return JSONResponse({"status": "error", "database": str(exc)[:200]}, 503)
        return JSONResponse({"status": "ok", "database": "ok"})

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics")
    def metrics(request: Request) -> PlainTextResponse:
        return PlainTextResponse(
            metrics_text(web(request)), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    app.include_router(pages_router)
    app.include_router(admin_router)
    return app


HOUR = timedelta(hours=1)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the caller decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_web(
    settings: Settings,
    engine: Engine,
    *,
    host: str,
    port: int,
    stop: asyncio.Event,
    clock: Clock = utcnow,
) -> None:
    """Serve the web app with uvicorn in the current event loop until `stop` is set."""
    config = uvicorn.Config(
        create_app(settings, engine, clock=clock),
        host=host,
        port=port,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        log_level="info",
        access_log=False,
    )
    server = _Server(config)
    # Bind here so a busy port is an OSError for the caller, not uvicorn's sys.exit().
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        message = f"the web app cannot listen on {host}:{port}: {exc.strerror}"
        raise OSError(exc.errno, message) from exc
    task = asyncio.create_task(server.serve(sockets=[sock]))
    stopped = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        server.should_exit = True
        stopped.cancel()
        await task
        sock.close()

"""The FastAPI application: assembles the state, the routers and the error pages; serves it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import timedelta

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digest.clock import Clock, utcnow
from digest.config import Settings
from digest.db import make_engine
from digest.mail.render import Renderer
from digest.match.engine import InterestMatcher, Matcher
from digest.web.admin import AdminGuard
from digest.web.admin import router as admin_router
from digest.web.feedback import router as feedback_router
from digest.web.limits import API, BodyLimit, Limiter, RateLimited
from digest.web.ops import router as ops_router
from digest.web.pages import INVALID
from digest.web.pages import router as pages_router
from digest.web.preview import PaperCache
from digest.web.state import LinkProblem, WebState, page_env, web

HOUR = timedelta(hours=1)


def create_app(
    settings: Settings,
    engine: Engine | None = None,
    *,
    clock: Clock = utcnow,
    matcher: Matcher | None = None,
) -> FastAPI:
    """The web app; it disposes of the engine at shutdown only if it created it."""
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
        # Swagger UI and ReDoc load scripts from a CDN: off. The schema is served, for any
        # OpenAPI viewer the operator trusts; docs/web.md lists every endpoint.
        docs_url=None,
        redoc_url=None,
    )
    app.state.web = web_state(settings, engine, clock, matcher or InterestMatcher())
    # The last added runs first: count every request, refuse /api without the key before
    # any body is read, then refuse bodies past their limit.
    app.add_middleware(BodyLimit)
    app.add_middleware(AdminGuard)
    app.add_middleware(CountRequests)
    app.add_exception_handler(LinkProblem, link_problem)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, invalid_request)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RateLimited, rate_limited)  # type: ignore[arg-type]
    for router in (ops_router, pages_router, feedback_router, admin_router):
        app.include_router(router)
    return app


def web_state(settings: Settings, engine: Engine, clock: Clock, matcher: Matcher) -> WebState:
    """The state every route shares, limits set from `settings`."""
    return WebState(
        settings=settings,
        engine=engine,
        clock=clock,
        matcher=matcher,
        renderer=Renderer(settings),
        pages=page_env(settings),
        cache=PaperCache(engine),
        per_ip=Limiter("sign-ups from this network", settings.subscribe_per_ip_hour, HOUR),
        per_address=Limiter("sign-ups for this address", settings.subscribe_per_address_hour, HOUR),
        sign_ups=Limiter("sign-ups on this site right now", settings.subscribe_per_hour, HOUR),
        address_changes=Limiter("address changes", 3, HOUR),
        previews=Limiter("previews", settings.preview_per_ip_minute, timedelta(minutes=1)),
        secret=settings.secret_key.get_secret_value(),
    )


class CountRequests:
    """ASGI middleware: count each request by method, route and status, for /metrics; HSTS
    over https. (Plain ASGI: `BaseHTTPMiddleware` costs a task and two streams a request.)"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = web(Request(scope))
        hsts = state.settings.base_url.startswith("https://")
        status: int | None = None

        async def counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                if hsts:
                    headers = MutableHeaders(scope=message)
                    headers.setdefault("Strict-Transport-Security", "max-age=31536000")
            await send(message)

        await self.app(scope, receive, counted)
        if status is not None:
            path = getattr(scope.get("route"), "path", "unmatched")
            state.requests[(scope["method"], path, status)] += 1


async def link_problem(request: Request, exc: LinkProblem) -> Response:
    """A link that cannot be used: a page that says why."""
    return web(request).page("message.html", exc.status, title=exc.title, text=exc.message)


MACHINE_PATHS = (API, "/openapi.json", "/healthz", "/metrics")
ERROR_TITLES = {404: "There is no such page", 405: "This page cannot be opened that way"}


async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """An HTTP error: JSON for the API and the probes, a page for people (a reloaded form
    address, a mistyped link)."""
    if request.url.path.startswith(MACHINE_PATHS):
        return await http_exception_handler(request, exc)
    title = ERROR_TITLES.get(exc.status_code, "Something is wrong with this request")
    text = "Check the address, or follow the link in the email again."
    if exc.status_code == 405:
        text = "It is the target of a button: open the page the button is on instead."
    return web(request).page("message.html", exc.status_code, title=title, text=text)


async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
    """A request the API's models refuse: every problem at once, in the shape the
    subscriber checks use ({"detail": [{"field": "send_hour", "error": "..."}]}); on a
    page's address, the "not valid" page."""
    if not request.url.path.startswith(MACHINE_PATHS):
        return await link_problem(request, INVALID)
    detail = [{"field": _field(e["loc"]), "error": e["msg"]} for e in exc.errors()]
    return JSONResponse({"detail": detail}, status_code=422)


def _field(location: Sequence[str | int]) -> str:
    """("body", "interests", 1) -> "interests[1]"; ("query", "limit") -> "limit"."""
    parts = list(
        location[1:] if location and location[0] in ("body", "query", "path") else location
    )
    name = ".".join(str(p) for p in parts if isinstance(p, str)) or "body"
    return name + "".join(f"[{p}]" for p in parts if isinstance(p, int))


async def rate_limited(request: Request, exc: RateLimited) -> Response:
    """A request over a rate limit: a page that says so, and when to try again."""
    response = web(request).page(
        "message.html", 429, title="Please wait a little", text=str(exc).capitalize() + "."
    )
    response.headers["Retry-After"] = str(int(exc.retry_after.total_seconds()) + 1)
    return response


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
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=settings.forwarded_allow_ips or None,
        log_level="info",
        access_log=False,
    )
    server = _Server(config)
    # Bind here so a busy port is an OSError for the caller, not uvicorn's sys.exit().
    # IPPROTO_TCP named, so asyncio turns Nagle off (TCP_NODELAY): without it every
    # response's body waited ~40 ms for the client's delayed ACK.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
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

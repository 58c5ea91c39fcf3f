"""The admin JSON API under /api: subscribers, papers, sources, digests, stats (bearer token)."""

from __future__ import annotations

import csv
import io
import logging
import secrets
from datetime import date, datetime, timedelta
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from digest import privacy, subscribers
from digest.config import Settings
from digest.models import (
    DIGESTS,
    ERASURES,
    FEEDBACK,
    PAPERS,
    SUBSCRIBERS,
    Cadence,
    FeedbackKind,
    SubscriberStatus,
)
from digest.sources.runner import status as source_status
from digest.subscribers import SubscriberError, SubscriberExists
from digest.web.limits import API
from digest.web.state import WebState, web
from digest.web.subscriber_csv import CSV_FIELDS, CsvImport, ImportReport, cell, text_of

bearer = HTTPBearer(auto_error=False)
log = logging.getLogger(__name__)


def refusal(settings: Settings, token: str | None) -> HTTPException | None:
    """Why a request with this bearer token may not use the admin API, or None."""
    expected = settings.admin_token
    if expected is None:
        return HTTPException(403, "the admin API is off: set DIGEST_ADMIN_TOKEN to enable it")
    if token is None or not secrets.compare_digest(
        token.encode(), expected.get_secret_value().encode()
    ):
        return HTTPException(
            401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"}
        )
    return None


def admin(
    state: Annotated[WebState, Depends(web)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> WebState:
    """Require the admin bearer token from Settings."""
    refused = refusal(state.settings, credentials.credentials if credentials else None)
    if refused is not None:
        raise refused
    return state


class AdminGuard:
    """ASGI middleware: check the bearer token of /api requests before anything reads their
    body (FastAPI parses a body before the route's dependencies run)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope)
            if request.url.path.startswith(API):
                scheme, _, token = request.headers.get("authorization", "").partition(" ")
                bearer = token.strip() if scheme.lower() == "bearer" and token.strip() else None
                refused = refusal(web(request).settings, bearer)
                if refused is not None:
                    answer = JSONResponse(
                        {"detail": refused.detail}, refused.status_code, headers=refused.headers
                    )
                    await answer(scope, receive, send)
                    return
        await self.app(scope, receive, send)


router = APIRouter(prefix="/api", tags=["admin"], dependencies=[Depends(admin)])
Admin = Annotated[WebState, Depends(admin)]


class SubscriberIn(BaseModel):
    """A subscriber to create; interests are lines of the interest language.

    Fields left out take the defaults of a sign-up (active, UTC, 7 h, daily, the
    operator's DIGEST_DEFAULT_MAX_PAPERS).
    """

    # Loosely typed on purpose: `subscribers.validate_prefs` checks every value, so that
    # a bad hour and a bad time zone are reported together, in one shape.
    email: str
    interests: list[str]
    status: str | None = Field(default=None, description=f"One of {', '.join(SubscriberStatus)}.")
    timezone: str | None = Field(default=None, description="An IANA time zone.")
    send_hour: int | str | None = Field(default=None, description="0-23, local time.")
    cadence: str | None = Field(default=None, description=f"One of {', '.join(Cadence)}.")
    weekday: int | str | None = Field(default=None, description="0 (Monday) to 6.")
    max_papers: int | str | None = Field(default=None, description="1-100 papers a digest.")


class SubscriberPatch(SubscriberIn):
    """Fields to change; those left out stay as they are. A new `email` takes effect at
    once (the admin vouches for it); 409 if another subscriber has it."""

    email: str | None = None  # type: ignore[assignment]
    interests: list[str] | None = None  # type: ignore[assignment]


class SubscriberOut(BaseModel):
    """A subscriber as the API shows it."""

    id: int
    email: str
    status: str
    timezone: str
    send_hour: int
    cadence: str
    weekday: int
    max_papers: int
    interests: list[str]
    created_at: datetime
    confirmed_at: datetime | None
    soft_bounces: int


def _out(conn: Connection, row: Any) -> SubscriberOut:
    return SubscriberOut(
        **{k: getattr(row, k) for k in SubscriberOut.model_fields if k != "interests"},
        interests=subscribers.interests_of(conn, row.id),
    )


def _save(
    state: WebState, data: dict[str, Any], *, create: bool, sub_id: int | None = None
) -> tuple[int, bool]:
    """Validate and store one subscriber; returns (id, created). Every problem is reported
    at once (SubscriberError). With `sub_id`, that subscriber is updated, its address too."""
    entry = subscribers.check(data, default_max=state.settings.default_max_papers)
    try:
        return subscribers.save(
            state.engine,
            entry.address,
            entry.prefs,
            status=entry.status,
            now=state.clock(),
            create=create,
            subscriber_id=sub_id,
        )
    except SubscriberExists as exc:
        raise HTTPException(409, str(exc)) from exc


def _invalid(exc: SubscriberError) -> HTTPException:
    detail = [{"field": k, "error": v} for k, v in exc.fields.items()]
    detail += [{"field": f"interests[{n - 1}]", "error": v} for n, v in exc.lines.items()]
    return HTTPException(422, detail)


@router.get("/subscribers", summary="List or search subscribers")
def list_subscribers(
    state: Admin,
    q: Annotated[str | None, Query(description="Part of the email address.")] = None,
    status: SubscriberStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
    *,
    response: Response,
) -> list[SubscriberOut]:
    """One page of subscribers by id; the X-Total-Count header says how many match."""
    where = []
    if q:
        where.append(SUBSCRIBERS.c.email.contains(q.lower(), autoescape=True))
    if status:
        where.append(SUBSCRIBERS.c.status == status)
    query = sa.select(SUBSCRIBERS).where(*where).order_by(SUBSCRIBERS.c.id)
    with state.engine.connect() as conn:
        _total(conn, response, SUBSCRIBERS, *where)
        return [_out(conn, row) for row in conn.execute(query.limit(limit).offset(offset))]


def _total(conn: Connection, response: Response, table: sa.Table, *where: Any) -> None:
    """Set X-Total-Count: the rows of `table` matching `where`, all pages together."""
    total = conn.execute(sa.select(sa.func.count()).select_from(table).where(*where))
    response.headers["X-Total-Count"] = str(total.scalar_one())


@router.post("/subscribers", status_code=201, summary="Create a subscriber")
def create_subscriber(state: Admin, body: SubscriberIn) -> SubscriberOut:
    try:
        sub_id, _ = _save(state, body.model_dump(exclude_none=True), create=True)
    except SubscriberError as exc:
        raise _invalid(exc) from exc
    return get_subscriber(state, sub_id)


@router.get("/subscribers.csv", summary="Export subscribers as CSV")
def export_csv(state: Admin) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*CSV_FIELDS, "interests"])
    with state.engine.connect() as conn:
        for row in conn.execute(sa.select(SUBSCRIBERS).order_by(SUBSCRIBERS.c.id)):
            interests = " | ".join(subscribers.interests_of(conn, row.id))
            writer.writerow([cell(v) for v in (*(getattr(row, f) for f in CSV_FIELDS), interests)])
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="subscribers.csv"'},
    )


@router.post("/subscribers/import", summary="Import subscribers from CSV (as exported)")
async def import_csv(state: Admin, request: Request) -> ImportReport:
    """Create or update subscribers by address from a CSV; bad rows are reported, the rest
    stored, a thousand to a transaction. The body is read as it arrives and the rows are
    stored in a worker thread, so the web app, the scheduler and the sender sharing this
    event loop keep running during a long import."""
    rows = CsvImport(state.engine, state.clock, state.settings.default_max_papers)
    return await run_in_threadpool(rows.run, text_of(request.stream()))


@router.get("/subscribers/{sub_id}", summary="One subscriber")
def get_subscriber(state: Admin, sub_id: int) -> SubscriberOut:
    with state.engine.connect() as conn:
        row = subscribers.load(conn, sub_id)
        if row is None:
            raise HTTPException(404, f"no subscriber {sub_id}")
        return _out(conn, row)


@router.patch("/subscribers/{sub_id}", summary="Change a subscriber")
def update_subscriber(state: Admin, sub_id: int, body: SubscriberPatch) -> SubscriberOut:
    current = get_subscriber(state, sub_id).model_dump()
    current.update(body.model_dump(exclude_none=True))
    try:
        _save(state, current, create=False, sub_id=sub_id)
    except SubscriberError as exc:
        raise _invalid(exc) from exc
    return get_subscriber(state, sub_id)


@router.delete("/subscribers/{sub_id}", status_code=204, summary="Delete a subscriber")
def delete_subscriber(state: Admin, sub_id: int) -> Response:
    """Erase the subscriber and everything naming them; only an anonymous count is kept."""
    if not privacy.erase(state.engine, sub_id, state.clock(), "admin"):
        raise HTTPException(404, f"no subscriber {sub_id}")
    return Response(status_code=204)


@router.get("/subscribers/{sub_id}/export", summary="Everything stored about a subscriber")
def export_subscriber(state: Admin, sub_id: int) -> JSONResponse:
    """The same JSON the subscriber downloads from their preferences page."""
    with state.engine.connect() as conn:
        data = privacy.export(conn, sub_id)
    if data is None:
        raise HTTPException(404, f"no subscriber {sub_id}")
    attachment = f'attachment; filename="digest-subscriber-{sub_id}.json"'
    return JSONResponse(data, headers={"Content-Disposition": attachment})


@router.get("/papers", summary="Papers, newest first")
def list_papers(
    state: Admin,
    q: Annotated[str | None, Query(description="Part of the title.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
    *,
    response: Response,
) -> list[dict[str, Any]]:
    """One page of papers, newest first; X-Total-Count says how many match."""
    columns = [PAPERS.c[n] for n in ("id", "canonical_id", "title", "url", "first_seen_at")]
    where = [PAPERS.c.title.ilike(f"%{q}%")] if q else []
    query = sa.select(*columns, PAPERS.c.sources).where(*where)
    query = query.order_by(PAPERS.c.first_seen_at.desc(), PAPERS.c.id.desc())
    with state.engine.connect() as conn:
        _total(conn, response, PAPERS, *where)
        return [dict(r._mapping) for r in conn.execute(query.limit(limit).offset(offset))]


@router.get("/sources", summary="Sources and their last ingest")
def list_sources(state: Admin) -> list[dict[str, Any]]:
    result = []
    for name, kind, run in source_status(state.engine, state.settings):
        last = None
        if run is not None:
            fields = ("started_at", "finished_at", "fetched", "new", "updated", "error")
            last = {f: getattr(run, f) for f in fields}
        result.append({"source": name, "kind": kind, "last_run": last})
    return result


@router.get("/digests", summary="Digests with their status and last SMTP reply")
def list_digests(
    state: Admin,
    status: str | None = None,
    subscriber_id: int | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
    *,
    response: Response,
) -> list[dict[str, Any]]:
    """One page of digests, newest first; X-Total-Count says how many match."""
    names = ("id", "subscriber_id", "period", "status", "attempts", "created_at", "sent_at")
    columns = [DIGESTS.c[n] for n in (*names, "message_id", "last_reply", "matched_count")]
    where = [DIGESTS.c.status == status] if status else []
    if subscriber_id is not None:
        where.append(DIGESTS.c.subscriber_id == subscriber_id)
    query = sa.select(*columns).where(*where).order_by(DIGESTS.c.id.desc())
    with state.engine.connect() as conn:
        _total(conn, response, DIGESTS, *where)
        return [dict(r._mapping) for r in conn.execute(query.limit(limit).offset(offset))]


def _per_day(conn: Connection, column: Any, *where: Any, amount: Any = None) -> dict[date, int]:
    """Rows per UTC day of `column` (or the sum of `amount` over them)."""
    day: Any = sa.func.date(column)
    if conn.dialect.name == "postgresql":
        day = sa.cast(sa.func.timezone("UTC", column), sa.Date)
    total = sa.func.count() if amount is None else sa.func.sum(amount)
    rows = conn.execute(sa.select(day, total).where(*where).group_by(day))
    return {d if isinstance(d, date) else date.fromisoformat(d): int(n) for d, n in rows}


@router.get(
    "/stats",
    summary="Sent, failed, bounced, unsubscribed, erased and feedback clicks per day (UTC)",
)
def stats(state: Admin, days: Annotated[int, Query(ge=1, le=366)] = 30) -> list[dict[str, Any]]:
    now = state.clock()
    since = now - timedelta(days=days - 1)
    since = since.replace(hour=0, minute=0, second=0, microsecond=0)
    changed = SUBSCRIBERS.c.status_changed_at
    with state.engine.connect() as conn:
        counts = {
            "sent": _per_day(
                conn, DIGESTS.c.sent_at, DIGESTS.c.status == "sent", DIGESTS.c.sent_at >= since
            ),
            "failed": _per_day(
                conn,
                DIGESTS.c.created_at,
                DIGESTS.c.status == "failed",
                DIGESTS.c.created_at >= since,
            ),
            "bounced": _per_day(
                conn,
                changed,
                SUBSCRIBERS.c.status.in_([SubscriberStatus.bounced, SubscriberStatus.complained]),
                changed >= since,
            ),
            "unsubscribed": _per_day(
                conn,
                changed,
                SUBSCRIBERS.c.status == SubscriberStatus.unsubscribed,
                changed >= since,
            ),
            "erased": _per_day(
                conn, ERASURES.c.erased_at, ERASURES.c.erased_at >= since, amount=ERASURES.c.count
            ),
            "more_like_this": _per_day(
                conn,
                FEEDBACK.c.created_at,
                FEEDBACK.c.kind == FeedbackKind.more,
                FEEDBACK.c.created_at >= since,
            ),
            "not_for_me": _per_day(
                conn,
                FEEDBACK.c.created_at,
                FEEDBACK.c.kind == FeedbackKind.less,
                FEEDBACK.c.created_at >= since,
            ),
        }
    first = since.date()
    return [
        {"day": (first + timedelta(days=n)).isoformat()}
        | {name: per.get(first + timedelta(days=n), 0) for name, per in counts.items()}
        for n in range(days)
    ]

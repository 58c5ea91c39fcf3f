"""Operations endpoints: /healthz (liveness and the database) and /metrics (Prometheus)."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, PlainTextResponse

from digest.web.metrics import metrics_text
from digest.web.state import WebState, web

router = APIRouter(tags=["operations"])
State = Annotated[WebState, Depends(web)]


@router.get("/healthz", summary="Liveness and database check")
def healthz(state: State) -> JSONResponse:
    """200 when the database answers, 503 with its error when it does not."""
    try:
        with state.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        return JSONResponse({"status": "error", "database": str(exc)[:200]}, 503)
    return JSONResponse({"status": "ok", "database": "ok"})


@router.get("/metrics", summary="Prometheus metrics")
def metrics(state: State) -> PlainTextResponse:
    """Every metric in the Prometheus text format."""
    return PlainTextResponse(
        metrics_text(state), media_type="text/plain; version=0.0.4; charset=utf-8"
    )

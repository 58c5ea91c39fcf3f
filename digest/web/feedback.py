"""The pages behind a digest's "More like this" and "Not for me" links.

Opening a link records nothing (mail scanners open links): the page asks, and one button
press (a POST) records the choice, says what changes, and offers to undo it. The links
are signed per subscriber and paper, and revoked with the subscriber's other links.
"""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from digest import feedback, subscribers
from digest.feedback import KINDS_OF_PAPER, FeedbackError
from digest.models import PAPERS, FeedbackKind, SubscriberStatus
from digest.tokens import PREFERENCES, TokenError, TokenExpired, read_paper_token
from digest.web.emails import token
from digest.web.pages import EXPIRED, INVALID, REPLACED
from digest.web.state import LinkProblem, WebState, web

router = APIRouter(include_in_schema=False)
State = Annotated[WebState, Depends(web)]
MAX_AUTHORS = 6  # authors offered to mute


def _clicked(state: WebState, value: str, kind: str) -> tuple[Any, Any]:
    """(subscriber, paper) of a genuine, current feedback link, or LinkProblem."""
    if kind not in (FeedbackKind.more, FeedbackKind.less, "undo"):
        raise INVALID
    max_age = int(state.settings.link_days * 86400)  # as old as the email's other links
    try:
        sub_id, version, paper_id = read_paper_token(
            state.secret, value, max_age=max_age, now=state.clock()
        )
    except TokenExpired as exc:
        raise EXPIRED from exc
    except TokenError as exc:
        raise INVALID from exc
    with state.engine.connect() as conn:
        row = subscribers.load(conn, sub_id)
        paper = conn.execute(
            sa.select(PAPERS.c.id, PAPERS.c.title, PAPERS.c.authors).where(PAPERS.c.id == paper_id)
        ).first()
    if row is None or row.token_version != version or paper is None:
        raise REPLACED
    if row.status == SubscriberStatus.unsubscribed:
        raise REPLACED
    return row, paper


def _page(state: WebState, template: str, row: Any, paper: Any, **extra: Any) -> HTMLResponse:
    prefs = "/preferences/" + token(state, PREFERENCES, row.id, row.token_version)
    return state.page(
        template,
        title=paper.title,
        authors=list(paper.authors or ())[:MAX_AUTHORS],
        kinds=KINDS_OF_PAPER,
        preferences_url=prefs,
        **extra,
    )


@router.get("/feedback/{value}/{kind}", response_class=HTMLResponse)
def ask(value: str, kind: str, state: State) -> HTMLResponse:
    """The question, with the buttons that answer it; nothing is recorded yet."""
    row, paper = _clicked(state, value, kind)
    if kind == "undo":
        raise INVALID
    return _page(state, "feedback.html", row, paper, kind=kind, action=f"/feedback/{value}")


def _said(kind: str, reason: str, detail: str, title: str) -> str:
    """What the next digests will do with this click, in a sentence."""
    if kind == FeedbackKind.more:
        return f"Papers like “{title}” will rank higher in your next digests."
    if reason == "author":
        return f"Papers by {detail} will not reach you any more."
    if reason == "kind":
        return f"Papers that call themselves a {detail} will not reach you any more."
    return f"Papers like “{title}” will rank lower in your next digests."


@router.post("/feedback/{value}/{kind}", response_class=HTMLResponse)
async def answer(value: str, kind: str, request: Request, state: State) -> HTMLResponse:
    """Record the choice (again and again counts once), or undo it."""
    row, paper = _clicked(state, value, kind)
    if kind == "undo":
        feedback.undo(state.engine, row.id, paper.id)
        said = "Undone: nothing of it is kept."
        return _page(state, "feedback_done.html", row, paper, said=said, undo="")
    form = await request.form()
    reason, detail = "", ""
    if kind == FeedbackKind.less:
        if form.get("author"):
            reason, detail = "author", str(form["author"])
        elif form.get("paper_kind"):
            reason, detail = "kind", str(form["paper_kind"])
        else:
            reason = "topic"
    try:
        feedback.record(state.engine, row.id, paper.id, kind, reason, detail, now=state.clock())
    except FeedbackError as exc:
        raise LinkProblem(400, "That choice is not possible", str(exc)) from exc
    said = _said(kind, reason, detail, paper.title)
    return _page(state, "feedback_done.html", row, paper, said=said, undo=f"/feedback/{value}/undo")

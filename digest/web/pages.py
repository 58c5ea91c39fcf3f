"""Public pages: subscribe (with preview), confirm, preferences, unsubscribe, digests, feed."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from datetime import timedelta
from typing import Annotated, Any
from zoneinfo import available_timezones

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

from digest import feedback, privacy, subscribers
from digest.delivery.planning import Choice
from digest.delivery.views import paper_view
from digest.mail.render import PaperView
from digest.models import SubscriberStatus
from digest.subscribers import (
    Action,
    Line,
    Prefs,
    SubscriberError,
    SubscriberExists,
    normalise_email,
    validate_prefs,
)
from digest.tokens import (
    CONFIRM,
    DIGESTS,
    FEED,
    FEEDBACK,
    PREFERENCES,
    RESUBSCRIBE,
    UNSUBSCRIBE,
    TokenError,
    TokenExpired,
    make_feed_token,
    make_paper_tokens,
    read_address_token,
    read_feed_token,
    read_token,
)
from digest.web import accounts
from digest.web.emails import send_address_check, send_goodbye, send_sign_up, token
from digest.web.feed import atom
from digest.web.state import PAGE_HEADERS, LinkProblem, WebState, web

router = APIRouter(include_in_schema=False)
State = Annotated[WebState, Depends(web)]
TIMEZONES = sorted(available_timezones() - {"localtime", "Factory"})
HONEYPOT = "website"


def _max_age(state: WebState, purpose: str) -> int | None:
    settings = state.settings
    if purpose == CONFIRM:
        return int(settings.confirm_link_hours * 3600)
    if purpose in (UNSUBSCRIBE, FEED):
        return None  # an unsubscribe link only ever unsubscribes: it works for good
    return int(settings.link_days * 86400)


REPLACED = LinkProblem(
    410,
    "This link is no longer valid",
    "It was replaced by a newer one: use the link in the most recent email we sent you.",
)


EXPIRED = LinkProblem(
    410,
    "This link has expired",
    "For your safety, links in our emails expire. The newest email we sent you has "
    "a link that works, or sign up again to get a fresh one.",
)


GONE = LinkProblem(
    410,
    "This subscription no longer exists",
    "It was deleted, or never confirmed: we keep nothing of it and send it no more email. "
    "To get the digest again, sign up again.",
)
INVALID = LinkProblem(
    400,
    "This link is not valid",
    "The link is incomplete or has been changed. Copy the whole link from the email, "
    "or open it by clicking it.",
)


def read_link(state: WebState, purpose: str, value: str) -> tuple[int, int]:
    """(subscriber id, token version) of a genuine, unexpired link, or LinkProblem."""
    try:
        return read_token(
            state.secret, purpose, value, max_age=_max_age(state, purpose), now=state.clock()
        )
    except TokenExpired as exc:
        raise EXPIRED from exc
    except TokenError as exc:
        raise INVALID from exc


def subscriber_for(state: WebState, purpose: str, value: str) -> Any:
    """The subscriber a link names, or LinkProblem (tampered, expired or revoked)."""
    sub_id, version = read_link(state, purpose, value)
    with state.engine.connect() as conn:
        row = subscribers.load(conn, sub_id)
    if row is None:
        raise GONE
    if row.token_version != version:
        raise REPLACED
    return row


def _form_context(values: dict[str, Any], error: SubscriberError | None = None) -> dict[str, Any]:
    lines = str(values.get("interests", "")).splitlines()
    return {
        "values": values,
        "timezones": TIMEZONES,
        "errors": defaultdict(str, error.fields if error else {}),
        "line_errors": [
            (n, lines[n - 1] if n <= len(lines) else "", message)
            for n, message in sorted((error.lines if error else {}).items())
        ],
    }


def _defaults(state: WebState) -> dict[str, Any]:
    s = state.settings
    return {
        "email": "",
        "interests": "",
        "timezone": s.default_timezone,
        "send_hour": s.default_send_hour,
        "cadence": "daily",
        "weekday": 0,
        "max_papers": s.default_max_papers,
    }


def _subscribe_page(
    state: WebState, values: dict[str, Any], status: int = 200, **extra: Any
) -> HTMLResponse:
    error = extra.pop("error", None)
    return state.page("subscribe.html", status, **_form_context(values, error), **extra)


@router.get("/", response_class=HTMLResponse)
@router.get("/subscribe", response_class=HTMLResponse)
def subscribe_form(state: State) -> HTMLResponse:
    """The sign-up form."""
    return _subscribe_page(state, _defaults(state))


# What the forms submit; anything else a request carries is ignored.
FORM_FIELDS = ("email", "interests", "timezone", "send_hour", "cadence", "weekday", "max_papers")


def _fields(form: Any) -> dict[str, Any]:
    return {name: str(form[name]) for name in FORM_FIELDS if name in form}


def _with_added(values: dict[str, Any], form: Any) -> bool:
    """Add the related term the reader pressed as a line of its own (once); True if pressed."""
    added = str(form.get("add", "")).strip()
    if not added:
        return False
    lines = [line for line in str(values.get("interests", "")).splitlines() if line.strip()]
    if added.casefold() not in {line.strip().casefold() for line in lines}:
        lines.append(added)
    values["interests"] = "\n".join(lines)
    return True


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/subscribe", response_class=HTMLResponse)
async def subscribe(request: Request, state: State) -> HTMLResponse:
    """Sign up (pending until confirmed), or preview matches when that button was pressed."""
    form = await request.form()
    values = {**_defaults(state), **_fields(form)}
    if _with_added(values, form) or form.get("action") == "preview":
        state.check_limit(state.previews, _client(request))
        found, errors = _previewable(values["interests"])
        problem = SubscriberError({}, errors) if errors else None
        result = await state.preview(found)
        return _subscribe_page(state, values, error=problem, preview=result)
    sent = state.page("sent.html", email=values["email"].strip())
    started = time.monotonic()
    if form.get(HONEYPOT):  # A bot filled the hidden field: answer as usual, store nothing.
        await _no_sooner_than(started, state.settings.subscribe_answer_seconds)
        return sent
    fields: dict[str, str] = {}
    try:
        address = normalise_email(values["email"])
    except SubscriberError:
        address = ""
        fields["email"] = "enter a valid email address, such as name@example.org"
    try:
        prefs = validate_prefs(values, default_max=state.settings.default_max_papers)
    except SubscriberError as exc:
        exc.fields.update(fields)
        return _subscribe_page(state, values, 422, error=exc)
    if fields:
        return _subscribe_page(state, values, 422, error=SubscriberError(fields))
    try:
        return await _sign_up(state, request, address, prefs, values) or sent
    finally:
        await _no_sooner_than(started, state.settings.subscribe_answer_seconds)


async def _sign_up(
    state: WebState, request: Request, address: str, prefs: Prefs, values: dict[str, Any]
) -> HTMLResponse | None:
    """Record the sign-up and send its email; the form again (503) if the email failed."""
    state.check_limit(state.per_ip, _client(request))
    state.check_limit(state.per_address, address)
    state.check_limit(state.sign_ups, "all")
    signup = subscribers.request_subscription(state.engine, address, prefs, state.clock())
    if signup.action in (Action.confirm, Action.manage) and not await send_sign_up(state, signup):
        assert signup.subscriber_id is not None
        subscribers.email_failed(state.engine, signup.subscriber_id)
        return _subscribe_page(state, values, 503, unsent=True)
    return None


async def _no_sooner_than(started: float, seconds: float) -> None:
    """Wait until `seconds` after `started`: every sign-up answers after the same time,
    whether an email was sent (new address) or not (bounced, or mailed within the hour)."""
    left = started + seconds - time.monotonic()
    if left > 0:
        await asyncio.sleep(left)


def _previewable(text: str) -> tuple[list[Line], dict[int, str]]:
    """The interest lines a preview matches, and the errors by line number: as many lines
    as a subscription may have; the rest is neither parsed nor matched, and says so."""
    lines = text.splitlines()
    typed = [n for n, line in enumerate(lines) if line.strip()]
    cut = typed[subscribers.MAX_INTERESTS] if len(typed) > subscribers.MAX_INTERESTS else None
    found, errors = subscribers.parse_interests("\n".join(lines[:cut]))
    if cut is not None:
        most = subscribers.MAX_INTERESTS
        errors[cut + 1] = (
            f"at most {most} interests: this line and those after it are not previewed"
        )
    return found, errors


@router.post("/preview", response_class=HTMLResponse)
async def preview_fragment(request: Request, state: State) -> HTMLResponse:
    """The preview as an HTML fragment, for the page's script (live while typing)."""
    state.check_limit(state.previews, _client(request))
    form = await request.form()
    text = str(form.get("interests", ""))
    found, errors = _previewable(text)
    lines = text.splitlines()
    result = await state.preview(found)
    line_errors = [(n, lines[n - 1], m) for n, m in sorted(errors.items())]
    form_id = "preferences" if form.get("form") == "preferences" else "subscribe"
    return state.page("_preview.html", preview=result, line_errors=line_errors, form_id=form_id)


@router.get("/confirm/{value}", response_class=HTMLResponse)
def confirm_page(value: str, state: State) -> HTMLResponse:
    """One button that confirms (a GET alone does not: mail scanners follow links)."""
    row = subscriber_for(state, CONFIRM, value)
    if row.status != SubscriberStatus.pending:
        return _already(state, row)
    return state.page("confirm.html", email=row.email, action=f"/confirm/{value}")


def _already(state: WebState, row: Any) -> HTMLResponse:
    prefs = "/preferences/" + token(state, PREFERENCES, row.id, row.token_version)
    return state.page(
        "message.html",
        title="You are subscribed",
        text=f"{row.email} receives the digest.",
        link=(prefs, "Change your interests"),
    )


@router.post("/confirm/{value}", response_class=HTMLResponse)
def confirm(value: str, state: State) -> HTMLResponse:
    """Activate the pending subscriber the link names."""
    row = subscriber_for(state, CONFIRM, value)
    subscribers.confirm(state.engine, row.id, state.clock())
    return _already(state, row)


def _prefs_values(conn: Any, row: Any) -> dict[str, Any]:
    return {
        "email": row.email,
        "interests": "\n".join(subscribers.interests_of(conn, row.id)),
        "timezone": row.timezone,
        "send_hour": row.send_hour,
        "cadence": row.cadence,
        "weekday": row.weekday,
        "max_papers": row.max_papers,
        "paused": row.status == SubscriberStatus.paused,
    }


def _prefs_page(
    state: WebState, value: str, row: Any, values: dict[str, Any], status: int = 200, **extra: Any
) -> HTMLResponse:
    error = extra.pop("error", None)
    with state.engine.connect() as conn:
        digests = accounts.recent_digests(conn, row.id)
        learned = feedback.learned(conn, row.id)
    digest_token = token(state, DIGESTS, row.id, row.token_version)
    return state.page(
        "preferences.html",
        status,
        **_form_context(values, error),
        row=row,
        action=f"/preferences/{value}",
        digests=[(d, f"/{DIGESTS}/{digest_token}/{d.id}") for d in digests],
        feed_url=state.link(
            FEED, make_feed_token(state.secret, row.id, row.token_version, row.feed_version)
        ),
        unsubscribe_url="/unsubscribe/" + token(state, UNSUBSCRIBE, row.id, row.token_version),
        learned=learned,
        proposal=feedback.proposal(learned, str(values.get("interests", "")).splitlines()),
        **extra,
    )


@router.get("/preferences/{value}", response_class=HTMLResponse)
def preferences_form(value: str, state: State) -> HTMLResponse:
    """The subscriber's settings, editable, and their last digests."""
    row = subscriber_for(state, PREFERENCES, value)
    with state.engine.connect() as conn:
        values = _prefs_values(conn, row)
    return _prefs_page(state, value, row, values)


@router.post("/preferences/{value}", response_class=HTMLResponse)
async def preferences(value: str, request: Request, state: State) -> HTMLResponse:
    """Save edited settings; invalid interest lines are shown and nothing is changed."""
    row = subscriber_for(state, PREFERENCES, value)
    form = await request.form()
    values: dict[str, Any] = _fields(form)
    values.update(email=row.email, paused=bool(form.get("paused")))
    if _with_added(values, form):
        # A related term pressed: shown in the box with its preview, saved only by Save.
        state.check_limit(state.previews, _client(request))
        found, _ = _previewable(values["interests"])
        result = await state.preview(found)
        return _prefs_page(state, value, row, values, preview=result, added=True)
    try:
        prefs: Prefs = validate_prefs(values, default_max=state.settings.default_max_papers)
    except SubscriberError as exc:
        return _prefs_page(state, value, row, values, 422, error=exc)
    subscribers.update_preferences(
        state.engine, row.id, prefs, paused=values["paused"], now=state.clock()
    )
    row = subscriber_for(state, PREFERENCES, value)
    return _prefs_page(state, value, row, values, saved=True)


@router.post("/preferences/{value}/feedback", response_class=HTMLResponse)
async def forget_feedback(value: str, request: Request, state: State) -> HTMLResponse:
    """Remove one thing the digest learned (`paper`), or all of it (`all`), or add the line
    proposed from it (`accept`)."""
    row = subscriber_for(state, PREFERENCES, value)
    form = await request.form()
    if form.get("accept"):
        with state.engine.connect() as conn:
            values = _prefs_values(conn, row)
        values["interests"] = f"{values['interests']}\n{form['accept']}".strip()
        try:
            prefs = validate_prefs(values, default_max=state.settings.default_max_papers)
        except SubscriberError as exc:
            return _prefs_page(state, value, row, values, 422, error=exc)
        subscribers.update_preferences(
            state.engine, row.id, prefs, paused=values["paused"], now=state.clock()
        )
        return _prefs_page(state, value, row, values, saved=True)
    if form.get("all"):
        feedback.forget(state.engine, row.id)
    elif str(form.get("paper", "")).isdigit():
        feedback.undo(state.engine, row.id, int(str(form["paper"])))
    with state.engine.connect() as conn:
        values = _prefs_values(conn, row)
    return _prefs_page(state, value, row, values, forgotten=True)


@router.post("/preferences/{value}/address", response_class=HTMLResponse)
async def change_address(value: str, request: Request, state: State) -> HTMLResponse:
    """Send a link to the new address; the address changes only when it is opened there."""
    row = subscriber_for(state, PREFERENCES, value)
    new = str((await request.form()).get("new_email", ""))
    with state.engine.connect() as conn:
        values = _prefs_values(conn, row)
    try:
        address = normalise_email(new)
    except SubscriberError as exc:
        values["new_email"] = new
        return _prefs_page(state, value, row, values, 422, address_error=exc.fields["email"])
    if address == row.email:
        values["new_email"] = new
        problem = f"{address} is already your address"
        return _prefs_page(state, value, row, values, 422, address_error=problem)
    # Each link is an email to an address someone typed: the sign-up's limits, and a few
    # changes an hour per subscriber.
    state.check_limit(state.per_ip, _client(request))
    state.check_limit(state.address_changes, str(row.id))
    state.check_limit(state.per_address, address)
    state.check_limit(state.sign_ups, "all")
    if not await send_address_check(state, row, address):
        values["new_email"] = new
        problem = "our mail server did not accept the email; try again in a little while"
        return _prefs_page(state, value, row, values, 503, address_error=problem)
    return _prefs_page(state, value, row, values, address_sent=address)


@router.get("/address/{value}", response_class=HTMLResponse)
def address_page(value: str, state: State) -> HTMLResponse:
    """One button that moves the digests to the new address (a GET alone does not)."""
    row, new = _address_change(state, value)
    return state.page(
        "message.html",
        title="Use this address?",
        text=f"The digests of {row.email} will come to {new} from now on.",
        button=(f"/address/{value}", "Use this address"),
    )


@router.post("/address/{value}", response_class=HTMLResponse)
def address_confirmed(value: str, state: State) -> HTMLResponse:
    """Move the digests to the new address, unless another subscriber has it."""
    row, new = _address_change(state, value)
    try:
        subscribers.change_address(state.engine, row.id, new)
    except SubscriberExists:
        return state.page(
            "message.html",
            409,
            title="This address already gets digests",
            text=f"{new} has a subscription of its own. Unsubscribe or delete that one first "
            "(from any of its emails), then open this link again.",
        )
    return state.page(
        "message.html",
        title="Your address is changed",
        text=f"Your digests come to {new} from now on. The links in earlier emails still work.",
    )


def _address_change(state: WebState, value: str) -> tuple[Any, str]:
    """The subscriber and new address an address link names, or LinkProblem (also once
    used: the address it moves from is no longer the subscriber's)."""
    max_age = int(state.settings.confirm_link_hours * 3600)
    try:
        sub_id, version, old, new = read_address_token(
            state.secret, value, max_age=max_age, now=state.clock()
        )
    except TokenExpired as exc:
        raise EXPIRED from exc
    except TokenError as exc:
        raise LinkProblem(
            400, "This link is not valid", "Copy the whole link from the email."
        ) from exc
    with state.engine.connect() as conn:
        row = subscribers.load(conn, sub_id)
    if row is None or row.token_version != version or row.email != old:
        raise REPLACED
    return row, new


@router.post("/preferences/{value}/feed", response_class=HTMLResponse)
def new_feed_url(value: str, state: State) -> HTMLResponse:
    """Replace the feed address: the old one stops working at once."""
    row = subscriber_for(state, PREFERENCES, value)
    subscribers.new_feed_address(state.engine, row.id)
    with state.engine.connect() as conn:
        row = subscribers.load(conn, row.id)
        values = _prefs_values(conn, row)
    return _prefs_page(state, value, row, values, new_feed=True)


@router.get("/preferences/{value}/data")
def download_data(value: str, state: State) -> JSONResponse:
    """Everything stored about the subscriber, as a JSON file."""
    row = subscriber_for(state, PREFERENCES, value)
    with state.engine.connect() as conn:
        data = privacy.export(conn, row.id)
    if data is None:
        raise REPLACED
    headers = {**PAGE_HEADERS, "Content-Disposition": 'attachment; filename="digest-my-data.json"'}
    return JSONResponse(data, headers=headers)


@router.get("/preferences/{value}/erase", response_class=HTMLResponse)
def erase_page(value: str, state: State) -> HTMLResponse:
    """One button that erases the subscriber (nothing happens until it is pressed)."""
    row = subscriber_for(state, PREFERENCES, value)
    return state.page(
        "message.html",
        title="Delete everything about you?",
        text=f"This erases {row.email}, your interests, what your digest learned and the "
        "digests sent to you. It cannot be undone: signing up again starts afresh.",
        button=(f"/preferences/{value}/erase", "Delete me"),
        danger=True,
    )


@router.post("/preferences/{value}/erase", response_class=HTMLResponse)
def erase(value: str, state: State) -> HTMLResponse:
    """Erase the subscriber; only an anonymous count is kept."""
    row = subscriber_for(state, PREFERENCES, value)
    privacy.erase(state.engine, row.id, state.clock(), "self")
    return state.page(
        "message.html",
        title="Everything about you is deleted",
        text="Your address, interests, feedback and digests are gone; you will get no more "
        "email from us, and every link in the emails we sent you no longer works.",
    )


def _unsubscribing(state: WebState, value: str) -> Any:
    """The subscriber an unsubscribe link names (any of its links, however old, will do),
    or None when that subscriber was erased."""
    sub_id, _ = read_link(state, UNSUBSCRIBE, value)
    with state.engine.connect() as conn:
        return subscribers.load(conn, sub_id)


@router.get("/unsubscribe/{value}", response_class=HTMLResponse)
def unsubscribe_page(value: str, state: State) -> HTMLResponse:
    """One button that unsubscribes; a link used before says so."""
    row = _unsubscribing(state, value)
    if row is None:  # erased: nothing will be sent to it, which is what was asked
        return state.page("unsubscribed.html", email="This address", action=None)
    if row.status == SubscriberStatus.unsubscribed:
        return state.page("unsubscribed.html", email=row.email, action=None)
    return state.page("unsubscribe.html", email=row.email, action=f"/unsubscribe/{value}")


@router.post("/unsubscribe/{value}", response_class=HTMLResponse)
async def unsubscribe(value: str, request: Request, state: State) -> HTMLResponse:
    """RFC 8058 one-click target (no cookie, login or redirect) and the page's button.

    Any unsubscribe link of the address works, however old (Gmail and Yahoo require
    one-click to be honoured); a second use answers the same, without the way back,
    which only the request that unsubscribed offers.
    """
    row = _unsubscribing(state, value)
    if row is None:  # erased: one-click must still answer that it is done
        return state.page("unsubscribed.html", email="This address", action=None)
    form = await request.form()
    version = subscribers.unsubscribe(state.engine, row.id, state.clock())
    if version is None:  # already unsubscribed: clients may POST twice
        return state.page("unsubscribed.html", email=row.email, action=None)
    if form.get("source") == "page":
        await send_goodbye(state, row.email, row.id, version)
    again = "/resubscribe/" + token(state, RESUBSCRIBE, row.id, version)
    return state.page("unsubscribed.html", email=row.email, action=again)


@router.get("/resubscribe/{value}", response_class=HTMLResponse)
def resubscribe_page(value: str, state: State) -> HTMLResponse:
    """One button that subscribes an unsubscribed address again."""
    row = subscriber_for(state, RESUBSCRIBE, value)
    if row.status != SubscriberStatus.unsubscribed:
        return _already(state, row)
    return state.page(
        "message.html",
        title="Subscribe again?",
        text=f"{row.email} will receive the digest again, with the interests it had.",
        button=(f"/resubscribe/{value}", "Subscribe again"),
    )


@router.post("/resubscribe/{value}", response_class=HTMLResponse)
def resubscribe(value: str, state: State) -> HTMLResponse:
    """Make the unsubscribed subscriber active again."""
    row = subscriber_for(state, RESUBSCRIBE, value)
    done = subscribers.resubscribe(state.engine, row.id, state.clock())
    if not done and row.status == SubscriberStatus.unsubscribed:
        raise LinkProblem(409, "Please sign up again", "This address was never confirmed.")
    return _already(state, row)


@router.get("/digests/{value}/{digest_id}", response_class=HTMLResponse)
def digest_page(value: str, digest_id: int, state: State) -> HTMLResponse:
    """Every paper of one of the subscriber's digests."""
    row = subscriber_for(state, DIGESTS, value)
    with state.engine.connect() as conn:
        found = accounts.recent_digests(conn, row.id, only=digest_id)
        if not found:
            raise LinkProblem(404, "No such digest", "This digest is not one of yours.")
        rows = accounts.digest_papers(conn, digest_id)
    groups: dict[str, list[tuple[PaperView, str, str]]] = {}
    links = make_paper_tokens(state.secret, row.id, row.token_version, (p.id for p in rows))
    for paper in rows:
        choice = Choice(paper.id, paper.score, paper.interest, tuple(paper.terms))
        status = "sent" if paper.sent_in == digest_id else "later" if paper.sent_in else "held"
        feedback_url = f"/{FEEDBACK}/{links[paper.id]}"
        groups.setdefault(paper.interest, []).append(
            (paper_view(paper, choice), status, feedback_url)
        )
    held = sum(1 for paper in rows if paper.sent_in is None)
    return state.page(
        "digest.html", digest=found[0], groups=list(groups.items()), total=len(rows), held=held
    )


@router.get("/feed/{value}")
def feed(value: str, state: State) -> Response:
    """The subscriber's private Atom feed: the papers their digests sent."""
    try:
        sub_id, version, feed_version = read_feed_token(state.secret, value)
    except TokenError as exc:
        raise LinkProblem(400, "This feed address is not valid", str(exc)) from exc
    with state.engine.connect() as conn:
        row = subscribers.load(conn, sub_id)
    if row is None or (row.token_version, row.feed_version) != (version, feed_version):
        raise LinkProblem(
            410,
            "This feed address is no longer valid",
            "It was replaced by a newer one: the preferences page shows the current address.",
        )
    with state.engine.connect() as conn:
        papers = accounts.feed_papers(conn, row.id)
    links = make_paper_tokens(state.secret, row.id, row.token_version, (p.id for p in papers))
    actions = {pid: state.link(FEEDBACK, link) for pid, link in links.items()}
    body = atom(state.link(FEED, value), row, papers, state.clock(), actions)
    # The feed names the address: the same headers as the pages (no referrer, no cache).
    return Response(body, media_type="application/atom+xml; charset=utf-8", headers=PAGE_HEADERS)


@router.get("/static/web.js")
def script(state: State) -> Response:
    """The small optional script: time zone from the browser, live preview."""
    loader = state.pages.loader
    assert loader is not None
    source = loader.get_source(state.pages, "web/web.js")[0]
    return Response(
        source,
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": f"public, max-age={int(timedelta(hours=1).total_seconds())}"},
    )

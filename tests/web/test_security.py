"""Security over HTTP: every route that takes a link token, the admin API's key, oversized
request bodies and a weak signing key.

Every route whose path holds a token (read from the routers, so a new one is tried too)
gets forged, tampered, cut, spliced, expired, cross-purpose and revoked tokens: each is
refused with a 4xx page that changes nothing in the database, sends no email and names
nobody, and the genuine token then works (so the refusals are the token's doing). Every
admin route is refused without the key, with a wrong one and with the API off. Bodies past
their limit get 413 before anything is stored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import APIRouter
from fastapi.routing import APIRoute
from pydantic import SecretStr
from sqlalchemy import Engine
from starlette.routing import BaseRoute
from typer.testing import CliRunner

from digest import feedback, models, subscribers
from digest.cli import app as cli
from digest.config import Settings
from digest.models import PAPERS, SUBSCRIBERS, FeedbackKind, SubscriberStatus
from digest.sources.ingest import PaperIn, store
from digest.tokens import (
    ADDRESS,
    CONFIRM,
    DIGESTS,
    FEED,
    FEEDBACK,
    PREFERENCES,
    RESUBSCRIBE,
    UNSUBSCRIBE,
    make_address_token,
    make_feed_token,
    make_paper_tokens,
    make_token,
)
from digest.web.admin import router as admin_router
from digest.web.app import create_app
from digest.web.feedback import router as feedback_router
from digest.web.pages import router as pages_router
from tests.kit.env import SECRET
from tests.kit.seeds import T0, send_digest
from tests.kit.smtp import SmtpSink
from tests.kit.web import ADMIN, Clock, client, form, server, web_settings

ADA, BOB = "ada@example.org", "bob@example.org"
NEW_ADA = "ada.new@example.org"  # the address ada moves to (ADDRESS links sign it)
INTEREST = "zygomorphic"
# What no refusal may show: the addresses (as text and in a URL) and what ada reads about.
PRIVATE = (ADA, BOB, NEW_ADA, "ada%40example.org", INTEREST)
PAPERS_IN = [
    PaperIn(id="2411.70001v1", title="Zygomorphic flowers", abstract="Zygomorphic bees."),
    PaperIn(id="2411.70002v1", title="Zygomorphic orchids", abstract="Zygomorphic symmetry."),
]
LONG_AGO = timedelta(days=400)  # past every purpose's expiry (48 hours, 90 days)
# What the refusal pages say (a link, or the feed's address).
INVALID, EXPIRED, REPLACED = "is not valid", "has expired", "is no longer valid"
# A token's purpose is named by the first segment of the route's path.
PURPOSES = {
    "confirm": CONFIRM,
    "address": ADDRESS,
    "preferences": PREFERENCES,
    "unsubscribe": UNSUBSCRIBE,
    "resubscribe": RESUBSCRIBE,
    "feed": FEED,
    "digests": DIGESTS,
    "feedback": FEEDBACK,
}
NEVER_EXPIRE = (UNSUBSCRIBE, FEED, FEEDBACK)  # FEEDBACK: see test_an_old_feedback_link...
# The state in which the genuine link does something (POST) or shows something (GET).
STATUS = {CONFIRM: SubscriberStatus.pending, RESUBSCRIBE: SubscriberStatus.unsubscribed}
# What the POST routes are sent: valid, so that an accepted bad token would change something.
FORMS = {
    "/preferences/{value}": {**form(interests="orchids"), "send_hour": "5"},
    "/preferences/{value}/feedback": {"all": "1"},
    "/preferences/{value}/address": {"new_email": NEW_ADA},
    "/unsubscribe/{value}": {"List-Unsubscribe": "One-Click"},
}
MB = 1024 * 1024


def _api_routes(routes: Sequence[BaseRoute]) -> Iterator[APIRoute]:
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI keeps routers whole
        if isinstance(included, APIRouter):
            yield from _api_routes(included.routes)
        elif isinstance(route, APIRoute):
            yield route


def _routes(*routers: APIRouter) -> list[tuple[str, str]]:
    """(method, path) of every route of these routers (and of the routers they include)."""
    return sorted(
        (method, route.path)
        for router in routers
        for route in _api_routes(router.routes)
        for method in route.methods or ()
    )


@dataclass(frozen=True)
class Link:
    """One route that takes a token (a feedback route once per kind)."""

    method: str
    path: str
    kind: str = ""

    def __str__(self) -> str:
        return f"{self.method} {self.path.replace('{kind}', self.kind)}"

    @property
    def purpose(self) -> str:
        return PURPOSES.get(self.path.split("/")[1], "")


def _links() -> list[Link]:
    links: list[Link] = []
    for method, path in _routes(pages_router, feedback_router):
        if "{kind}" in path:  # GET .../undo is no page: the undo is a button (POST)
            kinds = ("more", "less", "undo") if method == "POST" else ("more", "less")
            links += [Link(method, path, kind) for kind in kinds]
        elif "{value}" in path:
            links.append(Link(method, path))
    return links


LINKS = _links()
ADMIN_ROUTES = _routes(admin_router)


@dataclass
class World:
    """Ada and Bob, each sent a digest of the two papers; ada liked the first one, then her
    links were revoked once (token version 2), and she is in the state a link needs."""

    ada: int
    bob: int
    liked: int
    other: int
    digest: int
    bob_digest: int
    feed_version: int
    clock: Clock

    def token(
        self,
        purpose: str,
        *,
        version: int = 2,
        key: str = SECRET,
        ago: timedelta = timedelta(0),
        paper: int | None = None,
        who: int | None = None,
        feed: int | None = None,
    ) -> str:
        """A link token for ada (or `who`), current unless told otherwise."""
        whom = self.ada if who is None else who
        if purpose == FEED:  # the feed's lasting address, with no time in it
            assert not ago, "feed addresses are not timed"
            return make_feed_token(key, whom, version, feed or self.feed_version)
        if purpose == ADDRESS:
            old = ADA if whom == self.ada else BOB
            change = (old, NEW_ADA)
            return make_address_token(key, whom, version, change, now=self.clock.now - ago)
        if purpose == FEEDBACK:
            assert not ago, "feedback tokens are always signed now"
            chosen = self.other if paper is None else paper
            return make_paper_tokens(key, whom, version, [chosen])[chosen]
        return make_token(key, purpose, whom, version, now=self.clock.now - ago)

    def paper(self, link: Link) -> int:
        return self.liked if link.kind == "undo" else self.other

    def url(self, link: Link, value: str, digest: int | None = None) -> str:
        path = link.path.replace("{value}", value).replace("{kind}", link.kind)
        path = path.replace("{digest_id}", str(self.digest if digest is None else digest))
        assert "{" not in path, f"{link}: a path parameter this suite does not fill"
        return path


def _pairs(rows: Any) -> dict[Any, int]:
    return {key: int(value) for key, value in rows}


def _world(
    engine: Engine, settings: Settings, status: SubscriberStatus, *, new_feed: bool = True
) -> World:
    store(engine, PAPERS_IN, now=T0 - timedelta(hours=1))
    for email in (ADA, BOB):
        subscribers.subscribe(engine, email, [INTEREST], now=T0 - timedelta(days=1))
    send_digest(engine, settings, T0)
    with engine.connect() as conn:
        ids = _pairs(conn.execute(sa.select(SUBSCRIBERS.c.email, SUBSCRIBERS.c.id)))
        papers = _pairs(conn.execute(sa.select(PAPERS.c.title, PAPERS.c.id)))
        sent = _pairs(
            conn.execute(
                sa.select(models.DIGESTS.c.subscriber_id, models.DIGESTS.c.id).where(
                    models.DIGESTS.c.status == "sent"
                )
            )
        )
    ada, liked = ids[ADA], papers["Zygomorphic flowers"]
    assert feedback.record(engine, ada, liked, FeedbackKind.more, now=T0)
    assert subscribers.unsubscribe(engine, ada, T0) == 2  # revokes her version-1 links
    if new_feed:
        subscribers.new_feed_address(engine, ada)  # her first feed address stops working
    if status == SubscriberStatus.active:
        assert subscribers.resubscribe(engine, ada, T0)
    elif status == SubscriberStatus.pending:
        prefs = subscribers.validate_prefs({"interests": INTEREST})
        subscribers.request_subscription(engine, ADA, prefs, T0)
    with engine.connect() as conn:
        row = subscribers.load(conn, ada)
    assert row is not None
    assert (row.status, row.token_version) == (status, 2)
    other = papers["Zygomorphic orchids"]
    return World(ada, ids[BOB], liked, other, sent[ada], sent[ids[BOB]], row.feed_version, Clock())


def _snapshot(engine: Engine) -> dict[str, list[str]]:
    """Every row of every table, to tell whether a request changed anything."""
    with engine.connect() as conn:
        return {
            name: sorted(
                repr(tuple(row)) for row in conn.execute(sa.text(f'SELECT * FROM "{name}"'))
            )
            for name in sa.inspect(conn).get_table_names()
        }


Effects = tuple[dict[str, list[str]], int]


def _effects(engine: Engine, smtp: SmtpSink) -> Effects:
    """What a request can do: the database's rows, and the emails sent so far."""
    return _snapshot(engine), len(smtp.received)


def _leaks(answer: httpx.Response) -> list[str]:
    shown = (answer.text + " ".join(answer.headers.values())).lower()
    return [private for private in PRIVATE if private in shown]


def _refusal(
    answer: httpx.Response, status: int, phrase: str, before: Effects, after: Effects
) -> Iterator[str]:
    """What is wrong with a refusal (nothing when it is as it should be)."""
    if answer.status_code != status:
        yield f"answered {answer.status_code}, not {status}"
    if phrase not in answer.text:
        yield f"the page does not say {phrase!r}: {answer.text[:200]!r}"
    if not answer.headers.get("content-type", "").startswith("text/html"):
        yield f"not a page: {answer.headers.get('content-type')}"
    if answer.headers.get("referrer-policy") != "no-referrer":
        yield "the page lets its address (the token) leak through Referer"
    if leaked := _leaks(answer):
        yield f"shows {leaked}"
    if after[0] != before[0]:
        yield "changed the database"
    if after[1] != before[1]:
        yield "sent an email"


def _tampered(token: str) -> Iterator[tuple[str, str]]:
    """The token with one character changed in its payload, its time (if timed) and its
    signature (not the last character, whose low bits base64 ignores). A compressed
    payload (a long one) starts with "." and keeps it."""
    compressed = token.startswith(".")
    pieces = token.removeprefix(".").split(".")
    assert len(pieces) in (2, 3), token
    names = ("payload", "timestamp", "signature") if len(pieces) == 3 else ("payload", "signature")
    for part, where in enumerate(names):
        changed = list(pieces)
        piece = pieces[part]
        middle = len(piece) // 2
        changed[part] = (
            piece[:middle] + ("B" if piece[middle] == "A" else "A") + piece[middle + 1 :]
        )
        yield where, "." * compressed + ".".join(changed)


def _attacks(link: Link, w: World) -> Iterator[tuple[str, str, int, str]]:
    """(what, token, status, what the page says) for every bad token of this route."""
    purpose, paper = link.purpose, w.paper(link)
    genuine = w.token(purpose, paper=paper)
    yield (
        "forged with the old default key",
        w.token(purpose, key="change-me", paper=paper),
        400,
        INVALID,
    )
    yield "forged with another long key", w.token(purpose, key="k" * 48, paper=paper), 400, INVALID
    for where, tampered in _tampered(genuine):
        yield f"tampered ({where})", tampered, 400, INVALID
    yield "cut short", genuine[:-4], 400, INVALID
    yield "not a token", "x", 400, INVALID
    bob = w.token(purpose, version=1, paper=paper, who=w.bob)
    marker = "." if bob.startswith(".") else ""  # a compressed payload
    bobs = bob.removeprefix(".").split(".")[0]
    rest = genuine.removeprefix(".").split(".")[1:]
    yield "bob's payload, ada's signature", marker + ".".join([bobs, *rest]), 400, INVALID
    for other in PURPOSES.values():
        if other != purpose:
            yield f"a genuine {other} token", w.token(other, paper=paper), 400, INVALID
    timed_feed = make_token(SECRET, FEED, w.ada, 2, now=w.clock.now)  # feed URLs of old
    if purpose == FEED:
        yield "the replaced feed address", w.token(FEED, feed=w.feed_version - 1), 410, REPLACED
        yield "a timed feed token (the first address)", timed_feed, 410, REPLACED
    else:
        yield "a timed feed token", timed_feed, 400, INVALID
    if purpose not in NEVER_EXPIRE:
        yield "expired", w.token(purpose, ago=LONG_AGO), 410, EXPIRED
    if purpose != UNSUBSCRIBE:  # an unsubscribe link is never revoked
        yield "revoked", w.token(purpose, version=1, paper=paper), 410, REPLACED


def _ask(http: httpx.Client, link: Link, url: str) -> httpx.Response:
    data = FORMS.get(link.path) if link.method == "POST" else None
    return http.request(link.method, url, data=data)


def test_the_suite_tries_every_route_that_takes_a_token_or_the_admin_key(
    settings: Settings, engine: Engine
) -> None:
    app = create_app(web_settings(settings), engine)
    served = _routes(app.router)
    taking = {(m, p) for m, p in served if "{value}" in p or "{token}" in p}
    assert taking == {(link.method, link.path) for link in LINKS}
    assert {(m, p) for m, p in served if p.startswith("/api")} == set(ADMIN_ROUTES)
    assert [str(link) for link in LINKS if not link.purpose] == []  # add it to PURPOSES
    # What this suite covers: every purpose, and the routes the brief names at least.
    assert {link.purpose for link in LINKS} == set(PURPOSES.values())
    assert {
        ("GET", "/preferences/{value}"),
        ("POST", "/preferences/{value}"),
        ("GET", "/unsubscribe/{value}"),
        ("POST", "/unsubscribe/{value}"),
        ("POST", "/confirm/{value}"),
        ("POST", "/resubscribe/{value}"),
        ("GET", "/feed/{value}"),
        ("GET", "/digests/{value}/{digest_id}"),
        ("POST", "/feedback/{value}/{kind}"),
    } <= taking
    assert len(ADMIN_ROUTES) >= 10


@pytest.mark.parametrize("link", LINKS, ids=str)
def test_a_bad_token_is_refused_changes_nothing_and_names_nobody(
    settings: Settings, engine: Engine, smtp: SmtpSink, link: Link
) -> None:
    assert link.purpose, f"{link}: a token of a purpose this suite does not know (PURPOSES)"
    w = _world(engine, settings, STATUS.get(link.purpose, SubscriberStatus.active))
    problems: list[str] = []
    with client(settings, engine, w.clock) as http:
        for what, value, status, phrase in _attacks(link, w):
            before = _effects(engine, smtp)
            answer = _ask(http, link, w.url(link, value))
            after = _effects(engine, smtp)
            problems += [f"{what}: {p}" for p in _refusal(answer, status, phrase, before, after)]
        genuine = w.token(link.purpose, paper=w.paper(link))
        before = _effects(engine, smtp)
        works = _ask(http, link, w.url(link, genuine))
        changed = _effects(engine, smtp) != before
        metrics = http.get("/metrics").text
    assert not problems, "\n".join(problems)
    # The genuine token works: the refusals were the token's doing. Opening a link (GET,
    # as mail scanners do) changes nothing; pressing its button (POST) stores something
    # or sends an email.
    assert works.is_success, (works.status_code, works.text[:300])
    assert changed == (link.method == "POST")
    # /metrics answers anyone: it counts routes, never the tokens or who used them.
    assert genuine not in metrics and ADA not in metrics


@pytest.mark.parametrize(
    "link", [link for link in LINKS if link.purpose in (UNSUBSCRIBE, FEED)], ids=str
)
def test_unsubscribe_and_feed_links_work_however_old(
    settings: Settings, engine: Engine, smtp: SmtpSink, link: Link
) -> None:
    w = _world(engine, settings, SubscriberStatus.active, new_feed=False)
    if link.purpose == UNSUBSCRIBE:
        # Never revoked either: a 400-day-old email's link, from before her links were
        # revoked (version 1), still unsubscribes.
        values = [w.token(UNSUBSCRIBE, version=v, ago=LONG_AGO) for v in (1, 2)]
    else:  # a feed address of 400 days ago (timed, as they were), and today's
        values = [make_token(SECRET, FEED, w.ada, 2, now=w.clock.now - LONG_AGO), w.token(FEED)]
    with client(settings, engine, w.clock) as http:
        answers = [_ask(http, link, w.url(link, value)) for value in values]
    for answer in answers:
        assert answer.status_code == 200, answer.text[:300]
        assert ADA in answer.text  # her page and her feed (so _leaks would see it)
    with engine.connect() as conn:
        row = subscribers.load(conn, w.ada)
    assert row is not None
    unsubscribed = link == Link("POST", "/unsubscribe/{value}")
    assert (row.status == SubscriberStatus.unsubscribed) == unsubscribed


def test_an_old_feedback_link_expires_like_the_digest_it_came_in(
    settings: Settings, engine: Engine, smtp: SmtpSink
) -> None:
    w = _world(engine, settings, SubscriberStatus.active)
    more = f"/feedback/{w.token(FEEDBACK)}/more"
    w.clock.advance(days=LONG_AGO.days)  # the email was kept 400 days
    before = _snapshot(engine)
    with client(settings, engine, w.clock) as http:
        full_list = http.get(f"/digests/{w.token(DIGESTS, ago=LONG_AGO)}/{w.digest}")
        assert full_list.status_code == 410  # the same email's "See all" link has expired
        asked, pressed = http.get(more), http.post(more)
    assert [asked.status_code, pressed.status_code] == [410, 410]
    assert EXPIRED in asked.text and not _leaks(asked)
    assert _snapshot(engine) == before


def test_a_digests_link_opens_only_its_subscribers_digests(
    settings: Settings, engine: Engine, smtp: SmtpSink
) -> None:
    w = _world(engine, settings, SubscriberStatus.active)
    link = Link("GET", "/digests/{value}/{digest_id}")
    value = w.token(DIGESTS)
    before = _snapshot(engine)
    with client(settings, engine, w.clock) as http:
        refused = [http.get(w.url(link, value, d)) for d in (w.bob_digest, w.bob_digest + 99)]
        own = http.get(w.url(link, value))
    for answer in refused:
        assert answer.status_code == 404 and "not one of yours" in answer.text
        assert not _leaks(answer) and "Zygomorphic" not in answer.text
    assert own.status_code == 200 and "orchids" in own.text
    assert _snapshot(engine) == before


# Admin API: (Authorization header, whether the API is on, the status that refuses it).
ADMIN_REFUSALS = {
    "no Authorization header": (None, True, 401),
    "a wrong key": ("Bearer nope", True, 401),
    "the key and one character more": (f"Bearer {ADMIN}x", True, 401),
    "the key cut short": (f"Bearer {ADMIN[:-1]}", True, 401),
    "the key in another case": (f"Bearer {ADMIN.upper()}", True, 401),
    "the key as Basic credentials": (f"Basic {ADMIN}", True, 401),
    "the key without a scheme": (ADMIN, True, 401),
    "an empty bearer": ("Bearer", True, 401),
    "the link-signing key": (f"Bearer {SECRET}", True, 401),
    "the API off, no header": (None, False, 403),
    "the API off, the old key": (f"Bearer {ADMIN}", False, 403),
}


def _admin_call(
    http: httpx.Client, method: str, path: str, sub_id: int, headers: dict[str, str]
) -> httpx.Response:
    """One admin route with a valid request body, so that letting it through would act."""
    url = path.replace("{sub_id}", str(sub_id))
    assert "{" not in url, f"{path}: a path parameter this suite does not fill"
    if path == "/api/subscribers/import":
        csv = b"email,interests\neve@example.org,robots\n"
        return http.request(
            method, url, content=csv, headers={**headers, "content-type": "text/csv"}
        )
    bodies: dict[tuple[str, str], dict[str, Any]] = {
        ("POST", "/api/subscribers"): {"email": "eve@example.org", "interests": ["robots"]},
        ("PATCH", "/api/subscribers/{sub_id}"): {"send_hour": 3, "interests": ["robots"]},
    }
    body = bodies.get((method, path))
    return http.request(method, url, json=body, headers=headers)


@pytest.mark.parametrize("case", ADMIN_REFUSALS)
def test_every_admin_route_refuses_a_request_without_the_key(
    settings: Settings, engine: Engine, smtp: SmtpSink, case: str
) -> None:
    header, on, status = ADMIN_REFUSALS[case]
    w = _world(engine, settings, SubscriberStatus.active)
    configured = web_settings(settings) if on else settings.model_copy(update={"admin_token": None})
    headers = {"Authorization": header} if header else {}
    problems: list[str] = []
    with server(configured, engine, w.clock) as url, httpx.Client(base_url=url) as http:
        for method, path in ADMIN_ROUTES:
            before = _snapshot(engine)
            answer = _admin_call(http, method, path, w.ada, headers)
            where = f"{method} {path}"
            if answer.status_code != status:
                problems.append(f"{where}: answered {answer.status_code}, not {status}")
            if status == 401 and answer.headers.get("www-authenticate") != "Bearer":
                problems.append(f"{where}: no WWW-Authenticate: Bearer")
            if leaked := _leaks(answer):
                problems.append(f"{where}: shows {leaked}")
            if _snapshot(engine) != before:
                problems.append(f"{where}: changed the database")
    assert not problems, "\n".join(problems)


def test_the_right_key_opens_every_admin_route(
    settings: Settings, engine: Engine, smtp: SmtpSink
) -> None:
    w = _world(engine, settings, SubscriberStatus.active)
    auth = {"Authorization": f"Bearer {ADMIN}"}
    order = {"GET": 0, "POST": 1, "PATCH": 2, "DELETE": 3}  # the deletion last
    with client(settings, engine, w.clock) as http:
        answers = {
            (method, path): _admin_call(http, method, path, w.ada, auth)
            for method, path in sorted(ADMIN_ROUTES, key=lambda r: order[r[0]])
        }
    failed = {route: a.status_code for route, a in answers.items() if not a.is_success}
    assert failed == {}
    assert ADA in answers["GET", "/api/subscribers"].text  # what the refusals keep back
    with engine.connect() as conn:
        assert subscribers.find(conn, "eve@example.org") is not None
        assert subscribers.load(conn, w.ada) is None


def _two_mb_form(shape: str, email: str) -> dict[str, str]:
    """A valid form grown to 2 MB: in one field, or spread over 950 small ones."""
    if shape == "one field":
        return form(email=email, interests=f"{INTEREST}\n" + "robots " * (2 * MB // 7))
    return {**form(email=email), **{f"x{n}": "y" * 2200 for n in range(950)}}


TOO_BIG_FORMS = [
    pytest.param("/subscribe", "one field"),
    pytest.param(
        "/subscribe",
        "many fields",
    ),
    pytest.param("/preferences/{value}", "one field"),
    pytest.param(
        "/preferences/{value}",
        "many fields",
    ),
]


@pytest.mark.parametrize(("path", "shape"), TOO_BIG_FORMS)
def test_a_2_mb_form_is_refused_with_a_4xx(
    settings: Settings, engine: Engine, smtp: SmtpSink, path: str, shape: str
) -> None:
    w = _world(engine, settings, SubscriberStatus.active)
    url = path.replace("{value}", w.token(PREFERENCES))
    body = _two_mb_form(shape, "eve@example.org")
    before = _snapshot(engine)
    with client(settings, engine, w.clock) as http:
        answer = http.post(url, data=body, timeout=60)
    assert answer.status_code == 413, answer.status_code
    assert _snapshot(engine) == before and not smtp.to("eve@example.org")


TOO_BIG_JSON = [
    pytest.param({"email": ADA, "interests": ["x" * 2 * MB]}, id="a 2 MB interest line"),
    pytest.param({"email": "x" * 2 * MB + "@example.org", "interests": ["a"]}, id="a 2 MB address"),
    pytest.param(
        {"email": "eve@example.org", "interests": [f"robot {n:07d}" for n in range(130_000)]},
        id="130 000 interest lines",
    ),
    pytest.param(
        {"email": "eve@example.org", "interests": ["robots"], "notes": "x" * 2 * MB},
        id="an unknown 2 MB field",
    ),
]


@pytest.mark.parametrize("body", TOO_BIG_JSON)
def test_a_huge_json_body_to_the_admin_api_is_refused_with_a_4xx(
    settings: Settings, engine: Engine, body: dict[str, Any]
) -> None:
    before = _snapshot(engine)
    refused: list[httpx.Response] = []
    with client(settings, engine, Clock()) as http:
        for auth in ({}, {"Authorization": f"Bearer {ADMIN}"}):
            refused.append(http.post("/api/subscribers", json=body, headers=auth, timeout=60))
    assert refused[0].status_code == 401  # without the key: refused whatever the body
    status = refused[1].status_code
    assert status == 413, (status, refused[1].text[:200])
    assert _snapshot(engine) == before


def test_an_unauthenticated_body_that_is_not_json_is_refused(
    settings: Settings, engine: Engine
) -> None:
    before = _snapshot(engine)
    with client(settings, engine, Clock()) as http:
        answers = [
            http.request(method, url, content=b"{" * 2 * MB, headers={"content-type": kind})
            for method, url, kind in (
                ("POST", "/api/subscribers", "application/json"),
                ("PATCH", "/api/subscribers/1", "application/json"),
                ("POST", "/api/subscribers/import", "text/csv"),
            )
        ]
    # The key is checked before anything reads the body (FastAPI alone would parse the
    # JSON first and answer 422).
    assert [a.status_code for a in answers] == [401, 401, 401]
    assert _snapshot(engine) == before


WEAK_KEYS = ["change-me", "changeme", "secret", "k" * 31]


@pytest.mark.parametrize("key", WEAK_KEYS)
def test_a_weak_or_short_key_is_refused_unless_everything_stays_on_loopback(key: str) -> None:
    public = Settings(secret_key=SecretStr(key), base_url="https://digest.example.org")
    for listening in (None, "127.0.0.1", "0.0.0.0"):
        problem = public.key_problem(listening)
        assert problem is not None and "DIGEST_SECRET_KEY" in problem, listening
    local = Settings(secret_key=SecretStr(key), base_url="http://127.0.0.1:8000")
    for listening in ("0.0.0.0", "::", "192.0.2.7", "digest.example.org"):
        assert local.key_problem(listening) is not None, listening
    for listening in (None, "127.0.0.1", "::1", "localhost"):
        assert local.key_problem(listening) is None, listening  # a demo on this machine
    strong = Settings(secret_key=SecretStr("k" * 32), base_url="https://digest.example.org")
    assert strong.key_problem("0.0.0.0") is None


@pytest.mark.timeout(60)  # were the key accepted, `digest serve` would run until stopped
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("key", ["change-me", "k" * 31])
@pytest.mark.parametrize(
    ("base_url", "args"),
    [
        ("https://digest.example.org", ["serve"]),
        ("https://digest.example.org", ["serve", "--no-web"]),
        ("http://127.0.0.1:8000", ["serve", "--host", "0.0.0.0"]),
    ],
)
def test_digest_serve_refuses_a_weak_key(
    cli_env: dict[str, str], engine: Engine, key: str, base_url: str, args: list[str]
) -> None:
    env = {**cli_env, "DIGEST_SECRET_KEY": key, "DIGEST_BASE_URL": base_url}
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 2, result.output
    assert "DIGEST_SECRET_KEY is" in result.output and "forge" in result.output


def test_a_chunked_body_is_held_to_the_same_limits(settings: Settings, engine: Engine) -> None:
    def chunks(body: bytes) -> Iterator[bytes]:  # no Content-Length: sent chunked
        yield from (body[i : i + 65536] for i in range(0, len(body), 65536))

    small = json.dumps({"email": "eve@example.org", "interests": ["robots"]}).encode()
    big = json.dumps({"email": "eve@example.org", "interests": ["robots"], "notes": "x" * 2 * MB})
    auth = {"Authorization": f"Bearer {ADMIN}", "content-type": "application/json"}
    with client(settings, engine, Clock()) as http:
        refused = http.post("/api/subscribers", content=chunks(big.encode()), headers=auth)
        taken = http.post("/api/subscribers", content=chunks(small), headers=auth)
        form_body = b"email=a%40example.org&interests=" + b"x" * 200_000
        page = http.post(
            "/subscribe",
            content=chunks(form_body),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    assert refused.status_code == 413 and page.status_code == 413
    assert taken.status_code == 201, taken.text

"""Helpers for the web tests: a settable clock, the app on loopback, forms, links in emails."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

import httpx
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy import Engine

from digest.clock import utcnow
from digest.config import Settings
from digest.mail.capture import free_port
from digest.models import SUBSCRIBERS
from digest.web.app import serve_web

ADMIN = "admin-secret"
AUTH = {"Authorization": f"Bearer {ADMIN}"}  # the admin API's header


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or utcnow().replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        """Move the clock forward."""
        self.now += timedelta(**delta)


def web_settings(settings: Settings, **changes: Any) -> Settings:
    """The test settings with the admin API on."""
    return settings.model_copy(update={"admin_token": SecretStr(ADMIN), **changes})


@contextmanager
def server(
    settings: Settings, engine: Engine, clock: Clock, *, port: int | None = None
) -> Iterator[str]:
    """The app served by uvicorn (serve_web) on a loopback port (default: a free one)."""
    port = port or free_port()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            loop.run_until_complete(
                serve_web(settings, engine, host="127.0.0.1", port=port, stop=stop, clock=clock)
            )
        except BaseException as exc:
            failure.append(exc)
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="web", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if failure or time.monotonic() > deadline:
                raise RuntimeError(f"the web server did not start: {failure}") from None
            time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
    assert not failure, failure


@contextmanager
def client(settings: Settings, engine: Engine, clock: Clock) -> Iterator[httpx.Client]:
    """An HTTP client of the app served on loopback (admin API on); it keeps no cookies."""
    if settings.admin_token is None:
        settings = web_settings(settings)
    with server(settings, engine, clock) as url, httpx.Client(base_url=url) as http:
        yield http


def link_in(message: EmailMessage, purpose: str) -> str:
    """The path of the first link to /{purpose}/ in the text part of an email."""
    body = message.get_body(("plain",))
    assert body is not None
    found = re.search(rf"https://digest\.test(/{purpose}/\S+)", body.get_content())
    assert found is not None, f"no /{purpose}/ link in {body.get_content()!r}"
    return found.group(1)


def subscriber(engine: Engine, email: str) -> Any:
    """The subscriber row with this address (None if absent)."""
    with engine.connect() as conn:
        return conn.execute(sa.select(SUBSCRIBERS).where(SUBSCRIBERS.c.email == email)).first()


def subscriber_count(engine: Engine) -> int:
    """How many subscribers are stored."""
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(SUBSCRIBERS)).scalar_one())


def form(
    email: str = "ada@example.org", interests: str = "diffusion models", **extra: str
) -> dict[str, str]:
    """A sign-up form as a browser posts it."""
    return {
        "email": email,
        "interests": interests,
        "timezone": "Europe/Paris",
        "send_hour": "8",
        "cadence": "daily",
        "weekday": "0",
        "max_papers": "20",
        "website": "",
        "action": "subscribe",
        **extra,
    }

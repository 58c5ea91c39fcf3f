"""Shared fixtures: real SQLite and PostgreSQL databases, a real SMTP server on loopback."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, NoReturn

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from digest.config import Settings
from digest.db import make_engine, upgrade
from digest.mail.capture import free_port

POSTGRES_URL = os.environ.get("DIGEST_TEST_POSTGRES_URL")
SHARED = Path(os.environ.get("DIGEST_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
PAPERS_JSONL = SHARED / "data" / "papers.jsonl"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a private PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'digest.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("DIGEST_TEST_POSTGRES_URL is not set (CI sets it and requires PostgreSQL)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A migrated database."""
    upgrade(database_url)
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@dataclass
class Received:
    """One message as the SMTP server got it."""

    sender: str
    recipients: list[str]
    message: EmailMessage


@dataclass
class SmtpSink:
    """A real SMTP server on loopback that keeps what it accepts, or refuses on demand."""

    host: str = "127.0.0.1"
    port: int = 0
    received: list[Received] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 OK queued"

    def to(self, address: str) -> list[EmailMessage]:
        """Messages received for `address`."""
        return [r.message for r in self.received if address in r.recipients]


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    """A started SMTP sink on a free loopback port."""
    sink = SmtpSink(port=free_port())
    controller = Controller(sink, hostname=sink.host, port=sink.port)
    controller.start()
    yield sink
    controller.stop()


@pytest.fixture
def settings(database_url: str, smtp: SmtpSink, tmp_path: Path) -> Settings:
    """Settings pointing at the test database and SMTP sink."""
    return Settings(
        database_url=database_url,
        smtp_host=smtp.host,
        smtp_port=smtp.port,
        var_dir=tmp_path / "var",
        from_="Paper Digest <digest@digest.test>",
        base_url="https://digest.test",
        secret_key=SecretStr("test-secret"),
    )


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """Environment for CLI runs against the test database and SMTP sink."""
    monkeypatch.chdir(tmp_path)
    return {
        "DIGEST_DATABASE_URL": settings.sqlalchemy_url,
        "DIGEST_SMTP_HOST": settings.smtp_host,
        "DIGEST_SMTP_PORT": str(settings.smtp_port),
        "DIGEST_VAR_DIR": str(settings.var_dir),
        "DIGEST_FROM": settings.from_,
        "DIGEST_BASE_URL": settings.base_url,
        "DIGEST_SECRET_KEY": "test-secret",
    }


def write_jsonl(path: Path, papers: list[dict[str, Any]]) -> Path:
    """Write papers as JSONL and return the path."""
    path.write_text("".join(json.dumps(p) + "\n" for p in papers), encoding="utf-8")
    return path


# Headless Chromium on a machine with no network; each browser test adds its headless mode.
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def missing(message: str, flag: str) -> NoReturn:
    """Skip for want of a component, or fail when CI requires it (`flag`=1 in the env)."""
    if os.environ.get(flag) == "1":
        pytest.fail(message)
    pytest.skip(message)


def shared_papers() -> Path:
    """../shared/data/papers.jsonl, or skip when the shared folder is absent."""
    if not PAPERS_JSONL.exists():
        pytest.skip(f"{PAPERS_JSONL} is absent")
    return PAPERS_JSONL

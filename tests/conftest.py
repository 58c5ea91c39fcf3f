"""Shared fixtures: real SQLite and PostgreSQL databases, a real SMTP server on loopback."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from digest.config import Settings
from digest.db import make_engine, upgrade
from digest.mail.capture import free_port
from tests.kit.env import POSTGRES_URL, SECRET
from tests.kit.smtp import SmtpSink


@pytest.fixture(autouse=True)
def signing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings made anywhere in a test sign with the test key, so none writes a key file."""
    monkeypatch.setenv("DIGEST_SECRET_KEY", SECRET)


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
        secret_key=SecretStr(SECRET),
        sources=[],  # nothing is fetched from the internet unless a test serves it
        subscribe_answer_seconds=0,  # tests/web/test_pages.py checks the real delay
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
        "DIGEST_SECRET_KEY": SECRET,
        "DIGEST_SOURCES": "[]",
    }

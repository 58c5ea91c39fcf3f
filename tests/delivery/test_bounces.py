"""Bounce notifications (RFC 3464) read from a Maildir, as a mail server writes them."""

from __future__ import annotations

import mailbox
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import Engine
from typer.testing import CliRunner

from digest.cli import app
from digest.config import Settings
from digest.delivery.planning import plan
from digest.match.engine import InterestMatcher
from digest.models import DIGESTS, SUBSCRIBERS
from digest.subscribers import subscribe
from tests.kit.seeds import T0, dsn, seed

runner = CliRunner()


def test_hard_soft_verp_and_noise(
    engine: Engine, settings: Settings, cli_env: dict[str, str], tmp_path: Path
) -> None:
    seed(engine)
    for name in ("hard", "soft", "verp", "ok"):
        subscribe(engine, f"{name}@example.org", ["diffusion"])
    plan(engine, InterestMatcher(), settings, T0)
    with engine.connect() as conn:
        ids = dict(
            conn.execute(
                sa.select(SUBSCRIBERS.c.email, DIGESTS.c.id).join(
                    DIGESTS, DIGESTS.c.subscriber_id == SUBSCRIBERS.c.id
                )
            ).all()
        )
    box = mailbox.Maildir(tmp_path / "bounces", create=True)
    box.add(  # forwarded: the failed address is another, the original is the subscriber
        dsn(
            recipient="someone-else@mx.example.net",
            original="hard@example.org",
            action="failed",
            status="5.1.1",
            message_id=f"<digest.{ids['hard@example.org']}.2026-11-26@digest.test>",
        )
    )
    box.add(  # another deployment's digest with the same number, sharing the mailbox
        dsn(
            recipient="stranger@example.com",
            action="failed",
            status="5.1.1",
            message_id=f"<digest.{ids['ok@example.org']}.2026-11-26@digest.test>",
        )
    )
    for _ in range(3):
        box.add(
            dsn(recipient="soft@example.org", action="delayed", status="4.4.1", message_id=None)
        )
    box.add(
        dsn(
            recipient="unknown-recipient@elsewhere",
            action="failed",
            status="5.1.1",
            message_id=None,
            to="bounces+verp=example.org@digest.test",
        )
    )
    box.add(b"From: someone@example.net\nSubject: out of office\n\nI am away.\n")
    env = {
        **cli_env,
        "DIGEST_RETURN_PATH": "bounces+{local}={domain}@digest.test",
        "DIGEST_SOFT_BOUNCE_THRESHOLD": "3",
    }

    result = runner.invoke(app, ["bounces", "--maildir", str(tmp_path / "bounces")], env=env)
    assert result.exit_code == 0, result.output
    assert "7 read: 2 hard and 3 soft bounces, 3 subscriber(s) marked bounced" in result.output
    assert "1 unmatched" in result.output
    assert "no subscriber for stranger@example.com" in result.output
    assert "not a bounce or an unsubscribe request: out of office" in result.output
    with engine.connect() as conn:
        statuses = dict(conn.execute(sa.select(SUBSCRIBERS.c.email, SUBSCRIBERS.c.status)).all())
    assert statuses == {
        "hard@example.org": "bounced",
        "soft@example.org": "bounced",
        "verp@example.org": "bounced",
        "ok@example.org": "active",
    }

    again = runner.invoke(app, ["bounces", "--maildir", str(tmp_path / "bounces")], env=env)
    assert "0 read" in again.output  # every message was marked seen


def test_soft_bounces_below_the_threshold_keep_the_subscriber(
    engine: Engine, settings: Settings, cli_env: dict[str, str], tmp_path: Path
) -> None:
    subscribe(engine, "soft@example.org", ["diffusion"])
    box = mailbox.Maildir(tmp_path / "b", create=True)
    box.add(dsn(recipient="soft@example.org", action="delayed", status="4.2.2", message_id=None))
    result = runner.invoke(app, ["bounces", "--maildir", str(tmp_path / "b")], env=cli_env)
    assert "1 read: 0 hard and 1 soft bounces, 0 subscriber(s) marked bounced" in result.output
    with engine.connect() as conn:
        row = conn.execute(sa.select(SUBSCRIBERS.c.status, SUBSCRIBERS.c.soft_bounces)).one()
    assert tuple(row) == ("active", 1)


def test_a_directory_that_is_not_a_maildir_is_refused(
    cli_env: dict[str, str], tmp_path: Path, engine: Engine
) -> None:
    result = runner.invoke(app, ["bounces", "--maildir", str(tmp_path)], env=cli_env)
    assert result.exit_code == 2
    assert "is not a Maildir" in result.output


def test_an_unreadable_message_is_reported_and_marked_seen(
    engine: Engine, cli_env: dict[str, str], tmp_path: Path
) -> None:
    subscribe(engine, "kept@example.org", ["diffusion"])
    subscribe(engine, "gone@example.org", ["diffusion"])
    box = mailbox.Maildir(tmp_path / "b", create=True)
    # The standard library's address parser raises on this To header (read for VERP).
    box.add(
        dsn(
            recipient="kept@example.org", action="failed", status="5.1.1", message_id=None, to="a,<"
        )
    )
    box.add(dsn(recipient="gone@example.org", action="failed", status="5.1.1", message_id=None))
    env = {**cli_env, "DIGEST_RETURN_PATH": "bounces+{local}={domain}@digest.test"}
    result = runner.invoke(app, ["bounces", "--maildir", str(tmp_path / "b")], env=env)
    assert result.exit_code == 0, result.output
    assert "2 read: 1 hard and 0 soft bounces" in result.output
    assert "cannot parse it (IndexError" in result.output
    with engine.connect() as conn:
        statuses = dict(conn.execute(sa.select(SUBSCRIBERS.c.email, SUBSCRIBERS.c.status)).all())
    assert statuses == {"kept@example.org": "active", "gone@example.org": "bounced"}
    again = runner.invoke(app, ["bounces", "--maildir", str(tmp_path / "b")], env=env)
    assert "0 read" in again.output

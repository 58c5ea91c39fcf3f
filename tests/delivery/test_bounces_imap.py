"""Bounce notifications read from a real IMAP server (Dovecot on loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from typer.testing import CliRunner

from digest.cli import app
from digest.config import Settings
from digest.delivery.inbox import ImapUrlError, parse_imap_url
from digest.delivery.planning import plan
from digest.match.engine import InterestMatcher
from digest.models import DIGESTS, SUBSCRIBERS
from digest.subscribers import subscribe
from tests.kit.imap import PASSWORD, Dovecot, start_dovecot
from tests.kit.seeds import T0, dsn, seed

runner = CliRunner()


@pytest.fixture
def dovecot(tmp_path: Path) -> Iterator[Dovecot]:
    """A started Dovecot with an empty mailbox."""
    yield from start_dovecot(tmp_path / "dovecot")


def statuses(engine: Engine) -> dict[str, str]:
    """Each subscriber's status by email."""
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(SUBSCRIBERS.c.email, SUBSCRIBERS.c.status)).all())


def hard(recipient: str) -> bytes:
    """A hard bounce for `recipient`, found by the failed address."""
    return dsn(recipient=recipient, action="failed", status="5.1.1", message_id=None)


def test_unseen_notifications_are_applied_once_and_flagged_seen(
    engine: Engine, settings: Settings, cli_env: dict[str, str], dovecot: Dovecot
) -> None:
    seed(engine)
    for name in ("hard", "soft", "verp", "ok"):
        subscribe(engine, f"{name}@example.org", ["diffusion"])
    plan(engine, InterestMatcher(), settings, T0)
    with engine.connect() as conn:
        digest_id = conn.execute(
            sa.select(DIGESTS.c.id)
            .join(SUBSCRIBERS, DIGESTS.c.subscriber_id == SUBSCRIBERS.c.id)
            .where(SUBSCRIBERS.c.email == "hard@example.org")
        ).scalar_one()
    soft = dsn(recipient="soft@example.org", action="delayed", status="4.4.1", message_id=None)
    dovecot.append(
        dsn(
            recipient="hard@example.org",
            action="failed",
            status="5.1.1",
            message_id=f"<digest.{digest_id}.2026-11-26@digest.test>",
        ),
        soft,
        soft,
        soft,
        dsn(
            recipient="unknown@elsewhere",
            action="failed",
            status="5.1.1",
            message_id=None,
            to="bounces+verp=example.org@digest.test",
        ),
        b"From: someone@example.net\r\nSubject: out of office\r\n\r\nI am away.\r\n",
        # The standard library's address parser raises on this To header.
        dsn(recipient="ok@example.org", action="failed", status="5.1.1", message_id=None, to="a,<"),
    )
    seen_before = dovecot.flags()
    env = {
        **cli_env,
        "DIGEST_RETURN_PATH": "bounces+{local}={domain}@digest.test",
        "DIGEST_SOFT_BOUNCE_THRESHOLD": "3",
    }

    result = runner.invoke(app, ["bounces", "--imap", dovecot.url()], env=env)

    assert result.exit_code == 0, result.output
    assert "7 read: 2 hard and 3 soft bounces, 3 subscriber(s) marked bounced" in result.output
    assert "not a bounce or an unsubscribe request: out of office" in result.output
    assert "unreadable: message UID 7: cannot parse it" in result.output
    assert "1 unreadable" in result.output
    assert statuses(engine) == {
        "hard@example.org": "bounced",
        "soft@example.org": "bounced",
        "verp@example.org": "bounced",
        "ok@example.org": "active",
    }
    assert not any("\\Seen" in flags for flags in seen_before)
    assert all("\\Seen" in flags for flags in dovecot.flags())

    # The URL from the settings, when no option is given; nothing is read twice.
    again = runner.invoke(app, ["bounces"], env={**env, "DIGEST_BOUNCE_IMAP_URL": dovecot.url()})
    assert again.exit_code == 0, again.output
    assert "0 read: 0 hard and 0 soft bounces" in again.output


def test_a_named_mailbox_and_new_mail_after_a_run(
    engine: Engine, cli_env: dict[str, str], dovecot: Dovecot
) -> None:
    subscribe(engine, "first@example.org", ["diffusion"])
    subscribe(engine, "later@example.org", ["diffusion"])
    box = 'Bounces "2026"'
    dovecot.append(hard("first@example.org"), mailbox=box)
    first = runner.invoke(app, ["bounces", "--imap", dovecot.url(box)], env=cli_env)
    assert "1 read: 1 hard and 0 soft bounces, 1 subscriber(s)" in first.output, first.output

    dovecot.append(hard("later@example.org"), mailbox=box)
    second = runner.invoke(app, ["bounces", "--imap", dovecot.url(box)], env=cli_env)
    assert "1 read: 1 hard and 0 soft bounces, 1 subscriber(s)" in second.output, second.output
    assert "bounced: later@example.org" in second.output
    assert statuses(engine) == {"first@example.org": "bounced", "later@example.org": "bounced"}


def test_a_refused_login_and_a_missing_mailbox_are_named(
    engine: Engine, cli_env: dict[str, str], dovecot: Dovecot
) -> None:
    subscribe(engine, "kept@example.org", ["diffusion"])
    dovecot.append(
        dsn(recipient="kept@example.org", action="failed", status="5.1.1", message_id=None)
    )

    missing = runner.invoke(app, ["bounces", "--imap", dovecot.url("Nowhere")], env=cli_env)
    assert missing.exit_code == 1
    assert "cannot open mailbox 'Nowhere'" in missing.output
    assert PASSWORD not in missing.output

    assert statuses(engine) == {"kept@example.org": "active"}
    assert not any("\\Seen" in flags for flags in dovecot.flags())

    # Last: Dovecot delays the next login from an address after a failed one.
    wrong = runner.invoke(app, ["bounces", "--imap", dovecot.url(password="nope")], env=cli_env)
    assert wrong.exit_code == 1
    assert "the server refused the login of 'bounces'" in wrong.output
    assert "nope" not in wrong.output and PASSWORD not in wrong.output


def test_nothing_listening_is_a_clear_error(cli_env: dict[str, str], engine: Engine) -> None:
    from digest.mail.capture import free_port

    url = f"imap://u:p@127.0.0.1:{free_port()}/INBOX"
    result = runner.invoke(app, ["bounces", "--imap", url], env=cli_env)
    assert result.exit_code == 1
    assert "cannot connect to IMAP server 127.0.0.1:" in result.output


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://u:secret@host/INBOX", "starts with imaps:// or imap://"),
        ("imaps://u:secret@/INBOX", "has no host"),
        ("imaps://host/INBOX", "needs a user and password"),
        ("imaps://u:secret@host:99999/INBOX", "has a bad port"),
        ("imaps://u:secret@host/Bo%C3%AEte", "only plain ASCII mailbox names"),
    ],
)
def test_a_bad_url_says_what_is_wrong(url: str, problem: str) -> None:
    with pytest.raises(ImapUrlError, match=problem) as caught:
        parse_imap_url(url)
    assert "secret" not in str(caught.value)


def test_url_defaults_and_decoding() -> None:
    secure = parse_imap_url("imaps://me%40lab.org:p%40ss%2Fw@mail.lab.org")
    assert (secure.tls, secure.port, secure.user, secure.password, secure.mailbox) == (
        True,
        993,
        "me@lab.org",
        "p@ss/w",
        "INBOX",
    )
    plain = parse_imap_url("imap://u:p@mail.lab.org:1143/Bounces%20Box")
    assert (plain.tls, plain.port, plain.mailbox) == (False, 1143, "Bounces Box")


def test_the_cli_needs_exactly_one_mailbox(
    cli_env: dict[str, str], tmp_path: Path, engine: Engine
) -> None:
    both = runner.invoke(
        app, ["bounces", "--maildir", str(tmp_path), "--imap", "imap://u:p@h/"], env=cli_env
    )
    assert both.exit_code == 2
    assert "give --maildir or --imap, not both" in both.output
    neither = runner.invoke(app, ["bounces"], env=cli_env)
    assert neither.exit_code == 2
    assert (
        "give --maildir DIR or --imap URL (or set DIGEST_INBOX_IMAP_URL or DIGEST_INBOX_MAILDIR)"
        in neither.output
    )
    bad = runner.invoke(app, ["bounces", "--imap", "imap://h/INBOX"], env=cli_env)
    assert bad.exit_code == 2
    assert "needs a user and password" in bad.output


@pytest.fixture
def dovecot_tls(tmp_path: Path) -> Iterator[Dovecot]:
    """A started Dovecot offering STARTTLS and implicit TLS with a self-signed certificate."""
    yield from start_dovecot(tmp_path / "dovecot", tls=True)


def test_tls_and_starttls_with_a_trusted_certificate(
    engine: Engine,
    cli_env: dict[str, str],
    dovecot_tls: Dovecot,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    subscribe(engine, "one@example.org", ["diffusion"])
    subscribe(engine, "two@example.org", ["diffusion"])
    dovecot_tls.append(hard("one@example.org"))

    untrusted = runner.invoke(app, ["bounces", "--imap", dovecot_tls.url(tls=True)], env=cli_env)
    assert untrusted.exit_code == 1
    assert "certificate verify failed" in untrusted.output
    plain = runner.invoke(app, ["bounces", "--imap", dovecot_tls.url()], env=cli_env)
    assert plain.exit_code == 1  # STARTTLS is offered, so it is used: no plain-text fallback
    assert "certificate verify failed" in plain.output
    assert statuses(engine) == {"one@example.org": "active", "two@example.org": "active"}

    # OpenSSL's own variable: how an operator trusts a private certificate authority.
    monkeypatch.setenv("SSL_CERT_FILE", str(dovecot_tls.cert))
    implicit = runner.invoke(app, ["bounces", "--imap", dovecot_tls.url(tls=True)], env=cli_env)
    assert "1 read: 1 hard" in implicit.output, implicit.output
    dovecot_tls.append(hard("two@example.org"))
    upgraded = runner.invoke(app, ["bounces", "--imap", dovecot_tls.url()], env=cli_env)
    assert "1 read: 1 hard" in upgraded.output, upgraded.output
    assert statuses(engine) == {"one@example.org": "bounced", "two@example.org": "bounced"}
    logins = [line for line in dovecot_tls.log.read_text().splitlines() if "Login: " in line]
    assert sum(", TLS" in line for line in logins) == 2, logins

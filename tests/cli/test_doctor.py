"""`digest doctor` against real components: SQLite, an SMTP server, Maildirs, Dovecot, DNS."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.message
import dns.rcode
import dns.rdatatype
import dns.resolver
import dns.rrset
import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from digest.cli import app
from digest.cli.doctor import Finding, Level, _vacuum_findings, check_dns
from digest.config import Settings
from digest.db import upgrade
from digest.mail.capture import free_port
from digest.models import DIGESTS, SUBSCRIBERS
from tests.kit.imap import Dovecot, start_dovecot
from tests.kit.mail import make_dkim_key
from tests.kit.seeds import T0

runner = CliRunner()
SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
POSTGRESQL = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
DOMAIN = "digest-lab.org"  # looked up only in the tests' own DNS server


def doctor(env: dict[str, str | None], *args: str, code: int | None = 0) -> list[str]:
    """Run `digest doctor --no-dns`; its output lines."""
    result = runner.invoke(app, ["doctor", "--no-dns", *args], env=env)
    assert code is None or result.exit_code == code, result.output
    return result.output.splitlines()


def line(lines: list[str], start: str) -> str:
    """The one line that starts with `start`."""
    found = [x for x in lines if x.startswith(start)]
    assert len(found) == 1, "\n".join(lines)
    return found[0]


@pytest.fixture
def maildir(tmp_path: Path) -> Path:
    """An empty Maildir."""
    for folder in ("cur", "new", "tmp"):
        (tmp_path / "inbox" / folder).mkdir(parents=True)
    return tmp_path / "inbox"


@pytest.fixture
def live(cli_env: dict[str, str], engine: Engine, maildir: Path) -> dict[str, str | None]:
    """The test settings, migrated, with what a live deployment sets besides."""
    return {
        **cli_env,
        "DIGEST_FROM": f"Paper Digest <digest@{DOMAIN}>",
        "DIGEST_SENDER_IDENTITY": "Paper Digest, 1 Parks Road, Oxford",
        "DIGEST_INBOX_MAILDIR": str(maildir),
        "DIGEST_RETURN_PATH": f"bounces@{DOMAIN}",
    }


def test_a_ready_deployment_has_no_problems(
    live: dict[str, str | None], cli_env: dict[str, str], database_url: str
) -> None:
    subscribed = runner.invoke(app, ["subscribe", "ada@example.org", "-i", "diffusion"], env=live)
    assert subscribed.exit_code == 0, subscribed.output
    lines = doctor(live)
    assert "ok       signing key: a 40-character key, not a default" in lines
    assert line(lines, "ok       signing key: set by DIGEST_SECRET_KEY")
    assert "ok       base URL: https://digest.test" in lines
    assert f"ok       From address: Paper Digest <digest@{DOMAIN}>" in lines
    assert "ok       sender identity: the footer says: Paper Digest, 1 Parks Road, Oxford" in lines
    assert "info     SPF, DKIM, DMARC: not looked up (--no-dns)" in lines
    assert f"ok       inbox: Maildir {live['DIGEST_INBOX_MAILDIR']}" in lines
    assert f"ok       return path: bounces go to bounces@{DOMAIN}" in lines
    shown = make_url(database_url).render_as_string(hide_password=True)
    latest = f"ok       database: {shown}: opens, and its schema is the latest"
    assert latest in lines
    if database_url.startswith("sqlite"):
        assert line(lines, "warning  database: SQLite, 1 active subscriber(s): fine for a small")
    else:
        assert "ok       database: PostgreSQL, 1 active subscriber(s)" in lines
    # A server that runs without autovacuum (this kind of machine's) is warned about.
    unvacuumed = not database_url.startswith("sqlite") and not _autovacuum_on(database_url)
    assert any("= off:" in found or "= off;" in found for found in lines) == unvacuumed
    smtp = f"{cli_env['DIGEST_SMTP_HOST']}:{cli_env['DIGEST_SMTP_PORT']}"
    assert f"ok       SMTP: {smtp} answers (no TLS, no login)" in lines
    assert line(lines, "info     backups: cannot be checked from here").endswith(
        "docs/operating.md"
    )
    assert "ok       admin API: off (DIGEST_ADMIN_TOKEN unset)" in lines
    problems = 0
    warnings = 1 if database_url.startswith("sqlite") or unvacuumed else 0
    assert lines[-1].startswith(f"{problems} problem(s), {warnings} warning(s), ")


def _autovacuum_on(url: str) -> bool:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            settings = [
                conn.scalar(sa.text(f"SHOW {name}")) for name in ("autovacuum", "track_counts")
            ]
            return settings == ["on", "on"]
    finally:
        engine.dispose()


@POSTGRESQL
def test_an_outbox_nothing_vacuums_is_warned_about(engine: Engine) -> None:
    """Autovacuum off for one of the outbox's tables, or more dead rows than live ones:
    each send leaves a dead row per digest, which slows every later claim."""
    with engine.begin() as conn:
        assert not any("autovacuum is disabled" in f.says for f in _vacuum_findings(conn))
        conn.execute(sa.text("ALTER TABLE digestpaper SET (autovacuum_enabled = off)"))
        conn.execute(sa.text("ALTER TABLE digest SET (autovacuum_enabled = false)"))
        conn.execute(
            sa.insert(SUBSCRIBERS).values(
                email="ada@example.org", timezone="UTC", send_hour=8, created_at=T0
            )
        )
        sub = conn.scalar(sa.select(SUBSCRIBERS.c.id))
        times = {"created_at": T0, "window_start": T0, "window_end": T0}
        rows = [{"subscriber_id": sub, "period": f"2026-{n:03d}", **times} for n in range(90)]
        conn.execute(sa.insert(DIGESTS), rows)
    with engine.begin() as conn:  # as old digests deleted, or rows updated, leave them
        conn.execute(sa.delete(DIGESTS).where(DIGESTS.c.period >= "2026-030"))
    dead = "digest holds 60 dead rows and 30 live ones: run `VACUUM ANALYZE digest`"
    says: list[str] = []
    for _ in range(100):  # the server's statistics of the delete: at once, or soon after
        with engine.begin() as conn:
            if (conn.dialect.server_version_info or (0,)) >= (15,):
                conn.execute(sa.text("SELECT pg_stat_force_next_flush()"))
        with engine.connect() as conn:
            says = [f.says for f in _vacuum_findings(conn, dead_min=50)]
        if dead in says:
            break
        time.sleep(0.1)
    assert any("autovacuum is disabled on digest, digestpaper" in found for found in says)
    assert dead in says


@SQLITE
def test_json_holds_every_finding(live: dict[str, str | None]) -> None:
    result = runner.invoke(app, ["doctor", "--no-dns", "--json"], env=live)
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    levels = {(f["item"], f["level"]) for f in record["findings"]}
    assert {("base URL", "ok"), ("database", "warning"), ("SMTP", "ok")} <= levels
    assert record["summary"].startswith("0 problem(s), 1 warning(s)")


@SQLITE
def test_a_default_key_is_a_problem(live: dict[str, str | None]) -> None:
    lines = doctor({**live, "DIGEST_SECRET_KEY": "change-me"}, code=1)
    assert line(lines, "problem  signing key: DIGEST_SECRET_KEY is the default key, so anyone")
    assert lines[-1] == "1 problem(s), 1 warning(s), 9 ok: fix the problems before going live"


@SQLITE
def test_a_short_key_on_loopback_is_only_a_warning(live: dict[str, str | None]) -> None:
    env = {**live, "DIGEST_SECRET_KEY": "short", "DIGEST_BASE_URL": "http://127.0.0.1:8000"}
    lines = doctor(env)
    key = line(lines, "warning  signing key: DIGEST_SECRET_KEY is a 5-character key")
    assert key.endswith(
        "accepted for now only because DIGEST_BASE_URL is on loopback (fine for a demo)"
    )
    assert line(lines, "warning  base URL: http://127.0.0.1:8000 is on loopback: fine for a demo")


@SQLITE
def test_the_kept_key_file_must_be_private(live: dict[str, str | None]) -> None:
    env = {**live, "DIGEST_SECRET_KEY": None}  # the key made once and kept in the var dir
    path = Path(str(live["DIGEST_VAR_DIR"])) / "secret_key"
    lines = doctor(env)
    assert (
        f"ok       signing key: kept in {path} (mode 0600): back it up with the database" in lines
    )
    path.chmod(0o644)
    lines = doctor(env, code=1)
    assert (
        f"problem  signing key: kept in {path} with mode 0644, readable by other users: "
        f"chmod 600 {path}"
    ) in lines


@SQLITE
def test_plain_http_on_a_public_name_is_a_problem(live: dict[str, str | None]) -> None:
    lines = doctor({**live, "DIGEST_BASE_URL": "http://digest.lab.org"}, code=1)
    url = line(lines, "problem  base URL: http://digest.lab.org is plain http:")
    assert url.endswith("set DIGEST_BASE_URL=https://digest.lab.org")


@SQLITE
def test_a_placeholder_from_and_no_identity(live: dict[str, str | None]) -> None:
    env = {**live, "DIGEST_FROM": "digest <digest@localhost>", "DIGEST_SENDER_IDENTITY": None}
    lines = doctor(env, code=1)
    assert line(lines, "problem  From address: digest@localhost: localhost is not a domain")
    assert line(lines, "warning  sender identity: not set: set DIGEST_SENDER_IDENTITY")
    lines = doctor({**env, "DIGEST_FROM": "Lab <news@lab.example.org>"}, code=1)
    assert line(lines, "problem  From address: news@lab.example.org: lab.example.org is not")


@SQLITE
def test_an_unreachable_smtp_server_is_a_problem(live: dict[str, str | None]) -> None:
    port = free_port()  # nothing listens there
    lines = doctor({**live, "DIGEST_SMTP_PORT": str(port)}, code=1)
    smtp = line(lines, f"problem  SMTP: 127.0.0.1:{port} (no TLS, no login): cannot connect")
    assert smtp.endswith(
        "check DIGEST_SMTP_HOST, DIGEST_SMTP_PORT, DIGEST_SMTP_SECURITY and the credentials"
    )


@SQLITE
def test_the_local_capture_is_a_warning(live: dict[str, str | None]) -> None:
    lines = doctor({**live, "DIGEST_SMTP_PORT": "8025"}, code=None)  # whether it runs or not
    assert line(lines, "warning  SMTP: 127.0.0.1:8025 is the local capture's address").endswith(
        "mail goes to the local capture, not the world; set DIGEST_SMTP_HOST and "
        "DIGEST_SMTP_PORT to your relay"
    )


@SQLITE
def test_a_missing_maildir_or_no_inbox(live: dict[str, str | None], tmp_path: Path) -> None:
    absent = tmp_path / "nowhere"
    lines = doctor({**live, "DIGEST_INBOX_MAILDIR": str(absent)}, code=1)
    assert line(lines, f"problem  inbox: DIGEST_INBOX_MAILDIR {absent} is not a Maildir")
    env = {**live, "DIGEST_INBOX_MAILDIR": None, "DIGEST_RETURN_PATH": None}
    lines = doctor(env)
    assert line(lines, "warning  inbox: none: bounces and emailed unsubscribe requests go unread")
    unset = "warning  return path: DIGEST_RETURN_PATH unset: bounces go to the From address"
    assert line(lines, unset).startswith(f"{unset} digest@{DOMAIN}; make sure the inbox reads")


@SQLITE
def test_an_imap_server_that_does_not_answer(live: dict[str, str | None]) -> None:
    port = free_port()
    env = {
        **live,
        "DIGEST_INBOX_MAILDIR": None,
        "DIGEST_INBOX_IMAP_URL": f"imap://u:p@127.0.0.1:{port}/INBOX",
    }
    lines = doctor(env, code=1)
    assert line(lines, f"problem  inbox: cannot connect to IMAP server 127.0.0.1:{port}")
    lines = doctor({**env, "DIGEST_INBOX_IMAP_URL": "pop3://u:p@127.0.0.1/"}, code=1)
    assert line(lines, "problem  inbox: DIGEST_INBOX_IMAP_URL: 'pop3://127.0.0.1/': an IMAP URL")


@pytest.fixture
def dovecot(tmp_path: Path) -> Iterator[Dovecot]:
    """A started Dovecot with an empty mailbox (skipped where Dovecot cannot run)."""
    yield from start_dovecot(tmp_path / "dovecot")


@SQLITE
def test_the_imap_inbox_logs_in(live: dict[str, str | None], dovecot: Dovecot) -> None:
    env = {**live, "DIGEST_INBOX_MAILDIR": None, "DIGEST_INBOX_IMAP_URL": dovecot.url()}
    lines = doctor(env)
    assert f"ok       inbox: imap://bounces@127.0.0.1:{dovecot.port}/INBOX: logged in" in lines
    lines = doctor({**env, "DIGEST_INBOX_IMAP_URL": dovecot.url(password="wrong")}, code=1)
    assert line(lines, "problem  inbox: imap://bounces@127.0.0.1:").count("refused the login")
    lines = doctor({**env, "DIGEST_INBOX_IMAP_URL": dovecot.url("Absent")}, code=1)
    assert line(lines, "problem  inbox: ").endswith("no mailbox 'Absent'")


@SQLITE
def test_a_database_not_at_the_latest_schema(cli_env: dict[str, str], tmp_path: Path) -> None:
    env: dict[str, str | None] = {**cli_env}
    database = tmp_path / "digest.db"
    lines = doctor(env, code=1)
    assert (
        f"problem  database: no database at sqlite:///{database}: run `digest db upgrade`" in lines
    )
    database.touch()  # an empty file: SQLite opens it, with no schema
    lines = doctor(env, code=1)
    assert "problem  database: the database has no schema yet: run `digest db upgrade`" in lines
    upgrade(cli_env["DIGEST_DATABASE_URL"], "0007_held_papers")
    lines = doctor(env, code=1)
    old = line(lines, "problem  database: the database schema is at revision 0007_held_papers")
    assert old.endswith("run `digest db upgrade`")
    assert runner.invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    lines = doctor(env, code=1)  # the test settings' From is at digest.test, a placeholder
    assert line(lines, "ok       database: ").endswith("its schema is the latest")
    assert [x for x in lines if x.startswith("problem")] == [line(lines, "problem  From address")]


@SQLITE
def test_a_database_server_that_does_not_answer(live: dict[str, str | None]) -> None:
    url = f"postgresql+psycopg://digest:secret@127.0.0.1:{free_port()}/digest"
    lines = doctor({**live, "DIGEST_DATABASE_URL": url}, code=1)
    shown = url.replace(":secret@", ":***@")
    assert line(lines, "problem  database: ").startswith(
        f"problem  database: cannot open {shown}: "
    )


@SQLITE
def test_the_admin_token(live: dict[str, str | None]) -> None:
    lines = doctor({**live, "DIGEST_ADMIN_TOKEN": "admin"}, code=1)
    assert line(lines, "problem  admin API: on, with a 5-character DIGEST_ADMIN_TOKEN")
    lines = doctor({**live, "DIGEST_ADMIN_TOKEN": "a" * 40})
    assert "ok       admin API: on, with a 40-character token" in lines


# DNS: a small server on loopback answers from a table, as a domain's DNS would.


class Zone:
    """A DNS server on a loopback UDP port: (name, type) -> records; other names NXDOMAIN."""

    def __init__(self, records: dict[tuple[str, str], list[str]]) -> None:
        self.records = records
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port: int = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            query = dns.message.from_wire(data)
            reply = dns.message.make_response(query)
            question = query.question[0]
            name = question.name.to_text().lower()
            kind = dns.rdatatype.to_text(question.rdtype)
            if (name, kind) in self.records:
                reply.answer.append(
                    dns.rrset.from_text_list(
                        question.name, 60, "IN", kind, self.records[name, kind]
                    )
                )
            elif not any(known == name for known, _ in self.records):
                reply.set_rcode(dns.rcode.NXDOMAIN)
            wire = reply.to_wire()
            assert len(wire) <= 512, "the answer does not fit in a UDP datagram"
            self.sock.sendto(wire, peer)

    def resolver(self) -> dns.resolver.Resolver:
        """A resolver that asks this server only."""
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = ["127.0.0.1"]
        resolver.port = self.port
        return resolver

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()


def txt(value: str) -> str:
    """A TXT record's text form, split into strings of at most 255 characters."""
    return " ".join(f'"{value[i : i + 255]}"' for i in range(0, len(value), 255))


@pytest.fixture(scope="module")
def dkim_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """An RSA key (PEM file) and the TXT record that publishes it."""
    key, record = make_dkim_key(tmp_path_factory.mktemp("dkim"))
    return key, record.decode()


@pytest.fixture
def zone(dkim_key: tuple[Path, str]) -> Iterator[Zone]:
    """DNS for DOMAIN: SPF, DMARC at the parent only for news.DOMAIN, a DKIM key."""
    server = Zone(
        {
            ("org.", "SOA"): ["a.org. admin.org. 1 3600 600 86400 60"],
            (f"{DOMAIN}.", "TXT"): [txt("v=spf1 include:_spf.relay.net -all"), txt("site=1")],
            (f"news.{DOMAIN}.", "TXT"): [txt("v=spf1 -all"), txt("v=spf1 a -all")],
            (f"_dmarc.{DOMAIN}.", "TXT"): [txt("v=DMARC1; p=quarantine")],
            (f"s1._domainkey.{DOMAIN}.", "TXT"): [txt(dkim_key[1])],
            (f"s2._domainkey.{DOMAIN}.", "TXT"): [txt("v=DKIM1; k=rsa; p=MIIBIjANBgkq")],
            ("bare.org.", "A"): ["192.0.2.1"],
        }
    )
    yield server
    server.close()


def looked_up(tmp_path: Path, resolver: dns.resolver.Resolver, **values: Any) -> list[Finding]:
    return check_dns(Settings(var_dir=tmp_path, sources=[], **values), resolver)


def test_spf_dkim_and_dmarc_are_looked_up(
    tmp_path: Path, zone: Zone, dkim_key: tuple[Path, str]
) -> None:
    found = looked_up(
        tmp_path,
        zone.resolver(),
        from_=f"Digest <digest@{DOMAIN}>",
        dkim_private_key=dkim_key[0],
        dkim_selector="s1",
    )
    assert found == [
        Finding("SPF", Level.ok, f"{DOMAIN}: v=spf1 include:_spf.relay.net -all"),
        Finding(
            "DKIM", Level.ok, f"s1._domainkey.{DOMAIN} verifies mail signed with {dkim_key[0]}"
        ),
        Finding("DMARC", Level.ok, f"_dmarc.{DOMAIN}: v=DMARC1; p=quarantine"),
    ]
    relay = looked_up(tmp_path, zone.resolver(), from_=f"digest@{DOMAIN}")
    assert relay[1].level is Level.info
    assert relay[1].says.startswith("cannot be checked: digest does not sign")


def test_missing_and_mismatched_records_are_problems(
    tmp_path: Path, zone: Zone, dkim_key: tuple[Path, str]
) -> None:
    found = looked_up(
        tmp_path,
        zone.resolver(),
        from_=f"digest@news.{DOMAIN}",
        dkim_private_key=dkim_key[0],
        dkim_selector="s2",
        dkim_domain=DOMAIN,
    )
    spf, dkim, dmarc = found
    assert spf.level is Level.problem and spf.says.startswith(f"2 SPF records at news.{DOMAIN}")
    assert dkim.level is Level.problem
    assert dkim.says.startswith(f"the record at s2._domainkey.{DOMAIN} does not verify")
    assert dmarc == Finding(
        "DMARC", Level.ok, f"_dmarc.{DOMAIN} (covers news.{DOMAIN}): v=DMARC1; p=quarantine"
    )
    spf, dkim, dmarc = looked_up(
        tmp_path,
        zone.resolver(),
        from_="digest@bare.org",
        return_path="bounces@nowhere.org",
        dkim_private_key=dkim_key[0],
    )
    assert spf.says.startswith("nowhere.org does not exist in DNS")
    assert dkim.says.startswith("no DKIM record at digest._domainkey.bare.org: publish")
    assert dmarc.says.startswith("no DMARC record at _dmarc.bare.org: Gmail and Yahoo")
    assert {spf.level, dkim.level, dmarc.level} == {Level.problem}


def test_dns_that_cannot_answer_is_a_warning(tmp_path: Path, zone: Zone) -> None:
    [lying] = looked_up(tmp_path, zone.resolver(), from_="digest@lab.ac.uk")
    assert lying.level is Level.warning
    assert lying.says.startswith("cannot look up: the resolver says even .uk does not exist")
    silent = dns.resolver.Resolver(configure=False)
    silent.nameservers = ["127.0.0.1"]
    silent.port = free_port()  # nothing answers there: each lookup times out
    [timeout] = looked_up(tmp_path, silent, from_=f"digest@{DOMAIN}")
    assert timeout.level is Level.warning
    assert timeout.says.startswith("cannot look up: DNS did not answer")


@SQLITE
def test_dns_runs_without_crashing_wherever_it_is(live: dict[str, str | None]) -> None:
    """The system's resolver, whatever it can reach: findings, never a traceback."""
    result = runner.invoke(app, ["doctor"], env=live)
    assert result.exit_code in (0, 1) and not isinstance(result.exception, Exception), result.output
    assert any(x.split()[1:2] in (["SPF:"], ["SPF,"]) for x in result.output.splitlines())

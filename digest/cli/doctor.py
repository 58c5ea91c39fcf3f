"""`digest doctor`: check a deployment against the before-you-go-live checklist.

Each finding is ok, info (nothing to check, a reminder), a warning (fine for a demo or a
small lab, think before going live) or a problem (fix it first), with one line saying
what to do. Nothing is changed: the database, the mailboxes and the SMTP relay are only
opened; DNS is asked for TXT records (SPF, DKIM, DMARC), with a short timeout.
"""

from __future__ import annotations

import asyncio
import imaplib
import json
import os
import re
import ssl
import stat
from collections import Counter
from dataclasses import asdict, dataclass
from email.headerregistry import Address
from email.utils import formatdate, make_msgid
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import dkim
import dns.exception
import dns.resolver
import sqlalchemy as sa
import typer
from rich.markup import escape
from sqlalchemy.engine import make_url

from digest import db
from digest.cli import common
from digest.cli.common import console
from digest.config import KEY_FILE, MIN_KEY_LENGTH, WEAK_KEYS, Settings, SmtpSecurity
from digest.config import _loopback as loopback
from digest.delivery.inbox import ImapError, ImapUrlError, parse_imap_url
from digest.delivery.inbox import _connect as imap_connect
from digest.delivery.inbox import _quoted as imap_quoted
from digest.delivery.transport import SendError, SmtpTransport
from digest.mail.dkim import SigningError, sign
from digest.mail.message import sender
from digest.models import SUBSCRIBERS, SubscriberStatus

DNS_TIMEOUT = 2.0  # seconds for one DNS lookup
CONNECT_TIMEOUT = 5.0  # seconds to connect and log in (SMTP, IMAP, PostgreSQL)
CAPTURE = 8025  # the port `digest smtp-capture` listens on by default

# key_problem() judges a key for the address the web app listens on: on every address
# (0.0.0.0), only the key's own strength counts, whatever DIGEST_BASE_URL says.
_EVERYWHERE = "0.0.0.0"

# Names no one can receive mail at or publish DNS records for (RFC 2606, RFC 6761).
_PLACEHOLDER_TLDS = {"example", "invalid", "local", "localdomain", "localhost", "test"}
_PLACEHOLDER_DOMAINS = ("example.com", "example.net", "example.org")


class Level(StrEnum):
    """How a finding stands, from fine to blocking."""

    ok = "ok"
    info = "info"
    warning = "warning"
    problem = "problem"


@dataclass(frozen=True)
class Finding:
    """One line of the report: what was checked, how it stands, and what to do."""

    item: str
    level: Level
    says: str


def placeholder(domain: str) -> bool:
    """True for localhost, a single label, or a reserved example/test/invalid name."""
    name = domain.lower().rstrip(".")
    if "." not in name:
        return True
    tld = name.rpartition(".")[2]
    return tld in _PLACEHOLDER_TLDS or any(
        name == d or name.endswith(f".{d}") for d in _PLACEHOLDER_DOMAINS
    )


# 1. The key that signs links.


def check_key(settings: Settings) -> list[Finding]:
    """The link-signing key: strong enough (config's own rule), and where it comes from."""
    key = settings.secret_key.get_secret_value()
    live = settings.key_problem()
    weak = settings.key_problem(_EVERYWHERE)
    if live:
        first = Finding("signing key", Level.problem, live)
    elif weak:
        first = Finding(
            "signing key",
            Level.warning,
            f"{weak}; accepted for now only because DIGEST_BASE_URL is on loopback "
            "(fine for a demo)",
        )
    else:
        first = Finding("signing key", Level.ok, f"a {len(key)}-character key, not a default")
    return [first, _key_source(settings, key)]


def _key_source(settings: Settings, key: str) -> Finding:
    path = settings.var_dir / KEY_FILE
    try:
        kept = path.read_text(encoding="utf-8").strip() if path.is_file() else ""
    except OSError:
        kept = ""
    if not kept or kept != key:
        return Finding(
            "signing key",
            Level.ok,
            "set by DIGEST_SECRET_KEY (environment or .env): every machine that sends or "
            "serves needs the same one",
        )
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return Finding(
            "signing key",
            Level.problem,
            f"kept in {path} with mode {mode:04o}, readable by other users: chmod 600 {path}",
        )
    return Finding(
        "signing key", Level.ok, f"kept in {path} (mode {mode:04o}): back it up with the database"
    )


# 2. The address links in emails point at.


def check_base_url(settings: Settings) -> Finding:
    """DIGEST_BASE_URL: https on a public name; loopback is for demos."""
    url = settings.base_url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        return Finding(
            "base URL",
            Level.problem,
            f"DIGEST_BASE_URL {url!r} is not an http(s) URL: set it to the web app's public "
            "https:// address",
        )
    if loopback(host):
        return Finding(
            "base URL",
            Level.warning,
            f"{url} is on loopback: fine for a demo, but links in emails open on this machine "
            "only; set DIGEST_BASE_URL to the web app's public https:// address",
        )
    if parts.scheme != "https":
        return Finding(
            "base URL",
            Level.problem,
            f"{url} is plain http: the links carry subscribers' signed tokens in the clear; "
            f"serve the web app over https (a TLS proxy) and set DIGEST_BASE_URL=https://{host}",
        )
    return Finding("base URL", Level.ok, url)


# 3. Who the mail is from.


def from_address(settings: Settings) -> Address | None:
    """The From address, or None when DIGEST_FROM does not parse as one."""
    try:
        return sender(settings)
    except ValueError:
        return None


def check_from(settings: Settings) -> list[Finding]:
    """DIGEST_FROM at a real domain, and a sender identity for the footer."""
    address = from_address(settings)
    if address is None:
        first = Finding(
            "From address",
            Level.problem,
            f"DIGEST_FROM {settings.from_!r} is not an address: set it to 'Name <you@domain>'",
        )
    elif placeholder(address.domain):
        first = Finding(
            "From address",
            Level.problem,
            f"{address.addr_spec}: {address.domain or 'no domain'} is not a domain anyone can "
            "reply to or verify; set DIGEST_FROM to an address at a domain you control",
        )
    else:
        first = Finding("From address", Level.ok, str(address))
    identity = " ".join(settings.sender_identity.split())
    if identity:
        second = Finding("sender identity", Level.ok, f"the footer says: {identity}")
    else:
        second = Finding(
            "sender identity",
            Level.warning,
            "not set: set DIGEST_SENDER_IDENTITY to a name and postal address for the footer "
            "(CAN-SPAM and Gmail's bulk-sender rules expect one)",
        )
    return [first, second]


# 4. SPF, DKIM and DMARC of the From domain.


class CannotLookUp(Exception):
    """DNS gave no answer (no resolver, a timeout, a server failure)."""


class Lookup:
    """DNS lookups with a short timeout; after a timeout, the rest are not tried."""

    def __init__(self, resolver: dns.resolver.Resolver) -> None:
        self.resolver = resolver
        self.down = ""

    def answer(self, name: str, kind: str) -> list[Any] | None:
        """The records of `kind` at `name` ([] for none), None when the name does not exist."""
        if self.down:
            raise CannotLookUp(self.down)
        try:
            found = self.resolver.resolve(f"{name}.", kind, lifetime=DNS_TIMEOUT, search=False)
        except dns.resolver.NXDOMAIN:
            return None
        except dns.resolver.NoAnswer:
            return []
        except dns.exception.Timeout as exc:
            self.down = f"DNS did not answer ({exc})"
            raise CannotLookUp(self.down) from exc
        except (dns.exception.DNSException, OSError) as exc:
            raise CannotLookUp(str(exc) or type(exc).__name__) from exc
        return list(found)

    def txt(self, name: str) -> list[str] | None:
        """The TXT strings at `name` ([] for none), None when the name does not exist."""
        found = self.answer(name, "TXT")
        if found is None:
            return None
        return [b"".join(record.strings).decode("utf-8", "replace") for record in found]

    def sees_public_dns(self, domain: str) -> None:
        """Raise CannotLookUp unless the resolver knows `domain`'s top-level domain: one
        that says it does not exist (a sandbox, a captive network) would make every
        record look missing."""
        tld = domain.rstrip(".").rpartition(".")[2]
        if self.answer(tld, "SOA") is None:
            self.down = f"the resolver says even .{tld} does not exist, so it does not see the DNS"
            raise CannotLookUp(self.down)


def system_resolver() -> dns.resolver.Resolver:
    """The system's resolver (/etc/resolv.conf), with short timeouts."""
    resolver = dns.resolver.Resolver()
    resolver.timeout = resolver.lifetime = DNS_TIMEOUT
    return resolver


def _tagged(records: list[str] | None, version: str) -> list[str]:
    """The records that start with `version` (v=spf1, v=DMARC1)."""
    pattern = re.compile(rf"\s*{re.escape(version)}\s*(;|\s|$)", re.IGNORECASE)
    return [r for r in records or [] if pattern.match(r)]


def _cannot(item: str, name: str, exc: CannotLookUp) -> Finding:
    return Finding(
        item,
        Level.warning,
        f"cannot look up {name}: {exc}; check it from a machine that can (dig TXT {name})",
    )


def check_dns(settings: Settings, resolver: dns.resolver.Resolver | None = None) -> list[Finding]:
    """SPF at the envelope sender's domain, DKIM when digest signs, DMARC of the From."""
    address = from_address(settings)
    if address is None or placeholder(address.domain):
        return [Finding("SPF, DKIM, DMARC", Level.info, "not looked up: see the From address")]
    try:
        lookup = Lookup(resolver or system_resolver())
    except dns.exception.DNSException as exc:
        why = f"cannot look up: no DNS resolver ({exc}); check them from a machine that can"
        return [Finding("SPF, DKIM, DMARC", Level.warning, why)]
    domain = address.domain.lower()
    try:
        lookup.sees_public_dns(domain)
    except CannotLookUp as exc:
        why = f"cannot look up: {exc}; check them from a machine that can"
        return [Finding("SPF, DKIM, DMARC", Level.warning, why)]
    bounces = settings.return_path.rpartition("@")[2].lower()
    envelope = bounces if bounces and "{" not in bounces else domain
    return [_spf(lookup, envelope), _dkim(lookup, settings, domain), _dmarc(lookup, domain)]


def _spf(lookup: Lookup, domain: str) -> Finding:
    try:
        found = lookup.txt(domain)
    except CannotLookUp as exc:
        return _cannot("SPF", domain, exc)
    records = _tagged(found, "v=spf1")
    if found is None:
        return Finding(
            "SPF",
            Level.problem,
            f"{domain} does not exist in DNS: mail from it is refused; send from a domain "
            "you control",
        )
    if not records:
        return Finding(
            "SPF",
            Level.problem,
            f"no SPF record at {domain}: publish a TXT record such as "
            "'v=spf1 include:<your relay> -all' (your relay's documentation gives it)",
        )
    if len(records) > 1:
        return Finding(
            "SPF",
            Level.problem,
            f"{len(records)} SPF records at {domain}: receivers treat that as an error; "
            "merge them into one",
        )
    return Finding("SPF", Level.ok, f"{domain}: {records[0]}")


def _dmarc(lookup: Lookup, domain: str) -> Finding:
    """DMARC of `domain`, or of a parent (the organisational domain's record covers it)."""
    labels = domain.split(".")
    for name in (".".join(labels[i:]) for i in range(len(labels) - 1)):
        try:
            records = _tagged(lookup.txt(f"_dmarc.{name}"), "v=DMARC1")
        except CannotLookUp as exc:
            return _cannot("DMARC", f"_dmarc.{name}", exc)
        if records:
            covers = "" if name == domain else f" (covers {domain})"
            return Finding("DMARC", Level.ok, f"_dmarc.{name}{covers}: {records[0]}")
    return Finding(
        "DMARC",
        Level.problem,
        f"no DMARC record at _dmarc.{domain}: Gmail and Yahoo require one of bulk senders; "
        f"publish e.g. 'v=DMARC1; p=none; rua=mailto:dmarc@{domain}', then tighten p=",
    )


def _probe(address: str, domain: str) -> bytes:
    """A small message to sign and verify, as DKIM signs every digest."""
    return (
        f"From: {address}\r\nTo: {address}\r\nSubject: digest doctor\r\n"
        f"Date: {formatdate()}\r\nMessage-ID: {make_msgid('doctor', domain)}\r\n"
        "\r\nA DKIM probe from digest doctor.\r\n"
    ).encode()


def _dkim(lookup: Lookup, settings: Settings, domain: str) -> Finding:
    """The selector's record verifies a message signed with our key (when digest signs)."""
    key = settings.dkim_private_key
    if key is None:
        return Finding(
            "DKIM",
            Level.info,
            f"cannot be checked: digest does not sign (DIGEST_DKIM_PRIVATE_KEY unset), so "
            f"your relay must sign mail from {domain}; its documentation gives the DNS record",
        )
    signing = settings.dkim_domain or domain
    name = f"{settings.dkim_selector}._domainkey.{signing}"
    try:
        signed = sign(_probe(f"doctor@{domain}", domain), settings)
        records = lookup.txt(name)
    except SigningError as exc:
        return Finding("DKIM", Level.problem, f"{exc}: fix DIGEST_DKIM_PRIVATE_KEY")
    except CannotLookUp as exc:
        return _cannot("DKIM", name, exc)
    if not records:
        return Finding(
            "DKIM",
            Level.problem,
            f"no DKIM record at {name}: publish the public key of {key} there "
            "('v=DKIM1; k=rsa; p=...')",
        )

    def published(_name: bytes, timeout: int = 5) -> bytes:
        return records[0].encode()

    if not dkim.verify(signed, dnsfunc=published):
        return Finding(
            "DKIM",
            Level.problem,
            f"the record at {name} does not verify mail signed with {key}: publish that key's "
            "public half there (or correct DIGEST_DKIM_SELECTOR)",
        )
    return Finding("DKIM", Level.ok, f"{name} verifies mail signed with {key}")


# 5. The mailbox where bounces and emailed unsubscribe requests arrive.


def check_inbox(settings: Settings) -> list[Finding]:
    """An inbox is set and opens; a return path sends bounces to it."""
    imap = settings.inbox_imap_url.get_secret_value()
    findings = []
    if settings.inbox_maildir is not None:
        findings.append(_maildir(settings.inbox_maildir))
        if imap:
            findings.append(
                Finding(
                    "inbox",
                    Level.warning,
                    "DIGEST_INBOX_IMAP_URL is not read while DIGEST_INBOX_MAILDIR is set: "
                    "unset one",
                )
            )
    elif imap:
        findings.append(_imap(imap))
    else:
        findings.append(
            Finding(
                "inbox",
                Level.warning,
                "none: bounces and emailed unsubscribe requests go unread (and digests offer "
                "no mailto: unsubscribe); set DIGEST_INBOX_IMAP_URL or DIGEST_INBOX_MAILDIR",
            )
        )
    findings.append(_return_path(settings))
    return findings


def _maildir(path: Path) -> Finding:
    folders = [path / "cur", path / "new"]
    if not all(f.is_dir() for f in folders):
        return Finding(
            "inbox",
            Level.problem,
            f"DIGEST_INBOX_MAILDIR {path} is not a Maildir (it needs cur/ and new/): "
            "point it at the Maildir your mail server delivers bounces to",
        )
    if not all(os.access(f, os.R_OK | os.W_OK | os.X_OK) for f in folders):
        return Finding(
            "inbox",
            Level.problem,
            f"Maildir {path}: this user cannot read and write cur/ and new/ (messages are "
            "flagged seen once read); fix its owner or mode",
        )
    return Finding("inbox", Level.ok, f"Maildir {path}")


def _imap(url: str) -> Finding:
    """Connect and log in as `digest inbox` does, and open the mailbox read-only."""
    try:
        target = parse_imap_url(url)
        client = imap_connect(target, CONNECT_TIMEOUT)
    except ImapUrlError as exc:
        return Finding("inbox", Level.problem, f"DIGEST_INBOX_IMAP_URL: {exc}")
    except ImapError as exc:
        return Finding("inbox", Level.problem, f"{exc}: check the host, the port and the server")
    try:
        client.login(target.user, target.password)
        kind, _ = client.select(imap_quoted(target.mailbox), readonly=True)
        tls = isinstance(client.sock, ssl.SSLSocket)
    except imaplib.IMAP4.error as exc:
        return Finding(
            "inbox",
            Level.problem,
            f"{target}: the server refused the login ({exc}): check the user and password",
        )
    except OSError as exc:
        return Finding("inbox", Level.problem, f"{target}: the connection failed: {exc}")
    finally:
        client.logout()
    if kind != "OK":
        return Finding("inbox", Level.problem, f"{target}: no mailbox {target.mailbox!r}")
    if not tls and not loopback(target.host):
        return Finding(
            "inbox",
            Level.warning,
            f"{target}: logged in without TLS, so the password crossed the network in the "
            "clear; use imaps://",
        )
    return Finding("inbox", Level.ok, f"{target}: logged in{' over TLS' if tls else ''}")


def _return_path(settings: Settings) -> Finding:
    if settings.return_path:
        return Finding("return path", Level.ok, f"bounces go to {settings.return_path}")
    address = from_address(settings)
    to = address.addr_spec if address else settings.from_
    return Finding(
        "return path",
        Level.warning,
        f"DIGEST_RETURN_PATH unset: bounces go to the From address {to}; make sure the inbox "
        "reads that mailbox, or set DIGEST_RETURN_PATH to the inbox's address",
    )


# 6. The database.


def check_database(settings: Settings) -> list[Finding]:
    """It opens, its schema is the latest, and it suits the size of the list."""
    url = make_url(settings.sqlalchemy_url)
    shown = url.render_as_string(hide_password=True)
    sqlite = url.get_backend_name() == "sqlite"
    in_file = sqlite and url.database not in (None, "", ":memory:")
    if in_file and not Path(str(url.database)).is_file():
        return [
            Finding("database", Level.problem, f"no database at {shown}: run `digest db upgrade`")
        ]
    options = {} if sqlite else {"connect_args": {"connect_timeout": int(CONNECT_TIMEOUT)}}
    engine = db.make_engine(settings.sqlalchemy_url, **options)
    try:
        pending = db.pending_migration(engine)
        if pending:
            return [Finding("database", Level.problem, f"{pending}: run `digest db upgrade`")]
        with engine.connect() as conn:
            s = SUBSCRIBERS.c
            active = conn.scalar(
                sa.select(sa.func.count()).where(s.status == SubscriberStatus.active)
            )
            vacuum = [] if sqlite else _vacuum_findings(conn)
    except sa.exc.SQLAlchemyError as exc:
        why = str(exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc).strip()
        return [Finding("database", Level.problem, f"cannot open {shown}: {why.splitlines()[0]}")]
    finally:
        engine.dispose()
    schema = Finding("database", Level.ok, f"{shown}: opens, and its schema is the latest")
    if sqlite:
        return [
            schema,
            Finding(
                "database",
                Level.warning,
                f"SQLite, {active} active subscriber(s): fine for a small lab on one machine; "
                "beyond that use PostgreSQL (DIGEST_DATABASE_URL=postgresql+psycopg://...)",
            ),
        ]
    ok = Finding("database", Level.ok, f"PostgreSQL, {active} active subscriber(s)")
    return [schema, ok, *vacuum]


# The outbox's tables: every send updates each digest row (claimed, renewed, sent) and
# adds to the ledger; dead rows and stale statistics then slow every claim and batch read.
OUTBOX_TABLES = ("digest", "digestpaper", "sentpaper")
DEAD_ROWS_MIN = 100_000
# Each of the outbox's tables: whether its own autovacuum_enabled is false (in any of the
# spellings PostgreSQL takes), and its live and dead rows, its partitions' if partitioned.
_OUTBOX_VACUUM = """
SELECT c.relname,
    EXISTS (SELECT 1 FROM unnest(coalesce(c.reloptions, '{}')) option
        WHERE split_part(option, '=', 1) = 'autovacuum_enabled'
        AND NOT split_part(option, '=', 2)::boolean),
    counts.live, counts.dead
FROM pg_class c
CROSS JOIN LATERAL (
    SELECT coalesce(sum(t.n_live_tup), 0) AS live, coalesce(sum(t.n_dead_tup), 0) AS dead
    FROM pg_stat_user_tables t
    WHERE t.relid IN (SELECT c.oid UNION SELECT relid FROM pg_partition_tree(c.oid))
) counts
WHERE c.oid IN (SELECT to_regclass(name) FROM unnest(CAST(:names AS text[])) name)
ORDER BY c.relname
"""


def _vacuum_findings(conn: sa.Connection, dead_min: int = DEAD_ROWS_MIN) -> list[Finding]:
    """PostgreSQL: warnings when nothing vacuums the outbox's tables, or one of them holds
    more dead rows than live ones (and more than `dead_min`)."""
    findings = []
    causes = [
        f"the server runs with {name} = off"
        for name in ("autovacuum", "track_counts")
        if conn.scalar(sa.text(f"SHOW {name}")) != "on"
    ]
    tables = conn.execute(sa.text(_OUTBOX_VACUUM), {"names": list(OUTBOX_TABLES)}).all()
    disabled = [name for name, table_off, _, _ in tables if table_off]
    if disabled:
        causes.append(f"autovacuum is disabled on {', '.join(disabled)}")
    if causes:
        findings.append(
            Finding(
                "database",
                Level.warning,
                f"{'; '.join(causes)}: each send updates every digest row and adds to the "
                "ledger, and unvacuumed dead rows slow every claim. Turn autovacuum on, or "
                f"run `VACUUM ANALYZE {', '.join(OUTBOX_TABLES)}` after each day's sending",
            )
        )
    for name, _, live_rows, dead_rows in tables:
        live, dead = int(live_rows), int(dead_rows)  # sums: numeric
        if dead > max(live, dead_min):
            findings.append(
                Finding(
                    "database",
                    Level.warning,
                    f"{name} holds {dead:,} dead rows and {live:,} live ones: "
                    f"run `VACUUM ANALYZE {name}`",
                )
            )
    return findings


# 7. The SMTP relay.


async def _smtp_error(settings: Settings) -> str | None:
    """Why the transport cannot connect (and log in), or None when it can."""
    transport = SmtpTransport(settings)
    try:
        await transport._connect()  # the transport's own steps: TLS, STARTTLS, AUTH
    except SendError as exc:
        return exc.reply
    finally:
        await transport.close()
    return None


def check_smtp(settings: Settings) -> list[Finding]:
    """The relay answers (with TLS and a login when configured); not the local capture."""
    host, port = settings.smtp_host, settings.smtp_port
    where = f"{host}:{port}"
    security = {
        SmtpSecurity.none: "no TLS",
        SmtpSecurity.starttls: "STARTTLS",
        SmtpSecurity.tls: "TLS",
    }[settings.smtp_security]
    login = f"login as {settings.smtp_user}" if settings.smtp_user else "no login"
    findings = []
    if loopback(host) and port == CAPTURE:
        findings.append(
            Finding(
                "SMTP",
                Level.warning,
                f"{where} is the local capture's address (`digest smtp-capture`): mail goes to "
                "the local capture, not the world; set DIGEST_SMTP_HOST and DIGEST_SMTP_PORT "
                "to your relay",
            )
        )
    error = asyncio.run(_smtp_error(settings.model_copy(update={"smtp_timeout": CONNECT_TIMEOUT})))
    if error:
        findings.append(
            Finding(
                "SMTP",
                Level.problem,
                f"{where} ({security}, {login}): {error}; check DIGEST_SMTP_HOST, "
                "DIGEST_SMTP_PORT, DIGEST_SMTP_SECURITY and the credentials",
            )
        )
    else:
        findings.append(Finding("SMTP", Level.ok, f"{where} answers ({security}, {login})"))
    if settings.smtp_security is SmtpSecurity.none and not loopback(host):
        findings.append(
            Finding(
                "SMTP",
                Level.warning,
                f"mail{' and the password' if settings.smtp_user else ''} cross the network "
                "unencrypted: set DIGEST_SMTP_SECURITY=starttls (port 587) or tls (465)",
            )
        )
    return findings


# 8. Backups; 9. the admin API.


def check_backups(settings: Settings) -> Finding:
    """A reminder: backups cannot be seen from here."""
    url = make_url(settings.sqlalchemy_url)
    sqlite = url.get_backend_name() == "sqlite"
    dump = f"sqlite3 {url.database} '.backup FILE'" if sqlite else "pg_dump"
    key = settings.var_dir / KEY_FILE
    return Finding(
        "backups",
        Level.info,
        f"cannot be checked from here: back up the database ({dump}) and {key} (or "
        "DIGEST_SECRET_KEY), and try a restore; see 'Before you go live' in docs/operating.md",
    )


def check_admin(settings: Settings) -> Finding:
    """The admin API's token, when it is on."""
    if settings.admin_token is None:
        return Finding("admin API", Level.ok, "off (DIGEST_ADMIN_TOKEN unset)")
    token = settings.admin_token.get_secret_value()
    if token in WEAK_KEYS or len(token) < MIN_KEY_LENGTH:
        return Finding(
            "admin API",
            Level.problem,
            f"on, with a {len(token)}-character DIGEST_ADMIN_TOKEN that a guess could find, and "
            f"it reads and changes every subscriber: use {MIN_KEY_LENGTH} or more random "
            "characters, or unset it",
        )
    return Finding("admin API", Level.ok, f"on, with a {len(token)}-character token")


def examine(
    settings: Settings, *, lookups: bool = True, resolver: dns.resolver.Resolver | None = None
) -> list[Finding]:
    """Every item of the checklist, in its order; DNS is asked only with `lookups`."""
    skipped = Finding("SPF, DKIM, DMARC", Level.info, "not looked up (--no-dns)")
    return [
        *check_key(settings),
        check_base_url(settings),
        *check_from(settings),
        *(check_dns(settings, resolver) if lookups else [skipped]),
        *check_inbox(settings),
        *check_database(settings),
        *check_smtp(settings),
        check_backups(settings),
        check_admin(settings),
    ]


def summary(findings: list[Finding]) -> str:
    """One line: how many problems and warnings, and what that means."""
    counts = Counter(f.level for f in findings)
    tally = (
        f"{counts[Level.problem]} problem(s), {counts[Level.warning]} warning(s), "
        f"{counts[Level.ok]} ok"
    )
    if counts[Level.problem]:
        return f"{tally}: fix the problems before going live"
    if counts[Level.warning]:
        return f"{tally}: no problems; read the warnings before going live"
    return f"{tally}: ready to go live"


_STYLES = {Level.ok: "green", Level.info: "cyan", Level.warning: "yellow", Level.problem: "red"}

app = typer.Typer()


@app.command()
def doctor(
    no_dns: Annotated[
        bool, typer.Option("--no-dns", help="Do not look up SPF, DKIM and DMARC in DNS.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the findings as one JSON object.")
    ] = False,
) -> None:
    """Check the deployment before it goes live: key, URL, From, DNS, inbox, database, SMTP.

    Each item is ok, info, a warning or a problem, with what to do; the exit status is 1
    when there is a problem. The checklist is in docs/operating.md ("Before you go live").
    """
    findings = examine(common.settings(), lookups=not no_dns)
    problems = sum(f.level is Level.problem for f in findings)
    if as_json:
        record = {"findings": [asdict(f) for f in findings], "summary": summary(findings)}
        typer.echo(json.dumps(record, ensure_ascii=False))
    else:
        for f in findings:
            line = f"[{_STYLES[f.level]}]{f.level:<8}[/] {escape(f.item)}: {escape(f.says)}"
            console.print(line, highlight=False)
        console.print(summary(findings), highlight=False)
    if problems:
        raise typer.Exit(common.FAILED)

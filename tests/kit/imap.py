"""A real IMAP server for tests: Dovecot on a loopback port, run in the foreground."""

from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from digest.mail.capture import free_port
from tests.kit.env import missing

USER, PASSWORD = "bounces", "p@ss/w:rd?1"  # URL-special characters, quoted in URLs


def dovecot_binary() -> str:
    """The dovecot binary, or skip (fail when DIGEST_TEST_REQUIRE_IMAP=1).

    Without Dovecot (or without root) the tests using it are skipped, unless
    DIGEST_TEST_REQUIRE_IMAP=1 (CI), where they fail. DIGEST_TEST_DOVECOT names another binary.
    """
    chosen = os.environ.get("DIGEST_TEST_DOVECOT")
    found = (
        shutil.which(chosen)
        if chosen
        else shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin:/usr/local/sbin")
    )
    problem = None if found else "Dovecot is not installed (apt-get install dovecot-imapd)"
    if found and os.geteuid() != 0:
        problem = "the Dovecot tests run as root (Dovecot switches to a mail user)"
    if problem is None and found:
        return found
    missing(f"{problem} (DIGEST_TEST_REQUIRE_IMAP=1 requires it)", "DIGEST_TEST_REQUIRE_IMAP")


def quoted(mailbox: str) -> str:
    """A mailbox name as an IMAP quoted string."""
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class Dovecot:
    """A running Dovecot with one user whose mail is a Maildir."""

    host: str
    port: int
    log: Path
    tls_port: int = 0
    cert: Path | None = None

    def url(self, mailbox: str = "INBOX", password: str = PASSWORD, *, tls: bool = False) -> str:
        """An imap:// (or, with tls, imaps://) URL for the test user."""
        auth = f"{quote(USER, safe='')}:{quote(password, safe='')}"
        if tls:
            return f"imaps://{auth}@{self.host}:{self.tls_port}/{quote(mailbox)}"
        return f"imap://{auth}@{self.host}:{self.port}/{quote(mailbox)}"

    @contextmanager
    def client(self) -> Iterator[imaplib.IMAP4]:
        """A logged-in IMAP connection."""
        client = imaplib.IMAP4(self.host, self.port, timeout=10)
        try:
            client.login(USER, PASSWORD)
            yield client
        finally:
            client.logout()

    def append(self, *messages: bytes, mailbox: str = "INBOX") -> None:
        """Deliver messages into a mailbox, creating it if needed."""
        with self.client() as client:
            if mailbox != "INBOX":
                client.create(quoted(mailbox))
            for raw in messages:
                kind, data = client.append(quoted(mailbox), "", None, raw)
                assert kind == "OK", data

    def flags(self, mailbox: str = "INBOX") -> list[str]:
        """The flags of every message in a mailbox, in order."""
        with self.client() as client:
            client.select(quoted(mailbox), readonly=True)
            _, data = client.fetch("1:*", "(FLAGS)")
            return [item.decode() for item in data if isinstance(item, bytes)]


CONFIG = """
protocols = imap
listen = {host}
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
mail_location = maildir:{mail}/Maildir
service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {port}
  }}
  inet_listener imaps {{
    address = {host}
    port = {tls_port}
  }}
}}
passdb {{
  driver = static
  args = user={user} password={password}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={mail}
}}
"""


def self_signed(root: Path, host: str) -> tuple[Path, Path]:
    """A certificate for `host` and its key, made with openssl."""
    cert, key = root / "cert.pem", root / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-nodes", "-days", "2", "-newkey", "ec"),
            *("-pkeyopt", "ec_paramgen_curve:prime256v1", "-subj", f"/CN={host}"),
            *("-addext", f"subjectAltName=IP:{host}", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def start_dovecot(root: Path, *, tls: bool = False) -> Iterator[Dovecot]:
    """Run Dovecot from a config under `root` until the generator is closed."""
    binary = dovecot_binary()
    # Dovecot refuses to touch mail as root, and pytest's tmp_path is private to root, so
    # the mail lives in a directory of its own, owned by the unprivileged mail user.
    nobody = pwd.getpwnam("nobody")
    mail = Path(tempfile.mkdtemp(prefix="digest-imap-"))
    os.chown(mail, nobody.pw_uid, nobody.pw_gid)
    for folder in ("run", "state"):
        (root / folder).mkdir(parents=True)
    server = Dovecot("127.0.0.1", free_port(), root / "dovecot.log")
    ssl = "ssl = no"
    if tls:
        server.cert, key = self_signed(root, server.host)
        server.tls_port = free_port()
        ssl = f"ssl = yes\nssl_cert = <{server.cert}\nssl_key = <{key}"
    config = root / "dovecot.conf"
    config.write_text(
        CONFIG.format(
            host=server.host,
            port=server.port,
            tls_port=server.tls_port,
            ssl=ssl,
            root=root,
            mail=mail,
            user=USER,
            password=PASSWORD,
            uid=nobody.pw_uid,
            gid=nobody.pw_gid,
        )
    )
    with open(root / "stdout.log", "wb") as out:
        process = subprocess.Popen(
            [binary, "-F", "-c", str(config)], stdout=out, stderr=out, start_new_session=True
        )
    try:
        _wait_until_listening(server, process, root)
        yield server
    finally:
        # Stopping the whole group at once is quicker than the master's own shutdown.
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
        shutil.rmtree(mail, ignore_errors=True)


def _wait_until_listening(server: Dovecot, process: subprocess.Popen[bytes], root: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            with socket.create_connection((server.host, server.port), timeout=1):
                return
        except OSError:
            time.sleep(0.02)  # startup readiness only; no test logic depends on time
    logs = [p.read_text(errors="replace") for p in root.glob("*.log")]
    pytest.fail("Dovecot did not start:\n" + "\n".join(logs))

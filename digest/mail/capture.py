"""A local SMTP server (aiosmtpd) that stores every message it accepts in a Maildir."""

from __future__ import annotations

import socket
from email import policy
from email.parser import BytesHeaderParser
from pathlib import Path
from types import TracebackType

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class CaptureServer:
    """An SMTP server on a loopback port writing to `maildir`; use as a context manager."""

    def __init__(self, maildir: Path, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.maildir_path = maildir
        for folder in ("tmp", "new", "cur"):
            (maildir / folder).mkdir(parents=True, exist_ok=True)
        self.host = host
        self.port = port or free_port(host)
        self.controller = Controller(Mailbox(maildir), hostname=host, port=self.port)

    def __enter__(self) -> CaptureServer:
        self.controller.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.controller.stop()


def find_message(maildir: Path, message_id: str) -> Path | None:
    """The file in `maildir` holding the message whose Message-ID is `message_id`."""
    parser = BytesHeaderParser(policy=policy.default)
    for folder in ("new", "cur"):
        for path in sorted((maildir / folder).glob("*")):
            with path.open("rb") as handle:
                if parser.parse(handle).get("Message-ID") == message_id:
                    return path
    return None

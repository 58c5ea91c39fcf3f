"""What reaches the SMTP server is the message as aiosmtplib itself would send it: line
ends made CRLF and lines starting with a dot stuffed, on the quick path for composed
messages and on aiosmtplib's own for anything else."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtplib import protocol
from hypothesis import given
from hypothesis import strategies as st

from digest.config import Settings
from digest.delivery.transport import Envelope, SmtpTransport
from digest.mail.capture import free_port

STOCK = protocol.normalize_message_line_endings.__wrapped__  # type: ignore[attr-defined]
HEAD = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: s\r\n\r\n"


class Keep:
    def __init__(self) -> None:
        self.contents: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.contents.append(envelope.original_content)
        return "250 OK"


@pytest.mark.parametrize(
    "body",
    [
        b"plain lines\r\nand more\r\n",
        b"no line break at the end",
        b".a leading dot\r\n..two\r\nin. the middle\r\n.\r\n",
        b"lone LF\nlone CR\rmixed\r\n.dot after LF\n.",
        b"",
    ],
)
def test_the_server_gets_what_aiosmtplib_would_send(body: bytes) -> None:
    assert getattr(protocol.normalize_message_line_endings, "quick", False)
    keep, port = Keep(), free_port()
    controller = Controller(keep, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings = Settings(smtp_host="127.0.0.1", smtp_port=port, from_="a@example.org")
        message = HEAD + body
        envelope = Envelope("a@example.org", "b@example.org", message)

        async def send() -> None:
            smtp = SmtpTransport(settings)
            try:
                await smtp.send(envelope)
            finally:
                await smtp.close()

        asyncio.run(send())
    finally:
        controller.stop()
    # aiosmtpd hands over the content as sent, dots un-stuffed: the message with its
    # line ends normalized as aiosmtplib's own function does.
    (received,) = keep.contents
    assert received == STOCK(message)


@given(st.binary(max_size=200).map(lambda b: bytes(b"\r\n.x"[c % 4] for c in b)))
def test_the_quick_path_gives_aiosmtplibs_bytes(message: bytes) -> None:
    stock_dots = re.compile(rb"(?m)^\.")
    assert protocol.PERIOD_REGEX.sub(b"..", message) == stock_dots.sub(b"..", message)
    assert protocol.normalize_message_line_endings(message) == STOCK(message)
    assert protocol.normalize_message_line_endings(message) == STOCK(message)  # kept

"""What reaches the SMTP server is the message as aiosmtplib itself would send it: line
ends made CRLF and lines starting with a dot stuffed, on the quick path for composed
messages and on aiosmtplib's own for anything else."""

from __future__ import annotations

import asyncio
import pickle
import re
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtplib import protocol
from aiosmtplib import smtp as smtp_module
from hypothesis import given
from hypothesis import strategies as st

from digest.config import Settings
from digest.delivery.transport import Envelope, SmtpTransport, stuffed
from digest.mail.capture import free_port
from digest.mail.message import compose_wire, unstuffed
from digest.mail.render import Renderer
from tests.kit.mail import HOSTILE, digest_view, email_settings, make_dkim_key, paper
from tests.kit.seeds import T0

STOCK = protocol.normalize_message_line_endings.__wrapped__  # type: ignore[attr-defined]
HEAD = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: s\r\n\r\n"


class Keep:
    def __init__(self) -> None:
        self.contents: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.contents.append(envelope.original_content)
        return "250 OK"


def deliver(settings: Settings, envelope: Envelope) -> None:
    """Send `envelope` through our transport, as the sender does."""

    async def send() -> None:
        smtp = SmtpTransport(settings)
        try:
            await smtp.send(envelope)
        finally:
            await smtp.close()

    asyncio.run(send())


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

        deliver(settings, envelope)
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


@given(st.lists(st.binary(max_size=30).map(lambda b: bytes(b".x= "[c % 4] for c in b)), max_size=8))
def test_a_composed_message_is_stuffed_as_aiosmtplib_would(lines: list[bytes]) -> None:
    message = HEAD + b"".join(line + b"\r\n" for line in lines)
    stock_dots = re.compile(rb"(?m)^\.")
    assert stuffed(message) == stock_dots.sub(b"..", STOCK(message))
    # The quick path hands the stuffed form on untouched.
    wire = stuffed(message)
    assert protocol.PERIOD_REGEX.sub(b"..", protocol.normalize_message_line_endings(wire)) is wire
    # And the message is read back from it (as a sender given only the wire form does).
    assert unstuffed(wire) == message
    body = b"".join(line + b"\r\n" for line in lines)  # a first line that may start with "."
    assert unstuffed(stuffed(body)) == (body or b"\r\n")  # an empty message: one line end


@pytest.mark.parametrize(("dkim", "quick"), [(False, True), (True, True), (False, False)])
def test_composed_digests_reach_the_server_as_composed(
    dkim: bool, quick: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hostile papers, CR and LF in fields, lines that start with a dot: what `compose`
    writes has CRLF line ends only, as the wire form made in the render process needs,
    and the server gets the message itself (DKIM-signed too); also with an aiosmtplib
    that our quick path could not be put into (its own functions: not stuffed twice)."""
    if not quick:
        monkeypatch.setattr(protocol, "normalize_message_line_endings", STOCK)
        monkeypatch.setattr(protocol, "PERIOD_REGEX", re.compile(rb"(?m)^\."))
        monkeypatch.setattr(smtp_module, "normalize_message_line_endings", STOCK)
    keep, port = Keep(), free_port()
    controller = Controller(keep, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        key = {"dkim_private_key": make_dkim_key(tmp_path)[0]} if dkim else {}
        settings = email_settings(smtp_host="127.0.0.1", smtp_port=port, **key)
        rendered = Renderer(settings).digest(digest_view([*HOSTILE, paper(6, title=".dot")]))
        message, on_wire = compose_wire(
            rendered,
            to="reader@example.org",
            settings=settings,
            message_id="<digest.1.2026-11-26@digest.test>",
            date=T0,
            unsubscribe_url="https://digest.test/unsubscribe/tok",
        )
        envelope = Envelope.of(message, to="reader@example.org", settings=settings, wire=on_wire)
        data = envelope.data
        assert data.count(b"\n") == data.count(b"\r\n") == data.count(b"\r")
        assert b"\r\n." in data
        # The stuffed form made from the parts is the message's own, stuffed.
        assert envelope.wire == stuffed(data)
        assert Envelope.of(message, to="reader@example.org", settings=settings).wire == stuffed(
            data
        )

        # Handed from the render process to the sender: the wire form alone crosses, and
        # the message is read back from it where aiosmtplib does not take that form.
        pickled = pickle.dumps(envelope)
        assert len(pickled) < len(data) * 1.1
        handed = pickle.loads(pickled)
        assert handed == envelope and handed.wire == envelope.wire

        deliver(settings, handed)
    finally:
        controller.stop()
    assert keep.contents == [data]

"""Transports: one seam (`send(envelope) -> reply`); SMTP via aiosmtplib.

The SMTP transport keeps a pool of connections, each reused for many messages, honours
a global rate limit, and classifies every refusal so the outbox knows what to do next.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import aiosmtplib

from digest.config import Settings, SmtpSecurity
from digest.mail.dkim import sign
from digest.mail.message import envelope_sender, stuff, unstuffed

_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
# An address that the email package's parseaddr returns unchanged (dot-atoms, no quoting).
_DOT_ATOM_ADDRESS = re.compile(
    r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
)


class Stuffed(bytes):
    """A message as the DATA command carries it (RFC 5321, 4.5.2): CRLF line ends only,
    ending with one, and a "." put before every line that starts with one. aiosmtplib,
    quickened, sends it as it is; see `stuffed`."""


def stuffed(message: bytes) -> Stuffed:
    """`message`, dot-stuffed for DATA: its line ends must all be CRLF already, as
    `message.compose` writes them (headers refuse CR and LF, bodies are quoted-printable
    lines); they are not checked here, in the render process, for the time it takes."""
    return Stuffed(stuff(message if message.endswith(b"\r\n") else message + b"\r\n"))


class _LeadingDots:
    """aiosmtplib's dot-stuffing pattern (`(?m)^\\.` to `..`) as two byte-string
    operations: the pattern costs 0.4 ms over a 36 KB digest, these 0.1 ms."""

    def __init__(self, pattern: re.Pattern[bytes]) -> None:
        self.pattern = pattern

    def sub(self, replacement: bytes, message: bytes, count: int = 0) -> bytes:
        if replacement != b".." or count:
            return self.pattern.sub(replacement, message, count)
        if type(message) is Stuffed:
            return message
        if b"\n." in message:
            message = message.replace(b"\n.", b"\n..")
        return b"." + message if message.startswith(b".") else message


def _quicken_aiosmtplib() -> None:
    """Make aiosmtplib's per-message work on the DATA payload quick for the messages we
    compose (CRLF line ends only): its line-ending normalisation (run twice a message
    where the server takes SIZE) and dot-stuffing are regular expressions over every
    byte, about 1.5 ms for a realistic digest, on the sender's event loop. The results
    are the same; a message with other line ends takes aiosmtplib's own path. A
    `Stuffed` message is passed on as it is (its SIZE then counts the doubled dots, a
    few bytes more than RFC 1870 asks); it is sent only where this is in place."""
    from aiosmtplib import email, protocol, smtp

    _quicken_addresses(email, smtp)

    normalize = getattr(protocol, "normalize_message_line_endings", None)
    dots = getattr(protocol, "PERIOD_REGEX", None)
    if normalize is None or getattr(normalize, "quick", False) or not isinstance(dots, re.Pattern):
        return
    last: list[bytes] = [b"", b""]  # the message last seen and its result (SIZE, then DATA)

    def normalized(message: bytes) -> bytes:
        if type(message) is Stuffed:
            return message
        if message is last[0]:
            return last[1]
        ends = message.count(b"\r\n")
        if message.count(b"\n") == ends and message.count(b"\r") == ends:
            result = message if message.endswith(b"\r\n") else message + b"\r\n"
        else:
            result = normalize(message)
        last[:] = [message, result]
        return result

    normalized.quick = True  # type: ignore[attr-defined]
    normalized.__wrapped__ = normalize  # type: ignore[attr-defined]
    protocol.normalize_message_line_endings = normalized
    protocol.PERIOD_REGEX = _LeadingDots(dots)  # type: ignore[assignment]
    if getattr(smtp, "normalize_message_line_endings", None) is normalize:
        setattr(smtp, "normalize_message_line_endings", normalized)  # noqa: B010


def _quicken_addresses(email: Any, smtp: Any) -> None:
    """aiosmtplib parses the sender and the recipient with the email package's parseaddr
    three times a message (about 0.1 ms); a plain dot-atom address parses to itself."""
    parse = getattr(email, "parse_address", None)
    if parse is None or getattr(parse, "quick", False):
        return

    def parse_address(address: str) -> str:
        if _DOT_ATOM_ADDRESS.fullmatch(address):
            return address
        result: str = parse(address)
        return result

    parse_address.quick = True  # type: ignore[attr-defined]
    parse_address.__wrapped__ = parse  # type: ignore[attr-defined]
    email.parse_address = parse_address
    if getattr(smtp, "parse_address", None) is parse:
        setattr(smtp, "parse_address", parse_address)  # noqa: B010


_quicken_aiosmtplib()


def _takes_stuffed() -> bool:
    """Whether aiosmtplib, quickened, passes a `Stuffed` message on untouched (else it
    would stuff its dots a second time)."""
    from aiosmtplib import protocol

    quick = getattr(protocol.normalize_message_line_endings, "quick", False)
    return bool(quick) and isinstance(protocol.PERIOD_REGEX, _LeadingDots)


@dataclass(frozen=True)
class Envelope:
    """A rendered message ready for the wire: MAIL FROM, one RCPT TO, and the bytes."""

    sender: str
    recipient: str
    data: bytes
    wire: Stuffed | None = field(default=None, repr=False, compare=False)  # data, stuffed

    @classmethod
    def of(
        cls, message: bytes, *, to: str, settings: Settings, wire: bytes | None = None
    ) -> Envelope:
        """A composed message (`message.compose`) to `to`, DKIM-signed if configured, and
        its form on the wire, made here (in the render process) for the sender to pass on:
        `wire` when given (`message.compose_wire`'s), else stuffed from the message."""
        signed = sign(message, settings)
        if wire is None:
            return cls(envelope_sender(settings, to), to, signed, stuffed(signed))
        # A DKIM-Signature header, folded, has no line that starts with ".".
        header = signed[: len(signed) - len(message)]
        return cls(envelope_sender(settings, to), to, signed, Stuffed(header + wire))

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (from a render process to the sender) with the wire form alone where
        the message can be read back from it: half the bytes to copy and read."""
        state = dict(self.__dict__)
        if self.wire is not None and self.data.endswith(b"\r\n"):
            del state["data"]
        return state

    def __getattr__(self, name: str) -> Any:
        """`data`, read back from the wire form where it was left out (see __getstate__):
        only asked for where aiosmtplib does not take the wire form."""
        wire = self.__dict__.get("wire")
        if name != "data" or wire is None:
            raise AttributeError(name)
        data = unstuffed(wire)
        object.__setattr__(self, "data", data)
        return data


class Failure(StrEnum):
    """What a refusal means for the outbox."""

    temporary = "temporary"  # 4xx, lost connection, timeout: retry later
    recipient = "recipient"  # 5xx about the recipient: the subscriber bounced
    message = "message"  # 5xx about this message: give up on this digest only
    sender = "sender"  # 5.7.x, auth, relay refused: our problem; stop sending


class SendError(Exception):
    """A message was not accepted; `failure` says what it means."""

    def __init__(self, reply: str, failure: Failure, code: int | None = None) -> None:
        super().__init__(reply)
        self.reply = reply
        self.failure = failure
        self.code = code


def classify(code: int, text: str, *, at_recipient: bool) -> Failure:
    """Map an SMTP reply to a Failure, using the enhanced status code when present."""
    if code < 500:
        return Failure.temporary
    enhanced = _ENHANCED.match(text)
    if enhanced:
        subject = int(enhanced.group(2))
        if subject == 7:
            return Failure.sender
        if subject in (1, 2):
            return Failure.recipient
    if code in (530, 534, 535, 538):
        return Failure.sender
    return Failure.recipient if at_recipient else Failure.message


class Transport(Protocol):
    """Hands a message to the next hop and returns the server's reply."""

    async def send(self, envelope: Envelope) -> str:
        """Send one message; raise SendError when it is refused. Safe to call concurrently."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class RateLimit:
    """At most `rate` acquisitions per second, spread evenly (a shared pacing clock)."""

    def __init__(self, rate: float | None) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        """Wait for the next free slot."""
        if not self.interval:
            return
        async with self._lock:
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self.interval
        if delay > 0:
            await asyncio.sleep(delay)


class SmtpTransport:
    """A pool of reused aiosmtplib connections; reconnects on 421 or a dropped connection."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.size = max(1, settings.smtp_connections)
        self._idle: asyncio.Queue[aiosmtplib.SMTP | None] | None = None
        self._all: list[aiosmtplib.SMTP] = []
        self.rate = RateLimit(settings.smtp_rate_limit)

    def _pool(self) -> asyncio.Queue[aiosmtplib.SMTP | None]:
        if self._idle is None:
            self._idle = asyncio.Queue()
            for _ in range(self.size):
                self._idle.put_nowait(None)  # a slot; connected on first use
        return self._idle

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.settings
        smtp = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            timeout=s.smtp_timeout,
            use_tls=s.smtp_security is SmtpSecurity.tls,
            start_tls=s.smtp_security is SmtpSecurity.starttls,
        )
        try:
            await smtp.connect()
            if s.smtp_user:
                password = s.smtp_password.get_secret_value() if s.smtp_password else ""
                await smtp.login(s.smtp_user, password)
        except aiosmtplib.SMTPAuthenticationError as exc:
            smtp.close()
            raise SendError(f"{exc.code} {exc.message}", Failure.sender, exc.code) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            smtp.close()
            raise SendError(f"cannot connect: {exc}", Failure.temporary) from exc
        self._all.append(smtp)
        return smtp

    async def send(self, envelope: Envelope) -> str:
        """Send over a pooled connection; a lost connection is retried once on a new one."""
        pool = self._pool()
        smtp = await pool.get()
        try:
            await self.rate.wait()
            for attempt in (1, 2):
                if smtp is None or not smtp.is_connected:
                    smtp = await self._connect()
                try:
                    return await self._send_on(smtp, envelope)
                except _Reconnect as lost:
                    self._discard(smtp)
                    smtp = None
                    if attempt == 2:
                        raise lost.error from lost
            raise AssertionError("unreachable")
        finally:
            pool.put_nowait(smtp)

    @staticmethod
    def _data(envelope: Envelope) -> bytes:
        """The bytes to hand aiosmtplib: the wire form where it takes it as it is."""
        if envelope.wire is not None and _takes_stuffed():
            return envelope.wire
        return envelope.data

    async def _send_on(self, smtp: aiosmtplib.SMTP, envelope: Envelope) -> str:
        try:
            refused, reply = await smtp.sendmail(
                envelope.sender, [envelope.recipient], self._data(envelope)
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            first = exc.recipients[0]
            failure = classify(first.code, first.message, at_recipient=True)
            raise SendError(f"{first.code} {first.message}", failure, first.code) from exc
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError) as exc:
            raise _Reconnect(SendError(f"connection lost: {exc}", Failure.temporary)) from exc
        except aiosmtplib.SMTPResponseException as exc:
            error = SendError(
                f"{exc.code} {exc.message}",
                classify(exc.code, exc.message, at_recipient=False),
                exc.code,
            )
            if exc.code == 421:
                raise _Reconnect(error) from exc
            raise error from exc
        if refused:
            response = next(iter(refused.values()))
            failure = classify(response.code, response.message, at_recipient=True)
            raise SendError(f"{response.code} {response.message}", failure, response.code)
        return reply

    def _discard(self, smtp: aiosmtplib.SMTP | None) -> None:
        if smtp is not None:
            smtp.close()
            if smtp in self._all:
                self._all.remove(smtp)

    async def close(self) -> None:
        """Say QUIT on every open connection."""
        for smtp in self._all:
            if smtp.is_connected:
                try:
                    await smtp.quit()
                except (aiosmtplib.SMTPException, OSError):
                    smtp.close()
        self._all.clear()
        self._idle = None


class _Reconnect(Exception):
    """The connection is unusable; the message may be retried on a fresh one."""

    def __init__(self, error: SendError) -> None:
        super().__init__(error.reply)
        self.error = error

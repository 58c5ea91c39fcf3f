"""Transports: one seam (`send(message) -> reply`), SMTP via aiosmtplib and a Maildir."""

from __future__ import annotations

import mailbox
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path
from typing import Protocol

import aiosmtplib

from digest.config import Settings, SmtpSecurity
from digest.message import MESSAGE_POLICY
from digest.signing import SigningError, sign


def flatten(message: EmailMessage) -> bytes:
    """The message as SMTP carries it (CRLF), keeping long URL headers unencoded."""
    return message.as_bytes(policy=MESSAGE_POLICY.clone(linesep="\r\n"))


def envelope_sender(message: EmailMessage) -> str:
    """MAIL FROM: the Return-Path if set, else the From address."""
    return parseaddr(str(message.get("Return-Path") or message["From"]))[1]


class SendError(Exception):
    """A message was not accepted; `permanent` says whether retrying can help."""

    def __init__(self, reply: str, *, permanent: bool, code: int | None = None) -> None:
        super().__init__(reply)
        self.reply = reply
        self.permanent = permanent
        self.code = code


class Transport(Protocol):
    """Hands a message to the next hop and returns the server's reply."""

    async def send(self, message: EmailMessage) -> str:
        """Send one message; raise SendError when it is refused."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class SmtpTransport:
    """SMTP over one reused aiosmtplib connection, reconnecting when it drops."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._smtp: aiosmtplib.SMTP | None = None

    async def _connection(self) -> aiosmtplib.SMTP:
        if self._smtp is not None and self._smtp.is_connected:
            return self._smtp
        s = self.settings
        smtp = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            timeout=s.smtp_timeout,
            use_tls=s.smtp_security is SmtpSecurity.tls,
            start_tls=s.smtp_security is SmtpSecurity.starttls,
        )
        await smtp.connect()
        if s.smtp_user:
            password = s.smtp_password.get_secret_value() if s.smtp_password else ""
            await smtp.login(s.smtp_user, password)
        self._smtp = smtp
        return smtp

    async def send(self, message: EmailMessage) -> str:
        """Send over the shared connection; 4xx and lost connections are temporary."""
        try:
            smtp = await self._connection()
            refused, reply = await smtp.sendmail(
                envelope_sender(message),
                [str(message["To"])],
                sign(flatten(message), self.settings),
            )
        except SigningError as exc:  # an operator's key problem: keep the digest, retry later
            raise SendError(str(exc), permanent=False) from exc
        except aiosmtplib.SMTPRecipientsRefused as exc:
            first = exc.recipients[0]
            raise SendError(str(first), permanent=first.code >= 500, code=first.code) from exc
        except aiosmtplib.SMTPResponseException as exc:
            await self._drop()
            raise SendError(
                f"{exc.code} {exc.message}", permanent=exc.code >= 500, code=exc.code
            ) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            await self._drop()
            raise SendError(f"connection problem: {exc}", permanent=False) from exc
        if refused:
            code, text = next(iter(refused.values()))
            raise SendError(f"{code} {text}", permanent=code >= 500, code=code)
        return reply

    async def _drop(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None

    async def close(self) -> None:
        """Say QUIT if still connected."""
        if self._smtp is not None and self._smtp.is_connected:
            try:
                await self._smtp.quit()
            except aiosmtplib.SMTPException:
                self._smtp.close()
        self._smtp = None


class MaildirTransport:
    """Stores each message in a Maildir instead of sending it."""

    def __init__(self, path: Path) -> None:
        self.maildir = mailbox.Maildir(path, create=True)

    async def send(self, message: EmailMessage) -> str:
        """Store the message and reply with its Maildir key."""
        key = self.maildir.add(message)
        return f"250 stored as {key}"

    async def close(self) -> None:
        """Nothing to release."""

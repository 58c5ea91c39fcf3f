"""Optional DKIM signing in process, for operators whose relay does not sign."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import dkim

from digest.config import Settings
from digest.mail.message import message_domain

SIGNED_HEADERS = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"list-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"mime-version",
    b"content-type",
)


class SigningError(Exception):
    """The DKIM key cannot be read or used."""


@lru_cache(maxsize=4)
def _key(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SigningError(f"cannot read DKIM key {path}: {exc.strerror}") from exc


def sign(message: bytes, settings: Settings) -> bytes:
    """`message` with a DKIM-Signature header prepended; unchanged when no key is set."""
    if settings.dkim_private_key is None:
        return message
    domain = settings.dkim_domain or message_domain(settings)
    try:
        header = dkim.sign(
            message,
            settings.dkim_selector.encode(),
            domain.encode(),
            _key(settings.dkim_private_key),
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=[h for h in SIGNED_HEADERS if h in message.lower()],
        )
    except dkim.DKIMException as exc:
        raise SigningError(f"DKIM signing with {settings.dkim_private_key} failed: {exc}") from exc
    return bytes(header) + message

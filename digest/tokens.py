"""Signed, revocable tokens for the links in emails (unsubscribe, preferences)."""

from __future__ import annotations

from datetime import datetime

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

UNSUBSCRIBE = "unsubscribe"
PREFERENCES = "preferences"
CONFIRM = "confirm"
RESUBSCRIBE = "resubscribe"
FEED = "feed"


class TokenError(ValueError):
    """A token that is tampered with, expired, revoked or made for another purpose."""


class TokenExpired(TokenError):
    """A genuine token that is older than its purpose allows."""


def _serializer(secret: str, purpose: str, now: datetime | None) -> URLSafeTimedSerializer:
    if now is None:
        return URLSafeTimedSerializer(secret, salt=purpose)
    stamp = int(now.timestamp())

    class _At(TimestampSigner):
        def get_timestamp(self) -> int:
            return stamp

    return URLSafeTimedSerializer(secret, salt=purpose, signer=_At)


def make_token(
    secret: str,
    purpose: str,
    subscriber_id: int,
    token_version: int,
    *,
    now: datetime | None = None,
) -> str:
    """Sign (subscriber id, token version) for one purpose (stamped `now`, default: the time)."""
    return _serializer(secret, purpose, now).dumps([subscriber_id, token_version])


def read_token(
    secret: str,
    purpose: str,
    token: str,
    *,
    max_age: int | None = None,
    now: datetime | None = None,
) -> tuple[int, int]:
    """Verify a token and return (subscriber id, token version); raise TokenError if bad."""
    try:
        value = _serializer(secret, purpose, now).loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise TokenExpired(f"expired {purpose} link") from exc
    except BadSignature as exc:
        raise TokenError(f"invalid {purpose} link: {exc.__class__.__name__}") from exc
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(part, int) for part in value)
    ):
        raise TokenError(f"invalid {purpose} link: unexpected payload")
    return value[0], value[1]

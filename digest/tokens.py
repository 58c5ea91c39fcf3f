"""Signed, revocable tokens for the links in emails (unsubscribe, preferences)."""

from __future__ import annotations

from functools import lru_cache

from itsdangerous import BadSignature, URLSafeTimedSerializer

UNSUBSCRIBE = "unsubscribe"
PREFERENCES = "preferences"


class TokenError(ValueError):
    """A token that is tampered with, expired, revoked or made for another purpose."""


@lru_cache(maxsize=32)
def _serializer(secret: str, purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=purpose)


def make_token(secret: str, purpose: str, subscriber_id: int, token_version: int) -> str:
    """Sign (subscriber id, token version) for one purpose."""
    return str(_serializer(secret, purpose).dumps([subscriber_id, token_version]))


def read_token(
    secret: str, purpose: str, token: str, *, max_age: int | None = None
) -> tuple[int, int]:
    """Verify a token and return (subscriber id, token version); raise TokenError if bad."""
    try:
        value = _serializer(secret, purpose).loads(token, max_age=max_age)
    except BadSignature as exc:
        raise TokenError(f"invalid {purpose} link: {exc.__class__.__name__}") from exc
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(part, int) for part in value)
    ):
        raise TokenError(f"invalid {purpose} link: unexpected payload")
    return value[0], value[1]

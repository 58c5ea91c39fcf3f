"""Signed, revocable tokens for the links in emails (unsubscribe, preferences, feed, ...)."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from itsdangerous import (
    BadSignature,
    SignatureExpired,
    TimestampSigner,
    URLSafeSerializer,
    URLSafeTimedSerializer,
)
from itsdangerous.encoding import base64_encode, int_to_bytes, want_bytes
from itsdangerous.serializer import Serializer
from itsdangerous.signer import HMACAlgorithm

UNSUBSCRIBE = "unsubscribe"
PREFERENCES = "preferences"
CONFIRM = "confirm"
RESUBSCRIBE = "resubscribe"
FEED = "feed"
DIGESTS = "digests"  # a digest's full list, /digests/{token}/{digest id}
ADDRESS = "address"  # confirm a new address, /address/{token}, signing the address too
FEED_ADDRESS = "feed-address"  # the feed's lasting address (FEED: its timed form, before)
FEEDBACK = "feedback"  # one paper's "More like this" / "Not for me", /feedback/{token}/{kind}


# A link signed by a machine whose clock is a little ahead is not "expired".
CLOCK_SKEW = timedelta(minutes=5)


class TokenError(ValueError):
    """A token that is tampered with, expired, revoked or made for another purpose."""


class TokenExpired(TokenError):
    """A genuine token that is older than its purpose allows."""


class _KeptKeySigner(TimestampSigner):
    """A TimestampSigner that derives its key once, not for every signature: a digest
    signs a link for each of its papers."""

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        if secret_key is not None:
            return super().derive_key(secret_key)
        try:
            return self._derived
        except AttributeError:
            self._derived: bytes = super().derive_key()
            return self._derived

    def get_signature(self, value: str | bytes) -> bytes:
        """As TimestampSigner's, with the one-shot HMAC of the standard library (several
        times faster than building an HMAC object per signature)."""
        try:
            name = self._digest_name
        except AttributeError:
            algorithm = self.algorithm
            self._digest_name: str | None = (
                algorithm.digest_method().name if isinstance(algorithm, HMACAlgorithm) else None
            )
            name = self._digest_name
        if name is None:
            return super().get_signature(value)
        return base64_encode(hmac.digest(self.derive_key(), want_bytes(value), name))

    def sign_many(self, values: Iterable[bytes]) -> list[bytes]:
        """`sign` for each value, with one timestamp for them all."""
        sep = want_bytes(self.sep)
        stamp = sep + base64_encode(int_to_bytes(self.get_timestamp()))
        signed = []
        for value in values:
            stamped = value + stamp
            signed.append(stamped + sep + self.get_signature(stamped))
        return signed


@lru_cache(maxsize=32)
def _current(secret: str, purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=purpose, signer=_KeptKeySigner)


def _serializer(secret: str, purpose: str, now: datetime | None) -> URLSafeTimedSerializer:
    if now is None:
        return _current(secret, purpose)
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


@lru_cache(maxsize=32)
def _signer(secret: str, purpose: str) -> _KeptKeySigner:
    signer = _current(secret, purpose).make_signer()
    assert isinstance(signer, _KeptKeySigner)
    return signer


def make_tokens(
    secret: str, purposes: Iterable[str], subscriber_id: int, token_version: int
) -> dict[str, str]:
    """`make_token` for several purposes at once (one payload, signed once per purpose)."""
    wanted = list(purposes)
    if not wanted:
        return {}
    payload = _current(secret, wanted[0]).dump_payload([subscriber_id, token_version])
    return {purpose: _signer(secret, purpose).sign(payload).decode() for purpose in wanted}


def make_paper_tokens(
    secret: str, subscriber_id: int, token_version: int, paper_ids: Iterable[int]
) -> dict[int, str]:
    """FEEDBACK tokens signing (subscriber id, token version, paper id), one per paper.

    The payload is left uncompressed (three numbers never compress shorter), as the
    serializer reads it."""
    serializer, signer = _current(secret, FEEDBACK), _signer(secret, FEEDBACK)
    whole = type(subscriber_id) is int and type(token_version) is int

    def payload(paper: int) -> bytes:
        if whole and type(paper) is int:  # compact JSON, as the serializer writes it
            return base64_encode(f"[{subscriber_id},{token_version},{paper}]".encode())
        numbers = [subscriber_id, token_version, paper]
        return base64_encode(Serializer.dump_payload(serializer, numbers))

    papers = list(paper_ids)
    signed = signer.sign_many([payload(paper) for paper in papers])
    return {paper: token.decode() for paper, token in zip(papers, signed, strict=True)}


def read_paper_token(
    secret: str, token: str, *, max_age: int | None = None, now: datetime | None = None
) -> tuple[int, int, int]:
    """Verify a FEEDBACK token: (subscriber id, token version, paper id), or TokenError
    (TokenExpired when older than `max_age` seconds)."""
    value = _load(secret, FEEDBACK, token, max_age, now)
    if not (isinstance(value, list) and len(value) == 3 and all(type(v) is int for v in value)):
        raise TokenError(f"invalid {FEEDBACK} link: unexpected payload")
    return value[0], value[1], value[2]


def make_address_token(
    secret: str,
    subscriber_id: int,
    token_version: int,
    change: tuple[str, str],
    *,
    now: datetime | None = None,
) -> str:
    """An ADDRESS token: (subscriber id, token version, (old address, new address)),
    stamped `now`. It is good once: after the change, the old address is no longer theirs."""
    old, new = change
    return _serializer(secret, ADDRESS, now).dumps([subscriber_id, token_version, old, new])


def read_address_token(
    secret: str, token: str, *, max_age: int, now: datetime | None = None
) -> tuple[int, int, str, str]:
    """Verify an ADDRESS token: (subscriber id, token version, old address, new address),
    or TokenError."""
    value = _load(secret, ADDRESS, token, max_age, now)
    if not (isinstance(value, list) and [type(v) for v in value] == [int, int, str, str]):
        raise TokenError(f"invalid {ADDRESS} link: unexpected payload")
    return value[0], value[1], value[2], value[3]


def make_feed_token(secret: str, subscriber_id: int, token_version: int, feed_version: int) -> str:
    """The feed URL's token, signing (subscriber id, token version, feed version) with no
    time in it: the same URL on every visit, until the subscriber asks for a new one
    (feed version + 1), which stops the old one."""
    return URLSafeSerializer(secret, salt=FEED_ADDRESS).dumps(
        [subscriber_id, token_version, feed_version]
    )


def read_feed_token(secret: str, token: str) -> tuple[int, int, int]:
    """Verify a feed token: (subscriber id, token version, feed version), or TokenError.

    Feed URLs made before feeds had versions (timed tokens of the id and token version)
    still work, as feed version 1, until the first new URL is asked for.
    """
    try:
        value = URLSafeSerializer(secret, salt=FEED_ADDRESS).loads(token)
    except BadSignature:
        subscriber_id, version = read_token(secret, FEED, token)
        return subscriber_id, version, 1
    if not (isinstance(value, list) and len(value) == 3 and all(type(v) is int for v in value)):
        raise TokenError(f"invalid {FEED} link: unexpected payload")
    return value[0], value[1], value[2]


def _load(
    secret: str, purpose: str, token: str, max_age: int | None, now: datetime | None
) -> object:
    """The payload of a genuine token of `purpose`: TokenExpired when older than `max_age`
    seconds (a token a few minutes in the future is fine: clocks differ), else TokenError."""
    serializer = _serializer(secret, purpose, now)
    try:
        return serializer.loads(token, max_age=max_age)
    except SignatureExpired as exc:
        signed, current = exc.date_signed, now or datetime.now(UTC)
        if signed is None or exc.payload is None or not current < signed < current + CLOCK_SKEW:
            raise TokenExpired(f"expired {purpose} link") from exc
        return serializer.load_payload(exc.payload)
    except BadSignature as exc:
        raise TokenError(f"invalid {purpose} link: {exc.__class__.__name__}") from exc


def read_token(
    secret: str,
    purpose: str,
    token: str,
    *,
    max_age: int | None = None,
    now: datetime | None = None,
) -> tuple[int, int]:
    """Verify a token and return (subscriber id, token version); raise TokenError if bad."""
    value = _load(secret, purpose, token, max_age, now)
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(part, int) for part in value)
    ):
        raise TokenError(f"invalid {purpose} link: unexpected payload")
    return value[0], value[1]

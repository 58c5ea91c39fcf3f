"""The subscriber lifecycle, for every door: the CLI, the public pages and the admin API.

Input is checked here once (`validate_prefs`, `normalise_email`), so every door accepts and
refuses the same values, for the same reasons. Then: sign up (pending until confirmed),
confirm, change preferences, unsubscribe (at once, revoking every earlier link),
subscribe again, or create and update directly (CLI, admin API).

A sign-up never reveals whether an address is known: the caller answers the same way
whatever `request_subscription` decides, and at most one email per address per hour is
sent (recorded in Subscriber.confirm_sent_at, so it holds across processes).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from digest.clock import utcnow
from digest.db import among
from digest.match.query import InterestError, parse
from digest.models import (
    ERASURES,
    INTERESTS,
    MAX_PAPERS,
    SUBSCRIBERS,
    Cadence,
    SubscriberStatus,
)

EMAIL_INTERVAL = timedelta(hours=1)
Line = tuple[str, str]  # an interest line as typed, and its canonical form
MAX_INTERESTS = 20
RUNNING = (SubscriberStatus.active, SubscriberStatus.paused)


class SubscriberError(ValueError):
    """Input that cannot make a valid subscriber: messages by field, and by interest line.

    `lines` is keyed by 1-based line number (the admin API shows it as `interests[n-1]`).
    """

    def __init__(
        self,
        fields: dict[str, str],
        lines: dict[int, str] | None = None,
        typed: dict[int, str] | None = None,
    ) -> None:
        self.fields = fields
        self.lines = lines or {}
        shown = typed or {}
        numbered = [
            f"interest line {n}" + (f" {shown[n]!r}" if shown.get(n) else "") + f": {message}"
            for n, message in sorted(self.lines.items())
        ]
        super().__init__("; ".join([*fields.values(), *numbered]))


class SubscriberExists(ValueError):
    """A subscriber to create has an address that is already subscribed."""


Saved = tuple[int, bool] | SubscriberExists  # (id, created), or why it was not stored


@dataclass
class Prefs:
    """A subscriber's choices, validated."""

    interests: list[Line]
    timezone: str = "UTC"
    send_hour: int = 7
    cadence: Cadence = Cadence.daily
    weekday: int = 0
    max_papers: int = 20
    empty_note: bool | None = None  # None: as it was (the pages do not offer it)

    def values(self) -> dict[str, Any]:
        """The subscriber columns these choices set."""
        values: dict[str, Any] = {
            "timezone": self.timezone,
            "send_hour": self.send_hour,
            "cadence": self.cadence,
            "weekday": self.weekday,
            "max_papers": self.max_papers,
        }
        if self.empty_note is not None:
            values["empty_note"] = self.empty_note
        return values


def normalise_email(address: str) -> str:
    """Validate an address (syntax only) and return it in lower case."""
    try:
        return validate_email(address.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise SubscriberError({"email": f"email {address!r}: {exc}"}) from exc


@lru_cache(maxsize=1024)  # ZoneInfo reads a zone's file again once no one holds it
def check_timezone(name: str) -> str:
    """Return `name` if it is an IANA time zone, else raise SubscriberError."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        message = f"timezone {name!r} is not an IANA time zone name"
        raise SubscriberError({"timezone": message}) from exc
    return name


def parse_interests(lines: str | Sequence[str]) -> tuple[list[Line], dict[int, str]]:
    """Parse interest lines: a text, one per line (blank lines skipped), or a list (where an
    empty item is an error).

    Returns (valid (line, canonical) pairs, errors by 1-based line number).
    """
    items = lines.splitlines() if isinstance(lines, str) else list(lines)
    valid: list[Line] = []
    errors: dict[int, str] = {}
    for number, line in enumerate(items, start=1):
        if not line.strip():
            if not isinstance(lines, str):
                errors[number] = "an interest line cannot be empty"
            continue
        try:
            valid.append((line.strip(), parse(line).canonical))
        except InterestError as exc:
            errors[number] = str(exc).removesuffix(f": {exc.line!r}")
    return valid, errors


def _int(raw: Any, name: str, low: int, high: int, fields: dict[str, str]) -> int:
    try:
        value = int(str(raw).strip())
    except ValueError:
        fields[name] = f"{name.replace('_', ' ')} must be a whole number, not {raw!r}"
        return low
    if not low <= value <= high:
        fields[name] = f"{name.replace('_', ' ')} must be between {low} and {high}, not {value}"
    return value


def _flag(raw: Any) -> bool:
    if isinstance(raw, str):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    return bool(raw)


def validate_prefs(data: Mapping[str, Any], *, default_max: int = 20) -> Prefs:
    """Check a subscriber's choices (strings or values); raise SubscriberError naming every
    problem at once."""
    fields: dict[str, str] = {}
    interests, lines = parse_interests(data.get("interests") or "")
    first: dict[str, Line] = {}
    for line, canonical in interests:  # `diffusion` and `Diffusion` are stored once
        first.setdefault(canonical, (line, canonical))
    interests = list(first.values())
    if not interests and not lines:
        fields["interests"] = "enter at least one interest, one per line"
    elif len(interests) + len(lines) > MAX_INTERESTS:
        fields["interests"] = f"at most {MAX_INTERESTS} interests"
    timezone = str(data.get("timezone") or "UTC").strip()
    try:
        check_timezone(timezone)
    except SubscriberError as exc:
        fields.update(exc.fields)
    send_hour = _int(data.get("send_hour", 7), "send_hour", 0, 23, fields)
    try:
        cadence = Cadence(str(data.get("cadence") or "daily"))
    except ValueError:
        fields["cadence"] = f"cadence must be one of {', '.join(Cadence)}"
        cadence = Cadence.daily
    weekday = _int(data.get("weekday", 0), "weekday", 0, 6, fields)
    max_papers = _int(data.get("max_papers", default_max), "max_papers", 1, MAX_PAPERS, fields)
    if fields or lines:
        raw = data.get("interests") or ""
        typed = raw.splitlines() if isinstance(raw, str) else list(raw)
        raise SubscriberError(fields, lines, {n: typed[n - 1].strip() for n in lines})
    empty_note = _flag(data["empty_note"]) if "empty_note" in data else None
    return Prefs(interests, timezone, send_hour, cadence, weekday, max_papers, empty_note)


def find(conn: Connection, email: str) -> Any | None:
    """The subscriber row with this address, if any."""
    address = normalise_email(email)
    return conn.execute(sa.select(SUBSCRIBERS).where(SUBSCRIBERS.c.email == address)).first()


def _by_address(conn: Connection, addresses: Sequence[str]) -> dict[str, Any]:
    """The subscriber rows with these normalised addresses, by address."""
    query = sa.select(SUBSCRIBERS).where(among(conn, SUBSCRIBERS.c.email, addresses))
    return {row.email: row for row in conn.execute(query)}


def load(conn: Connection, subscriber_id: int) -> Any | None:
    """The subscriber row with this id, if any."""
    return conn.execute(sa.select(SUBSCRIBERS).where(SUBSCRIBERS.c.id == subscriber_id)).first()


def lines_of(conn: Connection, subscriber_ids: Iterable[int]) -> dict[int, list[Line]]:
    """Each subscriber's interest lines (as typed, canonical form), in their order."""
    found: dict[int, list[Line]] = defaultdict(list)
    for sub_id, query, canonical in conn.execute(
        sa.select(INTERESTS.c.subscriber_id, INTERESTS.c.query, INTERESTS.c.canonical)
        .where(among(conn, INTERESTS.c.subscriber_id, list(subscriber_ids)))
        .order_by(INTERESTS.c.subscriber_id, INTERESTS.c.position)
    ):
        found[sub_id].append((query, canonical))
    return found


def interests_of(conn: Connection, subscriber_id: int) -> list[str]:
    """The subscriber's interest lines as typed, in order."""
    return [query for query, _ in lines_of(conn, [subscriber_id]).get(subscriber_id, [])]


def replace_interests(conn: Connection, subscriber_id: int, prefs: Prefs) -> None:
    """Make `prefs.interests` the subscriber's interest lines, in that order."""
    _replace_interests(conn, {subscriber_id: prefs})


def _replace_interests(conn: Connection, prefs: Mapping[int, Prefs]) -> None:
    """Make each subscriber's interest lines those of their prefs, in that order."""
    conn.execute(sa.delete(INTERESTS).where(among(conn, INTERESTS.c.subscriber_id, list(prefs))))
    rows = [
        {"subscriber_id": sub_id, "query": q, "canonical": c, "position": i}
        for sub_id, choices in prefs.items()
        for i, (q, c) in enumerate(choices.interests)
    ]
    if rows:
        conn.execute(sa.insert(INTERESTS), rows)


def _insert(conn: Connection, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Insert subscriber rows (each with its address and status); their ids by address.
    An id is one no erased subscriber ever had.

    Old links name ids, so an id must never come back: PostgreSQL's sequence never reuses
    one, but SQLite gives the highest id again once that row is gone, so there the id
    is taken past the highest one an erasure recorded (row by row: the sqlite3 driver runs
    an executemany one row at a time).
    """
    statement = sa.insert(SUBSCRIBERS)
    if conn.dialect.name == "sqlite":
        highest = [
            sa.select(sa.func.coalesce(sa.func.max(column), 0)).scalar_subquery()
            for column in (SUBSCRIBERS.c.id, ERASURES.c.last_subscriber_id)
        ]
        statement = statement.values(id=sa.func.max(*highest) + 1)
    fixed = {"token_version": 1, "feed_version": 1, "soft_bounces": 0, "empty_note": False}
    for group in _alike([{**fixed, **row} for row in rows]):
        conn.execute(statement, group)
    stored = _by_address(conn, [row["email"] for row in rows]) if rows else {}
    return {address: row.id for address, row in stored.items()}


def _alike(rows: Iterable[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Rows grouped by the columns they set (one executemany a group), in their order."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    return list(groups.values())


@dataclass(frozen=True)
class Entry:
    """A subscriber as an admin enters one (API, CSV import), checked: ready to store."""

    address: str  # normalised
    status: SubscriberStatus
    prefs: Prefs


def check(data: Mapping[str, Any], *, default_max: int = 20) -> Entry:
    """Check an address, a status and choices (strings or values); raise SubscriberError
    naming every problem at once."""
    problems: dict[str, str] = {}
    address = str(data.get("email", ""))
    try:
        address = normalise_email(address)
    except SubscriberError as exc:
        problems.update(exc.fields)
    status = str(data.get("status") or SubscriberStatus.active)
    if status not in set(SubscriberStatus):
        problems["status"] = f"status must be one of {', '.join(SubscriberStatus)}"
    try:
        prefs = validate_prefs(data, default_max=default_max)
    except SubscriberError as exc:
        raise SubscriberError({**problems, **exc.fields}, exc.lines) from exc
    if problems:
        raise SubscriberError(problems)
    return Entry(address, SubscriberStatus(status), prefs)


def save(
    engine: Engine,
    email: str,
    prefs: Prefs,
    *,
    status: SubscriberStatus = SubscriberStatus.active,
    now: datetime,
    create: bool = False,
    subscriber_id: int | None = None,
) -> tuple[int, bool]:
    """Create or update a subscriber (by address, or by `subscriber_id`, whose address then
    changes too) directly, with no confirmation email, in one transaction.

    Returns (id, created). With `create`, an existing address raises SubscriberExists, as
    does a new address another subscriber has.
    """
    address = normalise_email(email)
    try:
        with engine.begin() as conn:
            return store(
                conn,
                address,
                prefs,
                status=status,
                now=now,
                create=create,
                subscriber_id=subscriber_id,
            )
    except IntegrityError as exc:
        raise SubscriberExists(f"{address} is already another subscriber's address") from exc


def save_all(engine: Engine, entries: Sequence[Entry], *, now: datetime) -> Sequence[Saved]:
    """Create or update each subscriber by address (all distinct), in one transaction and a
    few statements; for each, its (id, created), or the SubscriberExists that refused it.

    If the database refuses one (an address another writer took after it was looked up),
    that transaction is undone and each is saved in a transaction of its own, as `save`
    does, so that a refusal costs only its own row.
    """
    try:
        with engine.begin() as conn:
            found = _by_address(conn, [entry.address for entry in entries])
            return _write(conn, entries, [found.get(entry.address) for entry in entries], now)
    except IntegrityError:
        pass
    return [_save_one(engine, entry, now) for entry in entries]


def _save_one(engine: Engine, entry: Entry, now: datetime) -> Saved:
    try:
        return save(engine, entry.address, entry.prefs, status=entry.status, now=now)
    except SubscriberExists as exc:
        return exc


def store(
    conn: Connection,
    address: str,
    prefs: Prefs,
    *,
    status: SubscriberStatus = SubscriberStatus.active,
    now: datetime,
    create: bool = False,
    subscriber_id: int | None = None,
) -> tuple[int, bool]:
    """`save` in the caller's transaction, for a normalised address; a taken address
    raises IntegrityError (SubscriberExists with `create`), and spoils that transaction."""
    found = find(conn, address) if subscriber_id is None else load(conn, subscriber_id)
    if found is not None and create:
        raise SubscriberExists(f"{address} is already subscriber {found.id}")
    if found is None and subscriber_id is not None:
        raise SubscriberError({"id": f"no subscriber {subscriber_id}"})
    entry = Entry(address, status, prefs)
    [saved] = _write(conn, [entry], [found], now, move=subscriber_id is not None)
    return saved


def _write(
    conn: Connection,
    entries: Sequence[Entry],
    found: Sequence[Any | None],
    now: datetime,
    *,
    move: bool = False,
) -> list[tuple[int, bool]]:
    """Insert each entry whose row is None, update the others (their address too with
    `move`), and give each its prefs' interest lines: a few statements for any number."""
    pairs = list(zip(entries, found, strict=True))
    # Created directly in any state but pending: confirmed by whoever created them.
    ids = _insert(
        conn,
        [
            {
                "email": entry.address,
                "status": entry.status,
                "created_at": now,
                "confirmed_at": None if entry.status == SubscriberStatus.pending else now,
                "status_changed_at": now,
                **entry.prefs.values(),
            }
            for entry, row in pairs
            if row is None
        ],
    )
    changes = [_changes(entry, row, now, move) for entry, row in pairs if row is not None]
    for group in _alike(changes):
        conn.execute(SUBSCRIBERS.update().where(SUBSCRIBERS.c.id == sa.bindparam("sub_id")), group)
    sub_ids = [ids[entry.address] if row is None else row.id for entry, row in pairs]
    _replace_interests(conn, dict(zip(sub_ids, (entry.prefs for entry in entries), strict=True)))
    return [(sub_id, row is None) for sub_id, row in zip(sub_ids, found, strict=True)]


def _changes(entry: Entry, row: Any, now: datetime, move: bool) -> dict[str, Any]:
    """The columns of `row` to set for `entry`, and its id as `sub_id`."""
    values: dict[str, Any] = {"sub_id": row.id, **entry.prefs.values(), "status": entry.status}
    if move:
        values["email"] = entry.address
    if row.status != entry.status:
        values["status_changed_at"] = now
    if row.confirmed_at is None and entry.status == SubscriberStatus.active:
        values["confirmed_at"] = now
    return values


def subscribe(
    engine: Engine,
    email: str,
    interests: Sequence[str],
    *,
    status: SubscriberStatus = SubscriberStatus.active,
    now: datetime | None = None,
    **choices: Any,
) -> tuple[Any, bool]:
    """Add (or update) a subscriber (active by default) with these interest lines and
    choices (timezone, send_hour, cadence, weekday, max_papers, empty_note).

    Returns (row, created). Every value is checked as on the pages and the admin API; a
    bad one changes nothing.
    """
    unknown = choices.keys() - {*Prefs.__dataclass_fields__, "interests"}
    if unknown:
        raise TypeError(f"subscribe() got unexpected choices: {', '.join(sorted(unknown))}")
    prefs = validate_prefs({**choices, "interests": list(interests)})
    sub_id, created = save(engine, email, prefs, status=status, now=now or utcnow())
    with engine.connect() as conn:
        return load(conn, sub_id), created


class Action(StrEnum):
    """What a sign-up leads to (never shown to the person signing up)."""

    confirm = "confirm"  # new, pending or unsubscribed: send a confirmation link
    manage = "manage"  # already subscribed: send a link to the preferences page
    throttled = "throttled"  # an email went to this address less than an hour ago
    ignored = "ignored"  # bounced or complained: never email again from a web form


@dataclass
class SignUp:
    """The outcome of a sign-up: what to send, to whom."""

    action: Action
    subscriber_id: int | None = None
    email: str = ""
    token_version: int = 1
    interests: list[str] = field(default_factory=list)


def request_subscription(engine: Engine, email: str, prefs: Prefs, now: datetime) -> SignUp:
    """Record a sign-up as pending (or leave a known subscriber alone); say what to send."""
    address = normalise_email(email)
    lines = [q for q, _ in prefs.interests]
    try:
        with engine.begin() as conn:
            row = conn.execute(
                sa.select(SUBSCRIBERS).where(SUBSCRIBERS.c.email == address).with_for_update()
            ).first()
            if row is None:
                pending = {"confirm_sent_at": now, "status_changed_at": now, **prefs.values()}
                new = {"email": address, "status": SubscriberStatus.pending, "created_at": now}
                new_id = _insert(conn, [new | pending])[address]
                replace_interests(conn, new_id, prefs)
                return SignUp(Action.confirm, new_id, address, 1, lines)
            return _known_sign_up(conn, row, prefs, now, lines)
    except IntegrityError:
        # A concurrent sign-up for the same new address won; it sends the one email.
        return SignUp(Action.throttled)


def _known_sign_up(
    conn: Connection, row: Any, prefs: Prefs, now: datetime, lines: list[str]
) -> SignUp:
    """A sign-up for an address we have: what it leads to, by its state."""
    if row.status in (SubscriberStatus.bounced, SubscriberStatus.complained):
        return SignUp(Action.ignored)
    if row.confirm_sent_at is not None and now - row.confirm_sent_at < EMAIL_INTERVAL:
        return SignUp(Action.throttled)
    stamp = SUBSCRIBERS.update().where(SUBSCRIBERS.c.id == row.id)
    if row.status in RUNNING:
        conn.execute(stamp.values(confirm_sent_at=now))
        return SignUp(Action.manage, row.id, row.email, row.token_version)
    conn.execute(
        stamp.values(
            status=SubscriberStatus.pending,
            confirm_sent_at=now,
            status_changed_at=now,
            **prefs.values(),
        )
    )
    replace_interests(conn, row.id, prefs)
    return SignUp(Action.confirm, row.id, row.email, row.token_version, lines)


def email_failed(engine: Engine, subscriber_id: int) -> None:
    """Forget that an email was sent (it was not), so the person can try again at once."""
    with engine.begin() as conn:
        conn.execute(
            SUBSCRIBERS.update()
            .where(SUBSCRIBERS.c.id == subscriber_id)
            .values(confirm_sent_at=None)
        )


def confirm(engine: Engine, subscriber_id: int, now: datetime) -> bool:
    """Activate a pending subscriber; False if they were not pending (already confirmed)."""
    with engine.begin() as conn:
        done = conn.execute(
            SUBSCRIBERS.update()
            .where(
                SUBSCRIBERS.c.id == subscriber_id,
                SUBSCRIBERS.c.status == SubscriberStatus.pending,
            )
            .values(
                status=SubscriberStatus.active,
                confirmed_at=now,
                status_changed_at=now,
                confirm_sent_at=None,
            )
        )
    return done.rowcount == 1


def update_preferences(
    engine: Engine, subscriber_id: int, prefs: Prefs, *, paused: bool, now: datetime
) -> None:
    """Save edited preferences; pause or resume an active subscriber."""
    with engine.begin() as conn:
        row = load(conn, subscriber_id)
        if row is None:
            return
        values = prefs.values()
        wanted = SubscriberStatus.paused if paused else SubscriberStatus.active
        if row.status in RUNNING and row.status != wanted:
            values.update(status=wanted, status_changed_at=now)
        conn.execute(SUBSCRIBERS.update().where(SUBSCRIBERS.c.id == row.id).values(**values))
        replace_interests(conn, row.id, prefs)


def unsubscribe(engine: Engine, subscriber_id: int, now: datetime) -> int | None:
    """Unsubscribe at once and revoke every earlier link, in one statement.

    Returns the new token version, or None if nothing changed (already unsubscribed, or
    no such subscriber).
    """
    with engine.begin() as conn:
        changed: int | None = conn.execute(
            SUBSCRIBERS.update()
            .where(
                SUBSCRIBERS.c.id == subscriber_id,
                SUBSCRIBERS.c.status != SubscriberStatus.unsubscribed,
            )
            .values(
                status=SubscriberStatus.unsubscribed,
                status_changed_at=now,
                token_version=SUBSCRIBERS.c.token_version + 1,
            )
            .returning(SUBSCRIBERS.c.token_version)
        ).scalar()
    return changed


def unsubscribe_address(engine: Engine, email: str, now: datetime | None = None) -> bool | None:
    """`unsubscribe` by address: True if done now, False if it already was, None if unknown."""
    with engine.connect() as conn:
        row = find(conn, email)
    if row is None:
        return None
    return unsubscribe(engine, row.id, now or utcnow()) is not None


def change_address(engine: Engine, subscriber_id: int, email: str) -> None:
    """Give a subscriber a new address (normalised); SubscriberExists if another has it.

    Every earlier link keeps working: they name the subscriber, not the address.
    """
    address = normalise_email(email)
    try:
        with engine.begin() as conn:
            conn.execute(
                SUBSCRIBERS.update().where(SUBSCRIBERS.c.id == subscriber_id).values(email=address)
            )
    except IntegrityError as exc:
        raise SubscriberExists(f"{address} is already another subscriber's address") from exc


def new_feed_address(engine: Engine, subscriber_id: int) -> None:
    """Replace the subscriber's feed address; the old one stops working at once."""
    with engine.begin() as conn:
        conn.execute(
            SUBSCRIBERS.update()
            .where(SUBSCRIBERS.c.id == subscriber_id)
            .values(feed_version=SUBSCRIBERS.c.feed_version + 1)
        )


def resubscribe(engine: Engine, subscriber_id: int, now: datetime) -> bool:
    """Make an unsubscribed (once confirmed) subscriber active again; False otherwise."""
    with engine.begin() as conn:
        done = conn.execute(
            SUBSCRIBERS.update()
            .where(
                SUBSCRIBERS.c.id == subscriber_id,
                SUBSCRIBERS.c.status == SubscriberStatus.unsubscribed,
                SUBSCRIBERS.c.confirmed_at.is_not(None),
            )
            .values(status=SubscriberStatus.active, status_changed_at=now)
        )
    return done.rowcount == 1

"""The CSV import over HTTP: rows stored in chunks, and a bad or refused row costs only itself."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from digest import privacy
from digest.config import Settings
from digest.models import INTERESTS, SUBSCRIBERS, SubscriberStatus
from digest.subscribers import subscribe as add_subscriber
from digest.web.subscriber_csv import CHUNK, CSV_FIELDS, PROGRESS
from tests.kit.web import (
    AUTH,
    Clock,
    client,
    server,
    subscriber,
    subscriber_count,
    web_settings,
)

IMPORT = "/api/subscribers/import"
HEADER = ",".join([*CSV_FIELDS, "interests"]) + "\n"


def row(email: str, interests: str, status: str = "active", send_hour: int = 7) -> str:
    """One line of an export."""
    return f'{email},{status},Europe/Paris,{send_hour},daily,0,20,"{interests}"\n'


def refuse_inserts(engine: Engine, address: str) -> None:
    """Make the database refuse a new subscriber with this address as a taken one, as it
    does when another writer adds the address after the import looked it up."""
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.execute(
                sa.text(
                    f"CREATE TRIGGER taken BEFORE INSERT ON subscriber WHEN NEW.email = "
                    f"'{address}' BEGIN SELECT RAISE(ABORT, 'UNIQUE constraint failed'); END"
                )
            )
            return
        conn.execute(
            sa.text(
                "CREATE FUNCTION taken() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.email = '{address}' THEN RAISE EXCEPTION 'duplicate key' "
                "USING ERRCODE = 'unique_violation'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
            )
        )
        conn.execute(
            sa.text(
                "CREATE TRIGGER taken BEFORE INSERT ON subscriber "
                "FOR EACH ROW EXECUTE FUNCTION taken()"
            )
        )


def lines_of(engine: Engine) -> dict[str, list[str]]:
    """Every subscriber's interest lines, by address."""
    query = (
        sa.select(SUBSCRIBERS.c.email, INTERESTS.c.query)
        .join(INTERESTS, INTERESTS.c.subscriber_id == SUBSCRIBERS.c.id)
        .order_by(INTERESTS.c.subscriber_id, INTERESTS.c.position)
    )
    found: dict[str, list[str]] = {}
    with engine.connect() as conn:
        for email, line in conn.execute(query):
            found.setdefault(email, []).append(line)
    return found


def test_a_bad_row_and_a_refused_row_cost_only_themselves(
    settings: Settings, engine: Engine
) -> None:
    clock = Clock()
    old, _ = add_subscriber(engine, "old@example.org", ["robots"], status=SubscriberStatus.pending)
    same, _ = add_subscriber(engine, "same@example.org", ["robots"], now=clock.now)
    gone, _ = add_subscriber(engine, "gone@example.org", ["robots"])
    assert privacy.erase(engine, gone.id, clock.now, "admin")
    refuse_inserts(engine, "taken@example.org")
    clock.advance(hours=1)
    body = HEADER + "".join(
        row(f"new{n}@example.org", f"topic{n} | graph networks") for n in range(5)
    )
    body += row("bad@example.org", '""open', send_hour=25)  # line 7
    body += row("taken@example.org", "robots")  # line 8: the database refuses it
    body += row("OLD@example.org", "diffusion | robots")  # line 9: pending -> active
    body += row("same@example.org", "quantum")  # line 10: the same status
    body += row("New0@example.org", "again")  # line 11: line 2's address
    body += "".join(row(f"new{n}@example.org", f"topic{n}") for n in range(5, 10))
    with client(settings, engine, clock) as http:
        report = http.post(IMPORT, content=body, headers=AUTH).json()

    assert (report["created"], report["updated"]) == (10, 2)
    assert [(e["line"], e["email"]) for e in report["errors"]] == [
        (7, "bad@example.org"),
        (8, "taken@example.org"),
        (11, "New0@example.org"),
    ]
    bad, taken, again = (e["error"] for e in report["errors"])
    assert "send hour must be between 0 and 23, not 25" in bad and "unbalanced quote" in bad
    assert taken == "taken@example.org is already another subscriber's address"
    assert again == "new0@example.org is already on line 2: this row is not imported"
    stored = lines_of(engine)
    for n in range(10):
        expected = [f"topic{n}", "graph networks"] if n < 5 else [f"topic{n}"]
        assert stored[f"new{n}@example.org"] == expected
    assert stored["old@example.org"] == ["diffusion", "robots"]
    assert stored["same@example.org"] == ["quantum"]
    assert "bad@example.org" not in stored and "taken@example.org" not in stored
    confirmed = subscriber(engine, "old@example.org")
    assert confirmed.status == SubscriberStatus.active and confirmed.id == old.id
    assert confirmed.confirmed_at == confirmed.status_changed_at == clock.now
    unchanged = subscriber(engine, "same@example.org")
    assert unchanged.status_changed_at == same.status_changed_at != clock.now
    assert unchanged.send_hour == 7 and unchanged.timezone == "Europe/Paris"
    # No new subscriber has an id an erased one had (old links name ids).
    assert min(subscriber(engine, f"new{n}@example.org").id for n in range(10)) > gone.id


def blocked(engine: Engine, pid: int) -> bool:
    """Whether a PostgreSQL session waits for a lock the session `pid` holds."""
    query = "SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"
    with engine.connect() as conn:  # a transaction of its own: a fresh view of the sessions
        return bool(conn.execute(sa.text(query), {"pid": pid}).scalar_one())


def test_an_address_another_writer_adds_meanwhile_is_stored_row_by_row(
    settings: Settings, engine: Engine
) -> None:
    """A sign-up adds an address after the import looked it up: the import's insert waits
    for the sign-up to commit, fails, and its chunk is stored again row by row."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite lets one writer at a time: the import cannot look up in between")
    clock = Clock()
    body = HEADER + "".join(row(f"new{n}@example.org", f"topic{n}") for n in range(5))
    body += row("race@example.org", "diffusion")
    answers: list[httpx.Response] = []
    with server(web_settings(settings), engine, clock) as url, engine.connect() as other:
        other.execute(
            sa.insert(SUBSCRIBERS).values(
                email="race@example.org", status="pending", created_at=clock.now, token_version=1
            )
        )
        other_pid = other.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        importing = threading.Thread(
            target=lambda: answers.append(
                httpx.post(f"{url}{IMPORT}", content=body, headers=AUTH, timeout=60)
            )
        )
        importing.start()
        deadline = time.monotonic() + 60
        while not blocked(engine, other_pid):
            assert time.monotonic() < deadline and importing.is_alive()
            time.sleep(0.01)
        other.commit()
        importing.join()
    report = answers[0].json()
    assert (report["created"], report["updated"], report["errors"]) == (5, 1, [])
    raced = subscriber(engine, "race@example.org")
    assert raced.status == SubscriberStatus.active and raced.confirmed_at == clock.now
    assert lines_of(engine)["race@example.org"] == ["diffusion"]
    assert len(lines_of(engine)) == 6


def test_a_large_import_stores_every_chunk(
    settings: Settings, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="digest.web")
    count = 12 * CHUNK
    known = [0, CHUNK - 1, CHUNK, count - 1]  # at the ends of chunks
    for n in known:
        add_subscriber(engine, f"reader{n}@example.org", ["robots"])
    body = HEADER + "".join(
        row(f"reader{n}@example.org", f"topic{n % 97} | method{n}") for n in range(count)
    )
    body += row("reader7@example.org", "again")  # the first chunk's address, at the end
    with client(settings, engine, Clock()) as http:
        report = http.post(IMPORT, content=body, headers=AUTH, timeout=120).json()

    assert (report["created"], report["updated"]) == (count - len(known), len(known))
    error = "reader7@example.org is already on line 9: this row is not imported"
    assert report["errors"] == [{"line": count + 2, "email": "reader7@example.org", "error": error}]
    stored = lines_of(engine)
    assert len(stored) == count
    for n in range(count):
        assert stored[f"reader{n}@example.org"] == [f"topic{n % 97}", f"method{n}"]
    progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith("CSV import")]
    assert progress == [
        f"CSV import: {PROGRESS} rows read, {PROGRESS} stored, 0 errors so far",
        f"CSV import: {2 * PROGRESS} rows read, {2 * PROGRESS} stored, 0 errors so far",
    ]


def test_rows_are_stored_while_the_body_is_still_arriving(
    settings: Settings, engine: Engine
) -> None:
    first = HEADER + "".join(row(f"early{n}@example.org", "robots") for n in range(2 * CHUNK))
    rest = "".join(row(f"late{n}@example.org", "robots") for n in range(10))
    stored_early = threading.Event()

    def body() -> Iterator[bytes]:
        yield first.encode()
        deadline = time.monotonic() + 60
        while subscriber_count(engine) < CHUNK:  # the first chunk is stored before the rest is sent
            assert time.monotonic() < deadline, "nothing was stored while the body arrived"
            time.sleep(0.02)
        stored_early.set()
        yield rest.encode()

    size = str(len(first.encode()) + len(rest.encode()))
    with server(web_settings(settings), engine, Clock()) as url:
        answer = httpx.post(
            f"{url}{IMPORT}",
            content=body(),
            headers={**AUTH, "Content-Length": size},
            timeout=120,
        )
    assert stored_early.is_set()
    assert answer.json()["created"] == 2 * CHUNK + 10

"""A subscriber's data is theirs: download everything stored about them, delete them (from
the preferences page and the admin API), and sign-ups never confirmed are purged."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy import Engine
from typer.testing import CliRunner

from digest import feedback
from digest.cli import app
from digest.config import Settings
from digest.match.engine import InterestMatcher
from digest.models import (
    DIGEST_PAPERS,
    DIGESTS,
    ERASURES,
    FEEDBACK,
    INTERESTS,
    PAPERS,
    SENT_PAPERS,
    SUBSCRIBERS,
    SubscriberStatus,
)
from digest.serve.service import Service
from digest.sources.ingest import store
from digest.subscribers import subscribe
from tests.kit.seeds import PAPERS as SEED_PAPERS
from tests.kit.seeds import send_digest
from tests.kit.smtp import SmtpSink
from tests.kit.web import ADMIN, Clock, client, form, link_in, subscriber

AUTH = {"Authorization": f"Bearer {ADMIN}"}
runner = CliRunner()


def rows_naming(engine: Engine, subscriber_id: int) -> dict[str, int]:
    """How many rows of each table name the subscriber."""
    tables = {
        "interests": INTERESTS,
        "digests": DIGESTS,
        "ledger": SENT_PAPERS,
        "feedback": FEEDBACK,
    }
    with engine.connect() as conn:
        found = {
            name: conn.execute(
                sa.select(sa.func.count())
                .select_from(table)
                .where(table.c.subscriber_id == subscriber_id)
            ).scalar_one()
            for name, table in tables.items()
        }
        found["subscriber"] = conn.execute(
            sa.select(sa.func.count()).where(SUBSCRIBERS.c.id == subscriber_id)
        ).scalar_one()
        # A digest's papers have no foreign key: none may outlive their digest.
        found["papers of digests gone"] = conn.execute(
            sa.select(sa.func.count())
            .select_from(DIGEST_PAPERS)
            .where(DIGEST_PAPERS.c.digest_id.not_in(sa.select(DIGESTS.c.id)))
        ).scalar_one()
    return found


def sent_one(engine: Engine, settings: Settings, smtp: SmtpSink, clock: Clock) -> int:
    """Ada's subscriber id, once a digest was sent to her and she liked its first paper."""
    store(engine, SEED_PAPERS, now=clock.now - timedelta(hours=2))
    row, _ = subscribe(
        engine, "ada@example.org", ["diffusion", "robots"], now=clock.now - timedelta(days=1)
    )
    send_digest(engine, settings, clock.now)
    with engine.connect() as conn:
        paper = conn.execute(
            sa.select(SENT_PAPERS.c.paper_id).where(SENT_PAPERS.c.subscriber_id == row.id)
        ).scalar()
    assert paper is not None
    feedback.record(engine, row.id, paper, "more")
    return int(row.id)


def test_a_subscriber_downloads_everything_then_deletes_themselves(
    settings: Settings, engine: Engine, smtp: SmtpSink
) -> None:
    clock = Clock()
    sub_id = sent_one(engine, settings, smtp, clock)
    [digest] = smtp.to("ada@example.org")
    prefs_link = link_in(digest, "preferences")
    unsubscribe_link = link_in(digest, "unsubscribe")
    with client(settings, engine, clock) as http:
        page = http.get(prefs_link)
        assert (
            f'href="{prefs_link}/data"' in page.text and f'href="{prefs_link}/erase"' in page.text
        )

        data = http.get(prefs_link + "/data")
        assert data.status_code == 200
        assert data.headers["content-disposition"] == 'attachment; filename="digest-my-data.json"'
        mine = data.json()
        assert mine["email"] == "ada@example.org"
        assert mine["interests"] == ["diffusion", "robots"]
        assert mine["settings"]["max_papers"] == 20 and mine["settings"]["status"] == "active"
        [sent] = mine["digests"]
        assert sent["status"] == "sent" and sent["papers"]
        assert all("Diffusion" in p["title"] for p in sent["papers"])
        assert mine["feedback"][0]["said"] == "more like this"
        assert mine["feedback"][0]["paper"]["title"] == sent["papers"][0]["title"] or (
            mine["feedback"][0]["paper"]["title"] in {p["title"] for p in sent["papers"]}
        )

        asked = http.get(prefs_link + "/erase")  # a mail scanner's visit deletes nothing
        assert asked.status_code == 200 and "Delete me" in asked.text
        assert rows_naming(engine, sub_id)["subscriber"] == 1

        done = http.post(prefs_link + "/erase")
        assert done.status_code == 200 and "Everything about you is deleted" in done.text
        assert rows_naming(engine, sub_id) == dict.fromkeys(
            ("interests", "digests", "ledger", "feedback", "subscriber", "papers of digests gone"),
            0,
        )
        with engine.connect() as conn:
            assert conn.execute(sa.select(ERASURES.c.reason, ERASURES.c.count)).all() == [
                ("self", 1)
            ]
            assert conn.execute(sa.select(sa.func.count()).select_from(PAPERS)).scalar_one()
        gone = http.get(prefs_link)
        assert gone.status_code == 410 and "This subscription no longer exists" in gone.text
        # The unsubscribe link (and a mail client's one-click) still answers that it is done.
        for answer in (http.get(unsubscribe_link), http.post(unsubscribe_link)):
            assert answer.status_code == 200 and "You are unsubscribed" in answer.text
        stats = http.get("/api/stats", params={"days": 1}, headers=AUTH).json()
        assert stats[-1]["erased"] == 1

        # Signing up again starts afresh: pending, with only what is typed now.
        again = http.post("/subscribe", data=form(interests="graph networks"))
        assert again.status_code == 200
        # ... and the erased person's old links do not reach the new subscriber.
        assert http.get(prefs_link).status_code == 410
        assert http.post(unsubscribe_link).status_code == 200
    fresh = subscriber(engine, "ada@example.org")  # the old unsubscribe link did not touch it
    assert fresh.status == SubscriberStatus.pending and fresh.id != sub_id
    assert rows_naming(engine, fresh.id)["digests"] == 0


def test_the_admin_api_exports_and_erases_a_subscriber(
    settings: Settings, engine: Engine, smtp: SmtpSink
) -> None:
    clock = Clock()
    sub_id = sent_one(engine, settings, smtp, clock)
    with client(settings, engine, clock) as http:
        assert http.get(f"/api/subscribers/{sub_id}/export").status_code == 401
        exported = http.get(f"/api/subscribers/{sub_id}/export", headers=AUTH)
        assert exported.status_code == 200
        assert exported.json()["email"] == "ada@example.org"
        assert exported.json()["digests"][0]["papers"]
        assert "attachment" in exported.headers["content-disposition"]
        assert http.delete(f"/api/subscribers/{sub_id}", headers=AUTH).status_code == 204
        assert http.get(f"/api/subscribers/{sub_id}/export", headers=AUTH).status_code == 404
        assert http.delete(f"/api/subscribers/{sub_id}", headers=AUTH).status_code == 404
    left = rows_naming(engine, sub_id)
    assert left["ledger"] == left["digests"] == left["papers of digests gone"] == 0
    with engine.connect() as conn:
        assert conn.execute(sa.select(ERASURES.c.reason)).scalars().all() == ["admin"]


def test_sign_ups_never_confirmed_are_purged_after_the_configured_days(
    settings: Settings, engine: Engine, cli_env: dict[str, str]
) -> None:
    clock = Clock()
    pending = SubscriberStatus.pending
    for name, age in (("old", 8), ("older", 30), ("recent", 6)):
        subscribe(
            engine,
            f"{name}@example.org",
            ["x"],
            status=pending,
            now=clock.now - timedelta(days=age),
        )
    subscribe(engine, "active@example.org", ["x"], now=clock.now - timedelta(days=40))
    asked_again = subscribe(
        engine, "again@example.org", ["x"], status=pending, now=clock.now - timedelta(days=9)
    )[0]
    with engine.begin() as conn:  # ... who signed up again yesterday: a fresh link
        conn.execute(
            SUBSCRIBERS.update()
            .where(SUBSCRIBERS.c.id == asked_again.id)
            .values(confirm_sent_at=clock.now - timedelta(days=1))
        )

    result = runner.invoke(app, ["run", "--now", clock.now.isoformat()], env=cli_env)
    assert result.exit_code == 0, result.output
    assert "erased 2 sign-up(s) never confirmed" in result.output
    with engine.connect() as conn:
        left = set(conn.execute(sa.select(SUBSCRIBERS.c.email)).scalars())
        assert left == {"recent@example.org", "active@example.org", "again@example.org"}
        assert conn.execute(sa.select(ERASURES.c.reason, ERASURES.c.count)).all() == [
            ("unconfirmed", 2)
        ]

    # The scheduler does the same, hourly, on the leader; here with a 5-day setting.
    service = Service(
        engine,
        settings.model_copy(update={"pending_purge_days": 5}),
        InterestMatcher(),
        clock=lambda: clock.now,
    )
    assert asyncio.run(service.purge()) is None  # not the leader
    service.leading = True
    assert asyncio.run(service.purge()) == 1
    assert subscriber(engine, "recent@example.org") is None
    assert subscriber(engine, "again@example.org") is not None

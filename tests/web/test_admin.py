"""HTTP-level tests of the admin JSON API, OpenAPI docs and the bearer token."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import httpx
import sqlalchemy as sa
from sqlalchemy import Engine

from digest.config import Settings
from digest.models import DIGESTS, SubscriberStatus
from digest.sources.ingest import IngestReport, PaperIn, store
from digest.sources.runner import SourceReport, record
from digest.subscribers import subscribe as add_subscriber
from digest.tokens import UNSUBSCRIBE, make_token
from digest.web.subscriber_csv import CSV_FIELDS
from tests.kit.env import SECRET
from tests.kit.seeds import send_digest
from tests.kit.smtp import SmtpSink
from tests.kit.web import (
    AUTH,
    Clock,
    client,
    server,
    subscriber,
    subscriber_count,
    web_settings,
)


def test_the_api_needs_the_bearer_token(settings: Settings, engine: Engine) -> None:
    with client(settings, engine, Clock()) as http:
        missing = http.get("/api/subscribers")
        wrong = http.get("/api/subscribers", headers={"Authorization": "Bearer nope"})
        right = http.get("/api/subscribers", headers=AUTH)
    assert missing.status_code == wrong.status_code == 401
    assert wrong.headers["www-authenticate"] == "Bearer"
    assert right.status_code == 200 and right.json() == []


def test_the_api_is_off_without_a_token_setting(settings: Settings, engine: Engine) -> None:
    off = settings.model_copy(update={"admin_token": None})
    with server(off, engine, Clock()) as url:
        answer = httpx.get(f"{url}/api/subscribers", headers=AUTH)
    assert answer.status_code == 403 and "DIGEST_ADMIN_TOKEN" in answer.json()["detail"]


def test_subscriber_crud(settings: Settings, engine: Engine) -> None:
    with client(settings, engine, Clock()) as http:
        body = {"email": "Ada@Example.org", "interests": ["diffusion", '"graph networks"']}
        created = http.post("/api/subscribers", json=body, headers=AUTH)
        assert created.status_code == 201, created.text
        ada = created.json()
        assert ada["email"] == "ada@example.org" and ada["status"] == "active"
        assert ada["interests"] == ["diffusion", '"graph networks"']
        assert http.post("/api/subscribers", json=body, headers=AUTH).status_code == 409
        invalid = http.post(
            "/api/subscribers",
            json={"email": "b@example.org", "interests": ["ok", '"open']},
            headers=AUTH,
        )
        assert invalid.status_code == 422
        assert invalid.json()["detail"][0]["field"] == "interests[1]"
        assert "unbalanced quote" in invalid.json()["detail"][0]["error"]
        url = f"/api/subscribers/{ada['id']}"
        patched = http.patch(url, json={"send_hour": 22, "interests": ["robots"]}, headers=AUTH)
        assert patched.status_code == 200
        assert patched.json()["send_hour"] == 22 and patched.json()["interests"] == ["robots"]
        assert patched.json()["timezone"] == "UTC"
        bad_zone = http.patch(url, json={"timezone": "Nowhere/City"}, headers=AUTH)
        assert bad_zone.status_code == 422 and bad_zone.json()["detail"][0]["field"] == "timezone"
        http.post("/api/subscribers", json={"email": "bob@x.org", "interests": ["a"]}, headers=AUTH)
        found = http.get("/api/subscribers", params={"q": "BOB"}, headers=AUTH).json()
        assert [s["email"] for s in found] == ["bob@x.org"]
        assert http.delete(url, headers=AUTH).status_code == 204
        assert http.get(url, headers=AUTH).status_code == 404
        assert http.delete(url, headers=AUTH).status_code == 404
    assert subscriber(engine, "ada@example.org") is None


def test_every_problem_at_once_in_one_shape_and_address_changes(
    settings: Settings, engine: Engine
) -> None:
    with client(settings, engine, Clock()) as http:
        bad = {
            "email": "nobody",
            "interests": ["ok", '"open', "fine"],
            "send_hour": "noon",
            "timezone": "Mars/Olympus",
            "status": "zombie",
            "max_papers": 0,
        }
        refused = http.post("/api/subscribers", json=bad, headers=AUTH)
        assert refused.status_code == 422
        fields = {d["field"] for d in refused.json()["detail"]}
        assert fields == {"email", "interests[1]", "send_hour", "timezone", "status", "max_papers"}
        # What the model itself refuses comes in the same shape.
        typed = http.post("/api/subscribers", json={"email": 3, "interests": "x"}, headers=AUTH)
        assert typed.status_code == 422
        assert {d["field"] for d in typed.json()["detail"]} == {"email", "interests"}
        days = http.get("/api/stats", params={"days": 0}, headers=AUTH).json()["detail"]
        assert [d["field"] for d in days] == ["days"] and days[0]["error"]

        lines = ["diffusion", "Diffusion", "robots", " diffusion "]
        ada = http.post(
            "/api/subscribers", json={"email": "ada@x.org", "interests": lines}, headers=AUTH
        ).json()
        assert ada["interests"] == ["diffusion", "robots"]  # the same line is stored once
        http.post("/api/subscribers", json={"email": "bob@x.org", "interests": ["a"]}, headers=AUTH)
        url = f"/api/subscribers/{ada['id']}"
        moved = http.patch(url, json={"email": "Ada@New.example"}, headers=AUTH)
        assert moved.status_code == 200 and moved.json()["email"] == "ada@new.example"
        assert moved.json()["interests"] == ["diffusion", "robots"]
        taken = http.patch(url, json={"email": "bob@x.org"}, headers=AUTH)
        assert taken.status_code == 409
        listed = http.get("/api/subscribers", params={"limit": 1}, headers=AUTH)
        assert len(listed.json()) == 1 and listed.headers["x-total-count"] == "2"
        for path in ("/api/papers", "/api/digests"):
            assert http.get(path, headers=AUTH).headers["x-total-count"] == "0"
    assert subscriber(engine, "ada@x.org") is None
    assert subscriber(engine, "ada@new.example").id == ada["id"]


def test_csv_export_imports_back_and_bad_rows_are_reported(
    settings: Settings, engine: Engine
) -> None:
    add_subscriber(engine, "ada@example.org", ["diffusion", "graph networks"], send_hour=6)
    add_subscriber(engine, "bob@example.org", ["robots"], timezone="Asia/Tokyo")
    with client(settings, engine, Clock()) as http:
        exported = http.get("/api/subscribers.csv", headers=AUTH)
    assert exported.headers["content-type"].startswith("text/csv")
    lines = exported.text.splitlines()
    assert lines[0].startswith("email,status,timezone") and len(lines) == 3

    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM subscriber"))
    broken = exported.text + 'carol@example.org,active,UTC,7,daily,0,20,"""open"\n'
    broken += "not-an-email,active,UTC,7,daily,0,20,robots\n"
    broken += "BOB@example.org,active,UTC,9,daily,0,20,robots\n"  # bob again: reported
    with client(settings, engine, Clock()) as http:
        report = http.post("/api/subscribers/import", content=broken, headers=AUTH).json()
        rows = http.get("/api/subscribers", headers=AUTH).json()
    assert (report["created"], report["updated"]) == (2, 0)
    assert [e["line"] for e in report["errors"]] == [4, 5, 6]
    assert "unbalanced quote" in report["errors"][0]["error"]
    assert report["errors"][2]["error"] == (
        "bob@example.org is already on line 3: this row is not imported"
    )
    assert {(r["email"], r["send_hour"], r["timezone"]) for r in rows} == {
        ("ada@example.org", 6, "UTC"),
        ("bob@example.org", 7, "Asia/Tokyo"),
    }
    assert next(r for r in rows if r["email"] == "ada@example.org")["interests"] == [
        "diffusion",
        "graph networks",
    ]


def test_papers_sources_digests_and_stats(
    settings: Settings, engine: Engine, smtp: SmtpSink
) -> None:
    clock = Clock()
    store(engine, [PaperIn(id="2401.00001v1", title="Diffusion for Molecules")], now=clock.now)
    record(
        engine,
        SourceReport("arxiv:cs.LG", "arxiv", clock.now, report=IngestReport(fetched=3, new=1)),
    )
    row, _ = add_subscriber(engine, "ada@example.org", ["diffusion"])
    add_subscriber(engine, "bob@example.org", ["diffusion"])
    assert row.id is not None
    base = {"subscriber_id": row.id, "window_start": clock.now, "window_end": clock.now}
    with engine.begin() as conn:
        conn.execute(
            sa.insert(DIGESTS),
            [
                base
                | {
                    "period": "p1",
                    "status": "sent",
                    "created_at": clock.now,
                    "sent_at": clock.now,
                    "last_reply": "250 OK queued",
                },
                base
                | {
                    "period": "p0",
                    "status": "failed",
                    "created_at": clock.now - timedelta(days=1),
                    "sent_at": None,
                    "last_reply": "550 5.1.1 no such user",
                },
            ],
        )
    with client(settings, engine, clock) as http:
        http.post(f"/unsubscribe/{make_token(SECRET, UNSUBSCRIBE, row.id, 1)}")
        papers = http.get("/api/papers", params={"q": "molecules"}, headers=AUTH).json()
        sources = http.get("/api/sources", headers=AUTH).json()
        digests = http.get("/api/digests", params={"status": "failed"}, headers=AUTH).json()
        stats = http.get("/api/stats", params={"days": 3}, headers=AUTH).json()
    assert [p["canonical_id"] for p in papers] == ["arxiv:2401.00001"]
    assert sources[0]["source"] == "arxiv:cs.LG" and sources[0]["last_run"]["new"] == 1
    assert [(d["period"], d["last_reply"]) for d in digests] == [("p0", "550 5.1.1 no such user")]
    today, yesterday = clock.now.date().isoformat(), (clock.now - timedelta(days=1)).date()
    assert [s["day"] for s in stats][-2:] == [yesterday.isoformat(), today]
    assert stats[-1] | {"day": ""} == {
        "day": "",
        "sent": 1,
        "failed": 0,
        "bounced": 0,
        "unsubscribed": 1,
        "erased": 0,
        "more_like_this": 0,
        "not_for_me": 0,
    }
    assert stats[-2]["failed"] == 1
    assert subscriber(engine, "ada@example.org").status == SubscriberStatus.unsubscribed


def test_openapi_documents_the_admin_api_only(settings: Settings, engine: Engine) -> None:
    with client(settings, engine, Clock()) as http:
        docs = http.get("/docs")
        schema = http.get("/openapi.json").json()
    assert docs.status_code == 404  # Swagger UI would load its scripts from a CDN
    paths = set(schema["paths"])
    assert {"/api/subscribers", "/api/stats", "/healthz", "/metrics"} <= paths
    assert "/subscribe" not in paths and not any(p.startswith("/unsubscribe") for p in paths)


def test_stats_count_a_real_bounce(settings: Settings, engine: Engine, smtp: SmtpSink) -> None:
    clock = Clock()
    store(engine, [PaperIn(id="2401.00001v1", title="Diffusion for Molecules")], now=clock.now)
    add_subscriber(engine, "carol@example.org", ["diffusion"], now=clock.now - timedelta(days=1))
    smtp.refuse["carol@example.org"] = "550 5.1.1 no such user"
    send_digest(engine, settings, clock.now)
    with client(settings, engine, clock) as http:
        [today] = http.get("/api/stats", params={"days": 1}, headers=AUTH).json()
        [digest] = http.get("/api/digests", headers=AUTH).json()
    assert today | {"day": ""} == {
        "day": "",
        "sent": 0,
        "failed": 1,
        "bounced": 1,
        "unsubscribed": 0,
        "erased": 0,
        "more_like_this": 0,
        "not_for_me": 0,
    }
    assert digest["status"] == "failed" and digest["last_reply"].startswith("550 5.1.1")


def test_csv_export_keeps_formulas_from_running_and_names_the_file(
    settings: Settings, engine: Engine
) -> None:
    add_subscriber(engine, "eve@example.org", ['=1+2 HYPERLINK "evil"', "robots"])
    with client(settings, engine, Clock()) as http:
        exported = http.get("/api/subscribers.csv", headers=AUTH)
        assert exported.headers["content-disposition"] == 'attachment; filename="subscribers.csv"'
        row = exported.text.splitlines()[1]
        assert ',"\'=1+2 HYPERLINK ""evil"" | robots"' in row
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM subscriber"))
        report = http.post("/api/subscribers/import", content=exported.text, headers=AUTH)
        (eve,) = http.get("/api/subscribers", headers=AUTH).json()
    assert report.json()["created"] == 1
    assert eve["interests"] == ['=1+2 HYPERLINK "evil"', "robots"]


def test_a_long_csv_import_does_not_stop_the_rest_of_the_app(
    settings: Settings, engine: Engine
) -> None:
    rows = "".join(f"reader{n}@example.org,active,UTC,7,daily,0,20,robots\n" for n in range(3000))
    body = ",".join(CSV_FIELDS) + ",interests\n" + rows
    finished: dict[str, float] = {}
    with server(web_settings(settings), engine, Clock()) as url:

        def run_import() -> None:
            answer = httpx.post(
                f"{url}/api/subscribers/import", content=body, headers=AUTH, timeout=120
            )
            assert answer.json()["created"] == 3000
            finished["import"] = time.monotonic()

        worker = threading.Thread(target=run_import)
        worker.start()
        while subscriber_count(engine) < 10:  # the import is under way
            time.sleep(0.01)
        health = httpx.get(f"{url}/healthz", timeout=120)
        finished["healthz"] = time.monotonic()
        worker.join()
    assert health.status_code == 200
    assert finished["healthz"] < finished["import"]  # answered during the import, not after

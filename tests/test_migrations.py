"""The Alembic migrations and the SQLModel models describe the same schema."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

import digest.models  # noqa: F401  (registers the tables)
from digest.db import downgrade, make_engine, upgrade


def test_migrations_match_models(database_url: str) -> None:
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, SQLModel.metadata) == []
    finally:
        engine.dispose()


def test_upgrade_is_idempotent_and_downgrade_empties(database_url: str) -> None:
    upgrade(database_url)
    upgrade(database_url)
    downgrade(database_url, "base")
    engine = make_engine(database_url)
    try:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()


def test_stored_interests_are_parsed_again_as_typed(database_url: str) -> None:
    upgrade(database_url, "0007_held_papers")
    engine = make_engine(database_url)
    rows = [
        ("state space models", "models space state"),  # the old form: three words anywhere
        ("LoRA -survey", "-survey lora"),  # unchanged
        ("diffusion models AND", "diffusion models"),  # a dangling AND is dropped
        ("a AND (", "a"),  # refused now: keeps its old form, which parses
    ]
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO subscriber (email, status, timezone, send_hour, cadence, "
                    "weekday, max_papers, token_version, created_at) VALUES "
                    "('ada@example.org', 'active', 'UTC', 8, 'daily', 0, 20, 0, '2026-12-01')"
                )
            )
            for position, (query, canonical) in enumerate(rows):
                conn.execute(
                    sa.text(
                        "INSERT INTO interest (subscriber_id, query, canonical, position) "
                        "VALUES (1, :q, :c, :p)"
                    ),
                    {"q": query, "c": canonical, "p": position},
                )
        upgrade(database_url)
        with engine.connect() as conn:
            stored = conn.execute(sa.text("SELECT canonical FROM interest ORDER BY position"))
            assert [row[0] for row in stored] == [
                "state-space-models",
                "-survey lora",
                "diffusion-models",
                "a",
            ]
    finally:
        engine.dispose()


def test_the_feed_version_comes_and_goes_without_touching_anyones_interests(
    database_url: str,
) -> None:
    upgrade(database_url, "0009_feedback")
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO subscriber (email, status, timezone, send_hour, cadence, weekday,"
                    " max_papers, token_version, soft_bounces, empty_note, created_at) VALUES"
                    " ('a@example.org', 'active', 'UTC', 7, 'daily', 0, 20, 1, 0, false,"
                    " '2026-11-01 00:00:00+00:00')"
                )
            )
            conn.execute(
                sa.text(
                    "INSERT INTO interest (subscriber_id, query, canonical, position)"
                    " SELECT id, 'diffusion', 'diffusion', 0 FROM subscriber"
                )
            )
        upgrade(database_url)
        downgrade(database_url, "0009_feedback")  # on SQLite, a table copy would cascade
        with engine.connect() as conn:
            interests = conn.execute(sa.text("SELECT query FROM interest")).scalars().all()
        assert interests == ["diffusion"]
    finally:
        engine.dispose()

"""The database helpers for bulk work: id lists and array parameters."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from digest.db import among, array_literal
from digest.models import INTERESTS
from digest.subscribers import subscribe

AWKWARD = ["plain", 'with "quotes"', "back\\slash", "comma, and {braces}", "NULL", "", "ünï"]


def test_array_literals_read_back_as_sent(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("array parameters are PostgreSQL's")
    moment = datetime(2026, 11, 27, 6, 30, 15, 123456, tzinfo=UTC)
    with engine.connect() as conn:

        def back(literal: str, kind: str) -> list[object]:
            query = sa.text(f"SELECT CAST(CAST(:a AS text) AS {kind}[])")
            return list(conn.execute(query, {"a": literal}).scalar_one())

        assert back(array_literal(AWKWARD), "varchar") == AWKWARD
        assert back(array_literal([1, -2, 3_000_000_000 // 2]), "bigint") == [1, -2, 1_500_000_000]
        assert back(array_literal([moment, None, moment]), "timestamptz") == [moment, None, moment]
        assert back(array_literal([True, False]), "boolean") == [True, False]
        assert back(array_literal([1, True, 0, False, None]), "text") == ["1", "t", "0", "f", None]
        assert back(array_literal([0.5, 1e-7]), "float8") == [0.5, 1e-7]
        assert back(array_literal([]), "integer") == []


def test_among_picks_the_rows_of_the_ids_given(engine: Engine) -> None:
    ids = [subscribe(engine, f"r{n}@example.org", [f"topic {n}"])[0].id for n in range(3)]
    wanted = [ids[0], ids[2], *range(10**6, 10**6 + 6000)]  # thousands, as a planning chunk
    with engine.connect() as conn:
        query = sa.select(INTERESTS.c.query).where(among(conn, INTERESTS.c.subscriber_id, wanted))
        assert sorted(conn.execute(query).scalars()) == ["topic 0", "topic 2"]

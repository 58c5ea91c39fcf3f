"""Engine factory and migrations; nothing is created at import time."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url

from digest import resource_dir


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def alembic_config(url: str) -> Config:
    """An Alembic config for the bundled migrations, pointed at `url`."""
    config = Config()
    config.set_main_option("script_location", str(resource_dir("alembic")))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at `url` to `revision`."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Migrate the database at `url` back to `revision` ("base" empties it)."""
    command.downgrade(alembic_config(url), revision)


def insert_ignore(conn: Connection, table: Any, keys: Sequence[str]) -> Any:
    """An INSERT ... ON CONFLICT (keys) DO NOTHING statement for SQLite and PostgreSQL."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=list(keys))
    return sqlite.insert(table).on_conflict_do_nothing(index_elements=list(keys))


def among(conn: Connection, column: Any, ids: Sequence[Any]) -> Any:
    """`column IN ids` for a chunk of ids (or other values of the column): one array
    parameter on PostgreSQL (psycopg spends longer parsing a query with thousands of
    parameters than the query takes), a list of parameters on SQLite (below its limit of
    32,766 a statement); `column = id` for one."""
    if len(ids) == 1:
        # PostgreSQL's generic plan of a prepared `= ANY($1)` made while the table was
        # small scans it all until the next ANALYZE; one made for `= $1` uses the index.
        return column == ids[0]
    if conn.dialect.name == "postgresql":
        # In a sub-select, the text is read into an array once, not once a row.
        kind = postgresql.ARRAY(column.type)
        array = sa.cast(sa.literal(array_literal(ids), sa.Text), kind)
        return column == sa.any_(sa.cast(sa.select(array).scalar_subquery(), kind))
    return column.in_(list(ids))


def array_literal(values: Iterable[Any]) -> str:
    """PostgreSQL's text form of an array of numbers, strings or datetimes, to send as
    one text parameter cast to the array type: psycopg adapts a list element by element
    in Python, 4 to 15 times slower for the 5,000 of a planning chunk."""
    values = list(values)
    if all(type(value) is int for value in values):
        return "{" + ",".join(map(str, values)) + "}"
    return "{" + ",".join(map(_array_element, values)) + "}"


@lru_cache(maxsize=4096, typed=True)  # typed: True and 1 are different elements
def _array_element(value: Any) -> str:
    """One element of `array_literal` (cached: a column holds few distinct values)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int | float):
        return repr(value)
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def insert_raw(
    conn: Connection, table: Any, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Insert many rows as given, skipping SQLAlchemy's per-value processing: COPY on
    PostgreSQL, one prepared statement on SQLite. Values must be what the column stores
    (JSON already serialised, booleans, numbers, text); for planning's bulk rows."""
    if not rows:
        return
    names = ", ".join(columns)
    if conn.dialect.name == "postgresql":
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join("?" for _ in columns)
    conn.exec_driver_sql(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", list(rows))


def pending_migration(engine: Engine) -> str | None:
    """Why the database cannot be used as it is (no schema, or an older one), else None."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    url = engine.url.render_as_string(hide_password=False)
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    if current == head:
        return None
    if current is None:
        return "the database has no schema yet"
    return f"the database schema is at revision {current}, this version needs {head}"

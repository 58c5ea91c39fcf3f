"""Leader election: exactly one scheduler is active, elected with a PostgreSQL advisory lock.

The lock is held by one dedicated connection; when its process dies, PostgreSQL drops the
connection and the lock, and a standby takes it at its next try. On SQLite the deployment
is a single process, which is always the leader.
"""

from __future__ import annotations

import logging
import threading

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

log = logging.getLogger(__name__)


class Leadership:
    """This process's claim to be the scheduler."""

    def __init__(self, engine: Engine, lock_id: int) -> None:
        self.engine = engine
        self.lock_id = lock_id
        self.shared = engine.dialect.name == "postgresql"
        self.conn: Connection | None = None
        # check() runs in scheduler threads; release() at shutdown must win over a late one.
        self._lock = threading.Lock()
        self._released = False

    @property
    def held(self) -> bool:
        """Whether this process is the scheduler now."""
        return not self.shared or self.conn is not None

    def check(self) -> bool:
        """Keep the lock if held (its connection still works), else try to take it."""
        if not self.shared:
            return True
        with self._lock:
            return False if self._released else self._check()

    def _check(self) -> bool:
        if self.conn is not None:
            try:
                self.conn.execute(sa.text("SELECT 1"))
                return True
            except sa.exc.DBAPIError:
                log.warning("lost the scheduler lock's connection; standing by")
                self._drop()
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            taken = conn.execute(
                sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": self.lock_id}
            ).scalar_one()
        except sa.exc.DBAPIError:
            log.warning("could not reach the database to take the scheduler lock")
            conn.invalidate()
            conn.close()
            return False
        if taken:
            self.conn = conn
            return True
        conn.close()
        return False

    def _drop(self) -> None:
        if self.conn is not None:
            self.conn.invalidate()
            self.conn.close()
            self.conn = None

    def release(self) -> None:
        """Give the lock up, so a standby takes over at once."""
        with self._lock:
            self._release()

    def close(self) -> None:
        """Give the lock up for good (shutdown): a check still running cannot retake it."""
        with self._lock:
            self._released = True
            self._release()

    def _release(self) -> None:
        if self.conn is None:
            return
        try:
            self.conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": self.lock_id})
            self.conn.close()
        except sa.exc.DBAPIError:
            self.conn.invalidate()
            self.conn.close()
        self.conn = None

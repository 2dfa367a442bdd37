"""Electing the one active detector worker: a PostgreSQL session advisory lock, held on its
own connection for as long as the worker runs. The lock goes with the connection, so a worker
that dies frees it for a standby. SQLite is one file on one machine: its worker always leads.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import DBAPIError

# A fixed 64-bit key that other applications sharing the database are unlikely to use.
LOCK_KEY = int.from_bytes(hashlib.sha256(b"driftline-detector").digest()[:8], "big", signed=True)


class Leadership:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection: Connection | None = None

    def hold(self) -> bool:
        """True while this process leads; tries to take the lead when it does not."""
        if self._engine.dialect.name != "postgresql":
            return True
        if self._connection is not None:
            try:
                self._connection.execute(select(1)).scalar()
                self._connection.commit()
                return True
            except DBAPIError:  # the session, and with it the lock, is gone
                self._connection.invalidate()
                self._connection = None
        connection = self._engine.connect()
        if connection.execute(select(func.pg_try_advisory_lock(LOCK_KEY))).scalar():
            connection.commit()  # end the transaction; a session lock outlives it
            self._connection = connection
            return True
        connection.close()
        return False

    def release(self) -> None:
        if self._connection is not None:
            # The pool keeps the session open, so unlock rather than rely on closing it.
            self._connection.execute(select(func.pg_advisory_unlock(LOCK_KEY)))
            self._connection.commit()
            self._connection.close()
            self._connection = None

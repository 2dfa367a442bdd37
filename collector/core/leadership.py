"""Electing the one active detector worker (or alert router): a PostgreSQL session advisory
lock, held on its own connection for as long as it runs. The lock goes with the connection, so
one that dies frees it for a standby. SQLite is one file on one machine: its one always leads.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import DBAPIError


class Leadership:
    def __init__(self, engine: Engine, role: str) -> None:
        self._engine = engine
        self._connection: Connection | None = None
        # A 64-bit key per role that other applications sharing the database are unlikely to use.
        self._key = int.from_bytes(hashlib.sha256(role.encode()).digest()[:8], "big", signed=True)

    def hold(self) -> bool:
        """True while this process leads; tries to take the lead when it does not."""
        if self.still_held():
            return True
        connection = self._engine.connect()
        if connection.execute(select(func.pg_try_advisory_lock(self._key))).scalar():
            connection.commit()  # end the transaction; a session lock outlives it
            self._connection = connection
            return True
        connection.close()
        return False

    def still_held(self) -> bool:
        """True while the lock ``hold`` took is still this session's; never takes it anew, so
        that a process which lost the lead for a while knows it did."""
        if self._engine.dialect.name != "postgresql":
            return True
        if self._connection is None:
            return False
        try:
            self._connection.execute(select(1)).scalar()
            self._connection.commit()
            return True
        except DBAPIError:  # the session, and with it the lock, is gone
            self._connection.invalidate()
            self._connection = None
            return False

    def release(self) -> None:
        if self._connection is not None:
            # The pool keeps the session open, so unlock rather than rely on closing it.
            self._connection.execute(select(func.pg_advisory_unlock(self._key)))
            self._connection.commit()
            self._connection.close()
            self._connection = None

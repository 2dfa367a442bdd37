"""Stores a batch so that one event the database refuses cannot hold up the others.

A batch is written in one transaction. When the database refuses it because of what one event
holds (a NUL PostgreSQL cannot keep, a number too large for its column, a trigger's rule), the
batch is split in halves, each stored in its own transaction, the first before the second, and
so on down to the one event refused: that event becomes a dead letter with the database's
reason and everything else is stored. Halves keep the batch's order, so each partition's events
still join its chain in offset order; the consumer commits offsets only once every half has.

Any other failure (the database down, a lost connection, a full disk, a missing table) would
refuse every event alike: it is raised to the consumer, which rewinds and tries the whole batch
again, so nothing is lost while it lasts.
"""

from __future__ import annotations

import structlog
from sqlalchemy import Engine
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, SQLAlchemyError
from sqlmodel import Session

from driftline.agent.provenance import TrustedProducers
from driftline.collector.consume.ingest import (
    MAX_REASON_CHARS,
    BatchOutcome,
    RawMessage,
    keep_refused,
    write_batch,
)
from driftline.collector.core.clock import DEFAULT_BOUNDS, ClockBounds

log = structlog.get_logger(__name__)


def store(
    engine: Engine,
    messages: list[RawMessage],
    bounds: ClockBounds = DEFAULT_BOUNDS,
    producers: TrustedProducers | None = None,
) -> BatchOutcome:
    """Store a batch (in offset order per partition), isolating any event the database
    refuses. Raise any other failure: the consumer reads the batch again, and absorbs as
    duplicates what halves stored before it. ``producers`` as ``write_batch`` takes them."""
    try:
        with Session(engine) as session:
            outcome = write_batch(session, messages, bounds, producers)
            session.commit()
        return outcome
    except Exception as error:
        if not refuses_the_data(error):
            raise
        reason = _first_line(error)
    if len(messages) == 1:
        with Session(engine) as session:
            outcome = keep_refused(session, messages[0], reason)
            session.commit()
        return outcome
    log.info("database refused a batch; storing it in halves", size=len(messages), reason=reason)
    half = len(messages) // 2
    first, second = messages[:half], messages[half:]
    return store(engine, first, bounds, producers) + store(engine, second, bounds, producers)


def refuses_the_data(error: Exception) -> bool:
    """Whether the database (or its driver) refused the values sent, so that the same rows
    would be refused again however often they are sent, and others would not.

    Splitting pays only for such a refusal; for any other failure it would turn every event
    into a dead letter. So the test is what the error is about, not where it came from:

    - PEP 249's DataError (a value the column cannot hold: NUL in text or JSONB, a number out
      of range, a string too long) and IntegrityError (the rows break a constraint, or a
      SQLite trigger's RAISE). psycopg raises its DataError for NUL in text before sending
      anything; SQLAlchemy wraps it like the server's. A second writer racing for a chain's
      next entry (during a rebalance) breaks a key too: the halves, each reading the chain's
      head again, absorb what it wrote.
    - SQLSTATE class P0, a PL/pgSQL RAISE (a trigger's rule), which psycopg files under
      ProgrammingError.
    - OverflowError and ValueError raised by the driver itself while converting a value:
      SQLite's refuses an integer over 64 bits that way, which SQLAlchemy does not wrap.

    Not a refusal: OperationalError (a lost connection, a server shutting down, a full disk,
    a deadlock or serialization failure, a statement timeout, SQLite's "database is locked"),
    InterfaceError, any error SQLAlchemy took for a disconnect, other ProgrammingErrors (a
    missing table, a revoked privilege), InternalError (corruption), SQLAlchemy's own pool
    timeouts and any other exception (a bug in the collector is not the event's fault).
    """
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:
            return False
        if isinstance(error, DataError | IntegrityError):
            return True
        return str(getattr(error.orig, "sqlstate", None) or "").startswith("P0")
    return isinstance(error, OverflowError | ValueError)


def _first_line(error: Exception) -> str:
    """The database's reason: its first line (the rest quotes the statement and its values)."""
    text = str(error) if isinstance(error, SQLAlchemyError) else f"{type(error).__name__}: {error}"
    lines = text.strip().splitlines()
    return lines[0][:MAX_REASON_CHARS] if lines else type(error).__name__

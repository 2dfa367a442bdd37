"""Rebuilding the read models from the ledger: the tables are projections, the ledger is the
record, so emptying them and projecting every stored event again must give the same rows."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import delete
from sqlmodel import Session, col, select

from driftline.agent.contract import Event, decode
from driftline.collector.store import projections
from driftline.collector.store.models import LedgerEntry
from driftline.collector.store.projections import READ_MODELS

BATCH = 1_000


def rebuild(session: Session, progress: Callable[[int], None] = lambda _: None) -> int:
    """Empty every read model and project the ledger into it again, in the order the events
    were recorded; the caller commits. Returns how many events were projected."""
    for table in READ_MODELS:
        session.execute(delete(table))
    statement = select(LedgerEntry.event_bytes).order_by(
        col(LedgerEntry.recorded_at),
        col(LedgerEntry.topic),
        col(LedgerEntry.partition),
        col(LedgerEntry.seq),
    )
    projected = 0
    batch: list[Event] = []
    for event_bytes in session.exec(statement.execution_options(yield_per=BATCH)):
        batch.append(decode(event_bytes))
        if len(batch) == BATCH:
            projected += _project(session, batch, progress)
            batch = []
    return projected + _project(session, batch, progress)


def _project(session: Session, batch: list[Event], progress: Callable[[int], None]) -> int:
    projections.project(session, batch)
    session.flush()
    progress(len(batch))
    return len(batch)

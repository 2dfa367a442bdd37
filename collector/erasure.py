"""Erasure and retention: a decision's inputs replaced by a tombstone, the chain still whole.

The tombstone keeps the SHA-256 of the inputs it replaced, which is all the ledger's digest
covers of them (see ``ledger.digest``), so an erased entry verifies like any other. The read
model gets the same tombstone, so a replay of the ledger gives the same rows. Legal holds win
over both erasure and retention.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import ColumnElement, func
from sqlmodel import Session, col, select

from collector import ledger
from collector.holds import active_holds, not_held
from collector.models import Decision, Erasure, LedgerEntry

log = structlog.get_logger(__name__)

BATCH = 500


@dataclass(frozen=True)
class ErasureOutcome:
    erasure_id: uuid.UUID
    erased: int  # decisions whose inputs are now a tombstone
    held: int  # decisions kept as they are because a legal hold covers them


def erase_subject(
    session: Session, *, subject: str, reason: str, requested_by: str, now: datetime
) -> ErasureOutcome:
    """Erase the inputs of every decision about ``subject`` that no legal hold covers."""
    return _erase(session, col(Decision.subject_ref) == subject, subject, reason, requested_by, now)


def apply_retention(session: Session, *, retention_days: int, now: datetime) -> ErasureOutcome:
    """Erase the inputs of decisions recorded longer ago than the retention period, holds
    excepted. Counted from when the collector recorded them, not from ``occurred_at``: that is
    the caller's to choose, and a decision dated years back would lose its inputs at once."""
    cutoff = now - timedelta(days=retention_days)
    reason = f"retention: recorded more than {retention_days} days ago"
    return _erase(session, col(LedgerEntry.recorded_at) < cutoff, None, reason, "retention", now)


def _erase(
    session: Session,
    which: ColumnElement[bool],
    subject: str | None,
    reason: str,
    requested_by: str,
    now: datetime,
) -> ErasureOutcome:
    holds = active_holds(session)
    not_erased = col(LedgerEntry.erased_at).is_(None)
    held = session.exec(
        select(func.count())
        .select_from(Decision)
        .join(LedgerEntry, col(LedgerEntry.event_id) == col(Decision.event_id))
        .where(which, not_erased, ~not_held(holds))
    ).one()
    erased = 0
    while True:
        batch = session.exec(
            select(Decision, LedgerEntry)
            .join(LedgerEntry, col(LedgerEntry.event_id) == col(Decision.event_id))
            .where(which, not_erased, not_held(holds))
            .limit(BATCH)
        ).all()
        for decision, entry in batch:
            event = json.loads(entry.event_bytes)
            tombstone = {
                ledger.TOMBSTONE: {
                    "inputs_sha256": ledger.inputs_hash(event["payload"]["inputs"]),
                    "erased_at": now.isoformat(),
                    "reason": reason,
                }
            }
            event["payload"]["inputs"] = tombstone
            entry.event_bytes = ledger.canonical(event)
            entry.erased_at = now
            decision.inputs = tombstone
            session.add_all([entry, decision])
        session.flush()
        erased += len(batch)
        if len(batch) < BATCH:
            break
    erasure = Erasure(
        id=uuid.uuid4(),
        subject_ref=subject,
        reason=reason,
        requested_by=requested_by,
        at=now,
        decisions=erased,
    )
    if erased or subject is not None:  # a retention run that erased nothing is not recorded
        session.add(erasure)
    log.info("decision inputs erased", erased=erased, held=held, reason=reason, subject=subject)
    return ErasureOutcome(erasure.id, erased, held)

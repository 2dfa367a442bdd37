"""Erasure and retention: a decision's inputs replaced by a tombstone, the chain still whole.

The tombstone keeps the hash of the inputs it replaced, which is all the ledger's digest covers
of them (see ``ledger.digest``), so an erased entry verifies like any other. From entry format 2
on, that hash is keyed with the entry's salt, which erasure destroys: nothing stored is left to
confirm a guess of the erased value. The read model gets the same tombstone, so a replay of the
ledger gives the same rows. Legal holds win over both erasure and retention.

Each tombstone and each ``erasures`` row is signed with the key that signs checkpoints, so an
erasure mark written into the database by hand is found by ``check_marks``.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import ColumnElement, func
from sqlmodel import Session, col, select

from driftline.collector.audit.checkpoints import key_id
from driftline.collector.audit.holds import active_holds, not_held
from driftline.collector.store import ledger
from driftline.collector.store.models import Decision, Erasure, LedgerEntry

log = structlog.get_logger(__name__)

BATCH = 500


@dataclass(frozen=True)
class ErasureOutcome:
    erasure_id: uuid.UUID
    erased: int  # decisions whose inputs are now a tombstone
    held: int  # decisions kept as they are because a legal hold covers them


def erase_subject(
    session: Session,
    *,
    subject: str,
    reason: str,
    requested_by: str,
    now: datetime,
    key: Ed25519PrivateKey,
) -> ErasureOutcome:
    """Erase the inputs of every decision about ``subject`` that no legal hold covers; ``key``
    signs the tombstones and the erasure's record."""
    which = col(Decision.subject_ref) == subject
    return _erase(session, which, subject, reason, requested_by, now, key)


def apply_retention(
    session: Session, *, retention_days: int, now: datetime, key: Ed25519PrivateKey
) -> ErasureOutcome:
    """Erase the inputs of decisions recorded longer ago than the retention period, holds
    excepted. Counted from when the collector recorded them, not from ``occurred_at``: that is
    the caller's to choose, and a decision dated years back would lose its inputs at once."""
    cutoff = now - timedelta(days=retention_days)
    reason = f"retention: recorded more than {retention_days} days ago"
    which = col(LedgerEntry.recorded_at) < cutoff
    return _erase(session, which, None, reason, "retention", now, key)


def _erase(
    session: Session,
    which: ColumnElement[bool],
    subject: str | None,
    reason: str,
    requested_by: str,
    now: datetime,
    key: Ed25519PrivateKey,
) -> ErasureOutcome:
    holds = active_holds(session)
    erasure_id = uuid.uuid4()
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
            hashed = ledger.inputs_hash(event["payload"]["inputs"], entry.inputs_salt)
            mark = {**hashed, "erased_at": now.isoformat(), "erasure_id": str(erasure_id)}
            mark["reason"] = reason
            signature = key.sign(tombstone_statement(entry, mark))
            mark |= {"key_id": key_id(key.public_key()), "signature": _b64(signature)}
            tombstone = {ledger.TOMBSTONE: mark}
            event["payload"]["inputs"] = tombstone
            entry.event_bytes = ledger.canonical(event)
            entry.erased_at = now
            entry.inputs_salt = None  # what would let a guess be confirmed
            decision.inputs = tombstone
            session.add_all([entry, decision])
        session.flush()
        erased += len(batch)
        if len(batch) < BATCH:
            break
    erasure = Erasure(
        id=erasure_id,
        subject_ref=subject,
        reason=reason,
        requested_by=requested_by,
        at=now,
        decisions=erased,
        key_id=key_id(key.public_key()),
    )
    erasure.signature = key.sign(erasure_statement(erasure))
    if erased or subject is not None:  # a retention run that erased nothing is not recorded
        session.add(erasure)
    log.info("decision inputs erased", erased=erased, held=held, reason=reason, subject=subject)
    return ErasureOutcome(erasure.id, erased, held)


class Marked(Protocol):
    """What checking an erasure mark needs of an entry: a ``LedgerEntry``, or a proof's."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def seq(self) -> int: ...
    @property
    def event_id(self) -> uuid.UUID: ...
    @property
    def event_bytes(self) -> bytes: ...
    @property
    def erased_at(self) -> datetime | None: ...
    @property
    def entry_format(self) -> int: ...


def tombstone_statement(entry: Marked, mark: Mapping[str, Any]) -> bytes:
    """The bytes a tombstone's signature covers: which entry, the hash kept, when, why, and
    the erasure it belongs to."""
    signed = {k: v for k, v in mark.items() if k not in {"key_id", "signature"}}
    where = {"topic": entry.topic, "partition": entry.partition, "seq": entry.seq}
    return ledger.canonical({"entry": where, "event_id": str(entry.event_id), "mark": signed})


def erasure_statement(erasure: Erasure) -> bytes:
    return ledger.canonical(
        {
            "at": erasure.at.isoformat(),
            "decisions": erasure.decisions,
            "id": str(erasure.id),
            "reason": erasure.reason,
            "requested_by": erasure.requested_by,
            "subject_ref": erasure.subject_ref,
        }
    )


def _b64(signature: bytes) -> str:
    return base64.b64encode(signature).decode()


@dataclass(frozen=True)
class MarkCheck:
    """Erasure marks checked against their signatures."""

    erased: int
    # Tombstones and erasure records from before migration 0012, dated before the first entry
    # recorded after it: not signed, and not counted as broken (nothing can tell them apart
    # from a mark forged on such an old entry, with an old date).
    unsigned: int
    breaks: list[ledger.ChainBreak] = field(default_factory=list)


def check_marks(session: Session, trusted: Mapping[str, Ed25519PublicKey]) -> MarkCheck:
    """Check every erased entry's tombstone and every erasure record against the keys."""
    erasures = {e.id: e for e in session.exec(select(Erasure))}
    upgraded_at = _upgraded_at(session)
    breaks, unsigned, erased = [], 0, 0
    statement = select(LedgerEntry).where(col(LedgerEntry.erased_at).is_not(None))
    for entry in session.exec(statement.execution_options(yield_per=1000)):
        erased += 1
        problem = mark_problem(entry, trusted, erasures)
        if problem == UNSIGNED and not _before(entry.erased_at, upgraded_at):
            problem = "an unsigned erasure mark dated after marks were signed (written by hand?)"
        if problem == UNSIGNED:
            unsigned += 1
        elif problem is not None:
            breaks.append(ledger.ChainBreak(entry.topic, entry.partition, entry.seq, problem))
    for erasure in erasures.values():
        if erasure.signature is None and not _before(erasure.at, upgraded_at):
            problem = f"erasure {erasure.id}: unsigned, dated after erasures were signed (forged?)"
            breaks.append(ledger.ChainBreak("erasures", 0, 0, problem))
        elif erasure.signature is None:
            unsigned += 1
        elif not _signed(erasure.key_id, erasure.signature, erasure_statement(erasure), trusted):
            problem = f"erasure {erasure.id}: its record does not match its signature (altered)"
            breaks.append(ledger.ChainBreak("erasures", 0, 0, problem))
    return MarkCheck(erased, unsigned, breaks)


# A tombstone written before migration 0012, which signed none: not verifiable, not a break.
UNSIGNED = "signed by nobody: erased before erasure marks were signed"


def _upgraded_at(session: Session) -> datetime | None:
    """When the first entry of format 2 was recorded: from then on every erasure is signed. The
    chain covers ``recorded_at``, so this time cannot be moved. None: no such entry yet."""
    return session.exec(
        select(func.min(LedgerEntry.recorded_at)).where(LedgerEntry.entry_format == ledger.FORMAT)
    ).one()


def _before(at: datetime | None, upgraded_at: datetime | None) -> bool:
    return upgraded_at is None or (at is not None and at < upgraded_at)


def mark_problem(
    entry: Marked,
    trusted: Mapping[str, Ed25519PublicKey],
    erasures: Mapping[uuid.UUID, Erasure] | None = None,
) -> str | None:
    """What is wrong with an erased entry's mark; None when it holds. A legacy entry's
    unsigned tombstone gives ``UNSIGNED``. ``erasures``: the erasure records, when at hand."""
    try:
        mark = json.loads(entry.event_bytes)["payload"]["inputs"][ledger.TOMBSTONE]
        signature = mark.get("signature")
        marked_at = datetime.fromisoformat(mark["erased_at"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return "erased_at is set but the inputs are no tombstone (altered)"
    if signature is None and entry.entry_format == ledger.LEGACY_FORMAT:
        return UNSIGNED
    try:
        signed = _signed(mark.get("key_id"), base64.b64decode(signature, validate=True),
                         tombstone_statement(entry, mark), trusted)  # fmt: skip
    except (ValueError, TypeError):
        signed = False
    if not signed:
        return "erasure mark is not signed by a trusted key (written by hand?)"
    if marked_at != entry.erased_at:
        return f"erased_at {entry.erased_at} differs from the signed mark's {marked_at} (altered)"
    if erasures is not None and uuid.UUID(mark["erasure_id"]) not in erasures:
        return f"erasure {mark['erasure_id']}, which this mark names, has no record (removed)"
    return None


def _signed(
    signer: str | None, signature: bytes, statement: bytes, trusted: Mapping[str, Ed25519PublicKey]
) -> bool:
    public_key = trusted.get(signer or "")
    if public_key is None:
        return False
    try:
        public_key.verify(signature, statement)
    except InvalidSignature:
        return False
    return True

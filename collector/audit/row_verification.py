"""Verification of what is served: read-model rows checked against the ledger entries they were
projected from.

The API, the exports and the web page serve the read models (``decisions``, ``reviews``, ...),
not the ledger's bytes. A row must be exactly what its entry's event projects to
(``projections.row_for``); any other value, a row whose entry is gone, and an entry whose row is
gone are tampering, reported with the table and the key. The chain walk (``ledger.verify``)
says whether the entry itself still holds; together they cover everything served.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import func
from sqlmodel import Session, SQLModel, col, select

from driftline.agent.contract import ContractError, decode
from driftline.collector.audit import checkpoints, erasure
from driftline.collector.store import ledger
from driftline.collector.store.models import Decision, Feedback, LedgerEntry, Review
from driftline.collector.store.projections import READ_MODELS, TABLE_OF_TYPE, row_for

BATCH = 1_000


@dataclass(frozen=True)
class Tampering:
    """A served row that is not what the ledger says it should be."""

    table: str
    key: str  # the row's key, e.g. "decision_id=…"
    problem: str

    def __str__(self) -> str:
        return f"{self.table} {self.key}: {self.problem}"


@dataclass
class RowCheck:
    rows: int = 0  # rows checked
    tampering: list[Tampering] = field(default_factory=list)
    complete: bool = True  # False when a sample ran out of time before its end

    @property
    def intact(self) -> bool:
        return not self.tampering


def check_all(session: Session) -> RowCheck:
    """Every row of every read model, and every ledger entry that should have a row."""
    result = RowCheck()
    for table in READ_MODELS:
        joined = _with_entries(table).execution_options(yield_per=BATCH)
        try:
            for row, entry in session.exec(joined):
                result.rows += 1
                result.tampering.extend(row_problems(row, entry))
        except (ValueError, TypeError, OverflowError) as error:
            # SQLite keeps any bytes in any column: a cell that no longer reads as its type.
            problem = f"a stored value cannot be read as its column's type (altered): {error}"
            result.tampering.append(Tampering(_name(table), "(unreadable row)", problem))
        result.tampering.extend(_rows_missing(session, table))
    return result


def check_sample(
    session: Session, per_table: int, seconds: float, trusted: Mapping[str, Ed25519PublicKey]
) -> RowCheck:
    """Up to ``per_table`` rows of each read model picked at random, each with its entry
    checked alone up to its checkpoint (``entry_problem``). For stores too big to check whole
    as often as one would like: ``seconds`` is shared out among the tables (what one leaves
    goes to the next), and a table that runs out leaves the check incomplete."""
    result = RowCheck()
    start = time.monotonic()
    for done, table in enumerate(READ_MODELS):
        deadline = start + seconds * (done + 1) / len(READ_MODELS)
        picked = _with_entries(table).order_by(func.random()).limit(per_table)
        for row, entry in session.exec(picked):
            if time.monotonic() > deadline:
                result.complete = False
                break
            result.rows += 1
            result.tampering.extend(row_problems(row, entry))
            if entry is not None and (problem := entry_problem(session, entry, trusted)):
                result.tampering.append(Tampering(_name(table), _key(row), f"its entry: {problem}"))
    return result


def check_decision(
    session: Session, decision_id: uuid.UUID, trusted: Mapping[str, Ed25519PublicKey]
) -> list[Tampering]:
    """What a single-decision read serves: the decision's row, its reviews and feedback, each
    against its entry, each entry checked alone, and an erased entry's signed mark."""
    served: list[SQLModel] = []
    decision = session.get(Decision, decision_id)
    if decision is not None:
        served.append(decision)
    for kind in (Review, Feedback):
        served.extend(session.exec(select(kind).where(kind.decision_id == decision_id)))
    found = []
    for row in served:
        entry = session.exec(
            select(LedgerEntry).where(LedgerEntry.event_id == row.event_id)  # type: ignore[attr-defined]
        ).first()
        found.extend(row_problems(row, entry))
        if entry is None:
            continue
        if (problem := entry_problem(session, entry, trusted)) is not None:
            found.append(Tampering(_name(type(row)), _key(row), f"its ledger entry: {problem}"))
    return found


def entry_problem(
    session: Session, entry: LedgerEntry, trusted: Mapping[str, Ed25519PublicKey]
) -> str | None:
    """One entry checked alone, up to the first checkpoint that covers it, whose signature must
    hold (``ledger.check_entry``); to its chain's head when none covers it yet."""
    covering = checkpoints.covering(session, entry.topic, entry.partition, entry.seq)
    vouched = {}
    if covering is not None:
        if (problem := checkpoints.signature_problem(covering, trusted)) is not None:
            return problem
        vouched = {covering.seq: covering.chain_hash}
    problem = ledger.check_entry(session, entry, vouched)
    if problem is None and entry.erased_at is not None:
        mark = erasure.mark_problem(entry, trusted)
        if mark is not None and mark != erasure.UNSIGNED:
            return f"its erasure: {mark}"
    return problem


def row_problems(row: SQLModel, entry: LedgerEntry | None) -> list[Tampering]:
    """The row against what its entry's event projects to; empty when they are the same."""
    table, key = _name(type(row)), _key(row)
    if entry is None:
        return [Tampering(table, key, "has no ledger entry (forged, or its entry was removed)")]
    where = f"ledger {entry.topic}[{entry.partition}] entry {entry.seq}"
    try:
        projected_table, expected = row_for(decode(entry.event_bytes))
    except (ContractError, TypeError, ValueError) as error:
        return [Tampering(table, key, f"its {where} does not decode: {error}")]
    if projected_table is not type(row):
        named = _name(projected_table)
        return [Tampering(table, key, f"its {where} is projected to {named} (forged row)")]
    differing = [name for name, value in expected.items() if not same(value, getattr(row, name))]
    if not differing:
        return []
    return [Tampering(table, key, f"{', '.join(differing)} differ from its {where} (altered)")]


def same(expected: Any, stored: Any) -> bool:
    """Whether a stored value is the projected one, as the databases give values back: any
    time zone, an integral float read back as an int, JSON containers; otherwise the same type
    (a bool is never a number, an int never a float) and the same value, exactly."""
    if isinstance(expected, Enum):
        expected = expected.value
    if isinstance(expected, bool) or isinstance(stored, bool):
        return type(expected) is type(stored) and expected == stored
    if isinstance(expected, int | float) and isinstance(stored, int | float):
        if type(expected) is type(stored):
            return expected == stored
        # PostgreSQL's JSONB gives an integral float back as an int (1e16 as 10**16); nothing
        # honest turns an int into a float.
        return isinstance(expected, float) and expected.is_integer() and int(expected) == stored
    if isinstance(expected, datetime) and isinstance(stored, datetime):
        return expected.astimezone(UTC) == stored.astimezone(UTC)
    if isinstance(expected, uuid.UUID) or isinstance(stored, uuid.UUID):
        return str(expected) == str(stored)
    if isinstance(expected, dict) and isinstance(stored, dict):
        return expected.keys() == stored.keys() and all(
            same(value, stored[name]) for name, value in expected.items()
        )
    if isinstance(expected, list | tuple) and isinstance(stored, list | tuple):
        return len(expected) == len(stored) and all(map(same, expected, stored))
    return type(expected) is type(stored) and expected == stored


def _rows_missing(session: Session, table: type[SQLModel]) -> Iterator[Tampering]:
    """Entries whose event projects to ``table`` and that have no row there. The decisions
    table keeps the first of two decisions with one id: the second has no row by design."""
    types = [kind for kind, projected in TABLE_OF_TYPE.items() if projected is table]
    rowless = (
        select(LedgerEntry)
        .where(col(LedgerEntry.event_type).in_(types))
        .where(~col(LedgerEntry.event_id).in_(select(table.event_id)))  # type: ignore[attr-defined]
        .execution_options(yield_per=BATCH)
    )
    for entry in session.exec(rowless):
        where = f"ledger {entry.topic}[{entry.partition}] entry {entry.seq}"
        kept = _kept_instead(session, entry) if table is Decision else None
        if kept is None:
            problem = f"missing: {where} has no row (removed)"
        elif kept > entry.seq:
            problem = f"{where} is the first decision under its id, but a later one is served"
        else:
            continue  # a second decision under a stored id: the ledger keeps it, the row the first
        yield Tampering(_name(table), f"event_id={entry.event_id}", problem)


def _kept_instead(session: Session, entry: LedgerEntry) -> int | None:
    """For a decision entry with no row: the seq of the entry whose row is served under the
    same decision id (-1 when it is on another chain), or None when there is none."""
    try:
        decision_id = decode(entry.event_bytes).decision_id
    except ContractError:
        return None
    served = session.exec(
        select(LedgerEntry.topic, LedgerEntry.partition, LedgerEntry.seq)
        .join(Decision, col(Decision.event_id) == col(LedgerEntry.event_id))
        .where(Decision.decision_id == decision_id)
    ).first()
    if served is None:
        return None
    topic, partition, seq = served
    # Another chain (a producer that keyed it otherwise) has no order to compare with.
    return seq if (topic, partition) == (entry.topic, entry.partition) else -1


def _with_entries(table: type[SQLModel]) -> Any:
    """The table's rows, each with its ledger entry (None when it has none)."""
    entry_of_row = col(LedgerEntry.event_id) == col(table.event_id)  # type: ignore[attr-defined]
    return select(table, LedgerEntry).join(LedgerEntry, entry_of_row, isouter=True)


def _name(table: type[SQLModel]) -> str:
    return str(table.__tablename__)


def _key(row: SQLModel) -> str:
    if isinstance(row, Decision):
        return f"decision_id={row.decision_id}"
    return f"event_id={row.event_id}"  # type: ignore[attr-defined]

"""The tamper-evident audit ledger: one SHA-256 hash chain per Kafka partition.

Each partition has one consumer at a time, so appends to its chain need no global lock; the
primary key (topic, partition, seq) makes a second writer's append fail instead of forking the
chain. ``verify`` walks every chain and reports the first place where it breaks.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from collector.models import LedgerEntry

GENESIS = bytes(32)


def digest(event_bytes: bytes) -> bytes:
    return hashlib.sha256(event_bytes).digest()


def link(previous_hash: bytes, event_digest: bytes) -> bytes:
    return hashlib.sha256(previous_hash + event_digest).digest()


@dataclass(frozen=True)
class ChainHead:
    """Where the next entry of a chain goes: its sequence number and the hash it links to."""

    next_seq: int
    previous_hash: bytes


def head(session: Session, topic: str, partition: int) -> ChainHead:
    last = session.exec(
        select(LedgerEntry.seq, LedgerEntry.chain_hash)
        .where(LedgerEntry.topic == topic, LedgerEntry.partition == partition)
        .order_by(col(LedgerEntry.seq).desc())
        .limit(1)
    ).first()
    if last is None:
        return ChainHead(next_seq=0, previous_hash=GENESIS)
    return ChainHead(next_seq=last[0] + 1, previous_hash=last[1])


@dataclass(frozen=True)
class NewEntry:
    event_id: uuid.UUID
    event_type: str
    kafka_offset: int
    event_bytes: bytes


def chain(
    topic: str, partition: int, start: ChainHead, entries: list[NewEntry], recorded_at: datetime
) -> list[LedgerEntry]:
    """Link new entries onto a chain, in the order given."""
    rows = []
    previous, seq = start.previous_hash, start.next_seq
    for entry in entries:
        event_digest = digest(entry.event_bytes)
        previous = link(previous, event_digest)
        rows.append(
            LedgerEntry(
                topic=topic,
                partition=partition,
                seq=seq,
                event_id=entry.event_id,
                event_type=entry.event_type,
                kafka_offset=entry.kafka_offset,
                event_bytes=entry.event_bytes,
                event_digest=event_digest,
                chain_hash=previous,
                recorded_at=recorded_at,
            )
        )
        seq += 1
    return rows


@dataclass(frozen=True)
class ChainBreak:
    topic: str
    partition: int
    seq: int
    problem: str


@dataclass(frozen=True)
class Verification:
    chains: int
    entries: int
    breaks: list[ChainBreak]

    @property
    def intact(self) -> bool:
        return not self.breaks


def verify(session: Session) -> Verification:
    """Recompute every chain from its first entry; report the first break of each chain."""
    breaks: dict[tuple[str, int], ChainBreak] = {}
    chains: set[tuple[str, int]] = set()
    entries = 0
    expected = ChainHead(0, GENESIS)
    current: tuple[str, int] | None = None
    for row in _all_entries(session):
        entries += 1
        key = (row.topic, row.partition)
        if key != current:
            current, expected = key, ChainHead(0, GENESIS)
            chains.add(key)
        if key in breaks:
            continue
        problem = _problem(row, expected)
        if problem is not None:
            breaks[key] = ChainBreak(row.topic, row.partition, expected.next_seq, problem)
        expected = ChainHead(row.seq + 1, row.chain_hash)
    return Verification(chains=len(chains), entries=entries, breaks=list(breaks.values()))


def _all_entries(session: Session) -> Iterator[LedgerEntry]:
    statement = select(LedgerEntry).order_by(
        col(LedgerEntry.topic), col(LedgerEntry.partition), col(LedgerEntry.seq)
    )
    yield from session.exec(statement.execution_options(yield_per=1000))


def _problem(row: LedgerEntry, expected: ChainHead) -> str | None:
    if row.seq != expected.next_seq:
        return f"entry {expected.next_seq} is missing (next stored entry is {row.seq})"
    if digest(row.event_bytes) != row.event_digest:
        return "event bytes do not match their recorded digest (altered)"
    if link(expected.previous_hash, row.event_digest) != row.chain_hash:
        return "chain hash does not follow from the previous entry (altered, removed or reordered)"
    try:
        event = json.loads(row.event_bytes)
        stored_id, stored_type = event["event_id"], event["type"]
    except (ValueError, KeyError, TypeError):
        return "event bytes are not an event"
    if stored_id != str(row.event_id):
        return f"event_id column {row.event_id} differs from the event's own id {stored_id}"
    if stored_type != row.event_type:
        return f"event_type column {row.event_type!r} differs from the event's {stored_type!r}"
    return None

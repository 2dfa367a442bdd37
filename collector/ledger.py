"""The tamper-evident audit ledger: one SHA-256 hash chain per Kafka partition.

Each partition has one consumer at a time, so appends to its chain need no global lock; the
primary key (topic, partition, seq) makes a second writer's append fail instead of forking the
chain. ``verify`` walks every chain and reports the first place where it breaks, including
entries that signed checkpoints vouch for but the chain no longer has.

An entry's digest covers the event with a decision's inputs replaced by their own SHA-256, so
that erasing the inputs (keeping that hash in a tombstone) leaves every digest and link intact.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from collector.models import LedgerEntry

GENESIS = bytes(32)
TOMBSTONE = "$erased"  # the only key of a decision's inputs once they are erased


_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
# Stands in for a decision's inputs so that one encoding of the event gives both its bytes and
# its digest (see ``new_entry``). Random per process, so no event can carry it by design, and
# checked all the same.
_INPUTS_SLOT = f"\x00driftline-inputs-{secrets.token_hex(16)}"
_INPUTS_SLOT_TEXT = _CANONICAL.encode(_INPUTS_SLOT)


def canonical(document: Any) -> bytes:
    return _CANONICAL.encode(document).encode()


def inputs_hash(inputs: Any) -> str:
    return hashlib.sha256(canonical(inputs)).hexdigest()


def digest(event_bytes: bytes, *, erased: bool = False) -> bytes:
    """SHA-256 of the event with a decision's inputs replaced by their hash.

    ``erased``: the inputs are a tombstone that carries the hash of the inputs it replaced.
    Raise ValueError for bytes that are not an event.
    """
    return digest_of(json.loads(event_bytes), erased=erased)


def digest_of(document: Any, *, erased: bool = False) -> bytes:
    """``digest`` of an event already parsed; the document's inputs are replaced in place."""
    if not isinstance(document, dict):
        raise ValueError("not a JSON object")
    if erased and document.get("type") != "decision":
        raise ValueError("only a decision's inputs can be erased")
    if document.get("type") == "decision":
        payload = document["payload"]
        inputs = payload["inputs"]
        sha256 = inputs[TOMBSTONE]["inputs_sha256"] if erased else inputs_hash(inputs)
        payload["inputs"] = {"inputs_sha256": sha256}
    return hashlib.sha256(canonical(document)).digest()


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


def heads(session: Session) -> list[LedgerEntry]:
    """The last entry of every chain, by topic and partition."""
    last = session.exec(
        select(LedgerEntry.topic, LedgerEntry.partition, func.max(LedgerEntry.seq)).group_by(
            col(LedgerEntry.topic), col(LedgerEntry.partition)
        )
    ).all()
    entries = [session.get(LedgerEntry, position) for position in sorted(last)]
    return [entry for entry in entries if entry is not None]


@dataclass(frozen=True)
class NewEntry:
    event_id: uuid.UUID
    event_type: str
    kafka_offset: int
    event_bytes: bytes
    event_digest: bytes


def new_entry(document: dict[str, Any], kafka_offset: int) -> NewEntry:
    """An entry for an event given as its JSON document, which is consumed (see ``digest_of``).

    The same bytes and digest as ``canonical`` and ``digest_of`` give, with one encoding of the
    whole event instead of two (and of the inputs instead of two): the collector spends much of
    its time encoding.
    """
    event_id, event_type = uuid.UUID(document["event_id"]), document["type"]
    if event_type != "decision":
        event_bytes = canonical(document)  # nothing is replaced: the digest is of these bytes
        return NewEntry(
            event_id, event_type, kafka_offset, event_bytes, hashlib.sha256(event_bytes).digest()
        )
    payload = document["payload"]
    inputs, payload["inputs"] = payload["inputs"], _INPUTS_SLOT
    text = _CANONICAL.encode(document)
    if text.count(_INPUTS_SLOT_TEXT) != 1:  # the slot's text met elsewhere: encode twice
        payload["inputs"] = inputs
        event_bytes = canonical(document)
        return NewEntry(event_id, event_type, kafka_offset, event_bytes, digest_of(document))
    inputs_text = _CANONICAL.encode(inputs)
    hashed = _CANONICAL.encode({"inputs_sha256": hashlib.sha256(inputs_text.encode()).hexdigest()})
    event_bytes = text.replace(_INPUTS_SLOT_TEXT, inputs_text).encode()
    event_digest = hashlib.sha256(text.replace(_INPUTS_SLOT_TEXT, hashed).encode()).digest()
    return NewEntry(event_id, event_type, kafka_offset, event_bytes, event_digest)


def chain(
    topic: str, partition: int, start: ChainHead, entries: list[NewEntry], recorded_at: datetime
) -> list[dict[str, Any]]:
    """Link new entries onto a chain, in the order given: the rows to insert."""
    rows = []
    previous, seq = start.previous_hash, start.next_seq
    for entry in entries:
        previous = link(previous, entry.event_digest)
        rows.append(
            {
                "topic": topic,
                "partition": partition,
                "seq": seq,
                "event_id": entry.event_id,
                "event_type": entry.event_type,
                "kafka_offset": entry.kafka_offset,
                "event_bytes": entry.event_bytes,
                "event_digest": entry.event_digest,
                "chain_hash": previous,
                "recorded_at": recorded_at,
                "erased_at": None,
            }
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
    erased: int  # entries whose decision inputs are tombstones; they still verify
    breaks: list[ChainBreak]

    @property
    def intact(self) -> bool:
        return not self.breaks


ChainKey = tuple[str, int]
# Per chain, per entry, the hash a valid signed checkpoint says the entry had.
Anchors = Mapping[ChainKey, Mapping[int, bytes]]


def verify(session: Session, anchors: Anchors | None = None) -> Verification:
    """Recompute every chain from its first entry; report the first break of each chain.

    With ``anchors``, an entry whose hash differs from its checkpoint's, and a chain that ends
    before an entry a checkpoint vouches for, are breaks too.
    """
    anchors = anchors or {}
    breaks: dict[ChainKey, ChainBreak] = {}
    ends: dict[ChainKey, int] = {}
    entries = erased = 0
    expected = ChainHead(0, GENESIS)
    current: ChainKey | None = None
    for row in _all_entries(session):
        entries += 1
        erased += row.erased_at is not None
        key = (row.topic, row.partition)
        if key != current:
            current, expected = key, ChainHead(0, GENESIS)
        ends[key] = row.seq + 1
        if key in breaks:
            continue
        problem = _problem(row, expected, anchors.get(key, {}))
        if problem is not None:
            breaks[key] = ChainBreak(row.topic, row.partition, expected.next_seq, problem)
        expected = ChainHead(row.seq + 1, row.chain_hash)
    for key, vouched in anchors.items():
        end = ends.get(key, 0)
        beyond = [seq for seq in vouched if seq >= end]
        if beyond and key not in breaks:
            breaks[key] = ChainBreak(
                *key,
                end,
                f"chain ends before entry {max(beyond)}, which a checkpoint vouches for"
                " (truncated)",
            )
    chains = len(ends.keys() | anchors.keys())
    return Verification(chains, entries, erased, sorted(breaks.values(), key=_position))


def _position(chain_break: ChainBreak) -> tuple[str, int, int]:
    return chain_break.topic, chain_break.partition, chain_break.seq


def _all_entries(session: Session) -> Iterator[LedgerEntry]:
    statement = select(LedgerEntry).order_by(
        col(LedgerEntry.topic), col(LedgerEntry.partition), col(LedgerEntry.seq)
    )
    yield from session.exec(statement.execution_options(yield_per=1000))


def _problem(row: LedgerEntry, expected: ChainHead, vouched: Mapping[int, bytes]) -> str | None:
    if row.seq != expected.next_seq:
        return f"entry {expected.next_seq} is missing (next stored entry is {row.seq})"
    try:
        event = json.loads(row.event_bytes)
        stored_id, stored_type = event["event_id"], event["type"]
        in_canonical_form = canonical(event) == row.event_bytes
        recomputed = digest_of(event, erased=row.erased_at is not None)
    except (ValueError, KeyError, TypeError):
        return "event bytes are not an event (altered)"
    if recomputed != row.event_digest:
        return "event bytes do not match their recorded digest (altered)"
    if not in_canonical_form:
        return "event bytes are not in the canonical form they were stored in (altered)"
    if link(expected.previous_hash, row.event_digest) != row.chain_hash:
        return "chain hash does not follow from the previous entry (altered, removed or reordered)"
    if row.seq in vouched and vouched[row.seq] != row.chain_hash:
        return "chain hash differs from the one a signed checkpoint vouches for (rewritten)"
    if stored_id != str(row.event_id):
        return f"event_id column {row.event_id} differs from the event's own id {stored_id}"
    if stored_type != row.event_type:
        return f"event_type column {row.event_type!r} differs from the event's {stored_type!r}"
    return None

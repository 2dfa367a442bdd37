"""The tamper-evident audit ledger: one SHA-256 hash chain per Kafka partition.

Each partition has one consumer at a time, so appends to its chain need no global lock; the
primary key (topic, partition, seq) makes a second writer's append fail instead of forking the
chain. ``verify`` walks every chain and reports the first place where it breaks, including
entries that signed checkpoints vouch for but the chain no longer has.

An entry's digest covers the event with a decision's inputs replaced by their hash, so that
erasing the inputs (keeping that hash in a tombstone) leaves every digest and link intact.

Two entry formats are in use, told apart by ``entry_format``:

- 1 (entries stored before migration 0012): the inputs' hash is a plain SHA-256, and an entry's
  link covers only its event's digest.
- 2: the inputs' hash is an HMAC-SHA256 keyed with a random salt of the entry's own
  (``inputs_salt``), destroyed on erasure, so that an erased value cannot be confirmed by
  guessing; and the link also covers what the collector recorded about the event: its Kafka
  offset, when it was recorded and its clock skew (``leaf``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy
from sqlalchemy import func
from sqlmodel import Session, col, select

from driftline.collector.store import bulk
from driftline.collector.store.models import LedgerEntry

GENESIS = bytes(32)
TOMBSTONE = "$erased"  # the only key of a decision's inputs once they are erased
LEGACY_FORMAT, FORMAT = 1, 2
# The key under which a digest and a tombstone carry the inputs' hash, by kind of hash.
PLAIN_HASH, SALTED_HASH = "inputs_sha256", "inputs_hmac_sha256"
SALT_BYTES = 16
_LEAF_PREFIX = b"driftline-entry-v2\x00"


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


def inputs_hash(inputs: Any, salt: bytes | None) -> dict[str, str]:
    """What stands in for a decision's inputs in its digest: their HMAC keyed with the entry's
    salt, or (entries stored before salts) their plain SHA-256."""
    return _inputs_hash_of_text(canonical(inputs), salt)


def _inputs_hash_of_text(inputs_text: bytes, salt: bytes | None) -> dict[str, str]:
    if salt is None:
        return {PLAIN_HASH: hashlib.sha256(inputs_text).hexdigest()}
    return {SALTED_HASH: hmac.digest(salt, inputs_text, "sha256").hex()}


def tombstoned_hash(tombstone: Any) -> dict[str, str]:
    """The inputs' hash that a tombstone kept; KeyError or TypeError if it is not one."""
    kept = tombstone[TOMBSTONE]
    (kind,) = {PLAIN_HASH, SALTED_HASH} & kept.keys()
    return {kind: kept[kind]}


def digest(event_bytes: bytes, *, erased: bool = False, salt: bytes | None = None) -> bytes:
    """SHA-256 of the event with a decision's inputs replaced by their hash.

    ``erased``: the inputs are a tombstone that carries the hash of the inputs it replaced;
    ``salt``: the entry's, for an entry of format 2 that is not erased.
    Raise ValueError for bytes that are not an event.
    """
    return digest_of(json.loads(event_bytes), erased=erased, salt=salt)


def digest_of(document: Any, *, erased: bool = False, salt: bytes | None = None) -> bytes:
    """``digest`` of an event already parsed; the document's inputs are replaced in place."""
    if not isinstance(document, dict):
        raise ValueError("not a JSON object")
    if erased and document.get("type") != "decision":
        raise ValueError("only a decision's inputs can be erased")
    if document.get("type") == "decision":
        payload = document["payload"]
        inputs = payload["inputs"]
        try:
            payload["inputs"] = tombstoned_hash(inputs) if erased else inputs_hash(inputs, salt)
        except (KeyError, TypeError, ValueError):
            raise ValueError("erased inputs are not a tombstone") from None
    return hashlib.sha256(canonical(document)).digest()


@dataclass(frozen=True)
class Recorded:
    """What the collector recorded about an event, outside its bytes, that the chain covers
    from format 2 on."""

    kafka_offset: int
    recorded_at: datetime
    clock_skew_s: float | None


def leaf(entry_format: int, event_digest: bytes, recorded: Recorded) -> bytes:
    """What an entry's link hashes after the previous chain hash."""
    if entry_format == LEGACY_FORMAT:
        return event_digest
    if entry_format != FORMAT:
        raise ValueError(f"unknown entry format {entry_format}")
    at = recorded.recorded_at.isoformat()
    return _leaf(event_digest, recorded.kafka_offset, at, recorded.clock_skew_s)


def _leaf(event_digest: bytes, kafka_offset: int, recorded_at: str, skew: float | None) -> bytes:
    return _leaf_of_text(event_digest, kafka_offset, _CANONICAL.encode(recorded_at), skew)


def _leaf_of_text(
    event_digest: bytes, kafka_offset: int, recorded_at_text: str, skew: float | None
) -> bytes:
    # The canonical JSON of {clock_skew_s, kafka_offset, recorded_at}, keys in sorted order,
    # written out: the collector links every entry it stores, and a dict's encoding cost more.
    skew_text = "null" if skew is None else _CANONICAL.encode(skew)
    statement = (
        f'{{"clock_skew_s":{skew_text},"kafka_offset":{kafka_offset:d},'
        f'"recorded_at":{recorded_at_text}}}'
    )
    return hashlib.sha256(_LEAF_PREFIX + event_digest + statement.encode()).digest()


def entry_leaf(entry: LedgerEntry) -> bytes:
    recorded = Recorded(entry.kafka_offset, entry.recorded_at, entry.clock_skew_s)
    return leaf(entry.entry_format, entry.event_digest, recorded)


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
    inputs_salt: bytes | None = None  # a decision's


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
    salt = secrets.token_bytes(SALT_BYTES)
    payload = document["payload"]
    inputs, payload["inputs"] = payload["inputs"], _INPUTS_SLOT
    text = _CANONICAL.encode(document)
    if text.count(_INPUTS_SLOT_TEXT) != 1:  # the slot's text met elsewhere: encode twice
        payload["inputs"] = inputs
        event_bytes = canonical(document)
        event_digest = digest_of(document, salt=salt)
        return NewEntry(event_id, event_type, kafka_offset, event_bytes, event_digest, salt)
    inputs_text = _CANONICAL.encode(inputs)
    hashed = _CANONICAL.encode(_inputs_hash_of_text(inputs_text.encode(), salt))
    event_bytes = text.replace(_INPUTS_SLOT_TEXT, inputs_text).encode()
    event_digest = hashlib.sha256(text.replace(_INPUTS_SLOT_TEXT, hashed).encode()).digest()
    return NewEntry(event_id, event_type, kafka_offset, event_bytes, event_digest, salt)


@dataclass(frozen=True)
class Stored:
    """What ``is_copy`` needs of a stored entry."""

    event_bytes: bytes
    event_digest: bytes
    inputs_salt: bytes | None
    erased: bool = False


def stored(session: Session, event_ids: list[uuid.UUID]) -> dict[uuid.UUID, Stored]:
    """What the ledger holds under these event ids, by id."""
    if not event_ids:
        return {}
    columns = LedgerEntry.__table__.c  # type: ignore[attr-defined]
    held = sqlalchemy.select(
        columns.event_id,
        columns.event_bytes,
        columns.event_digest,
        columns.inputs_salt,
        columns.erased_at.is_not(None),
    ).where(bulk.among(columns.event_id, event_ids, session.connection().dialect))
    return {
        event_id: Stored(event_bytes, event_digest, salt, erased)
        for event_id, event_bytes, event_digest, salt, erased in session.execute(held)
    }


def is_copy(stored: Stored, event_bytes: bytes) -> bool:
    """Whether canonical ``event_bytes`` are the event a stored entry holds.

    By digest, with the stored entry's salt, for its inputs may be erased; once a salted entry
    is erased nothing can tell its inputs (that is the point), so a copy is then the same event
    outside its inputs.
    """
    if not stored.erased:
        return digest(event_bytes, salt=stored.inputs_salt) == stored.event_digest
    candidate, kept = json.loads(event_bytes), json.loads(stored.event_bytes)
    if candidate.get("type") != "decision":
        return False
    tombstone = kept["payload"]["inputs"]
    if PLAIN_HASH in tombstoned_hash(tombstone):  # a legacy tombstone: its hash can still tell
        return digest_of(candidate) == stored.event_digest
    candidate["payload"]["inputs"] = tombstone
    return canonical(candidate) == stored.event_bytes


def chain(
    topic: str,
    partition: int,
    start: ChainHead,
    entries: list[NewEntry],
    recorded_at: datetime,
    clock_skews: Mapping[uuid.UUID, float] | None = None,
) -> list[dict[str, Any]]:
    """Link new entries onto a chain, in the order given: the rows to insert.

    ``clock_skews``: by event id, the skew of the events dated out of bounds (see ingest).
    """
    rows = []
    previous, seq = start.previous_hash, start.next_seq
    at = _CANONICAL.encode(recorded_at.isoformat())  # the same for every entry: encoded once
    skews = clock_skews or {}
    for entry in entries:
        skew = skews.get(entry.event_id)
        previous = link(previous, _leaf_of_text(entry.event_digest, entry.kafka_offset, at, skew))
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
                "clock_skew_s": skew,
                "entry_format": FORMAT,
                "inputs_salt": entry.inputs_salt,
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


def check_entry(
    session: Session, entry: LedgerEntry, vouched: Mapping[int, bytes] | None = None
) -> str | None:
    """What is wrong with one entry without walking its whole chain (that is ``verify``'s): its
    bytes, digest, salt and link from the entry before it, then the links after it up to the
    first checkpoint in ``vouched`` (its chain's anchors) at or after it, or to the chain's
    head, as a proof folds them. None when it holds."""
    previous = GENESIS
    if entry.seq > 0:
        found = session.exec(
            select(LedgerEntry.chain_hash).where(
                LedgerEntry.topic == entry.topic,
                LedgerEntry.partition == entry.partition,
                LedgerEntry.seq == entry.seq - 1,
            )
        ).first()
        if found is None:
            return f"entry {entry.seq - 1}, which this one links to, is missing (removed)"
        previous = found
    vouched = vouched or {}
    problem = _problem(entry, ChainHead(entry.seq, previous), vouched)
    if problem is not None:
        return problem
    anchor = min((seq for seq in vouched if seq > entry.seq), default=None)
    following = select(LedgerEntry).where(
        LedgerEntry.topic == entry.topic,
        LedgerEntry.partition == entry.partition,
        col(LedgerEntry.seq) > entry.seq,
    )
    if anchor is not None:
        following = following.where(col(LedgerEntry.seq) <= anchor)
    chain_hash, seq = entry.chain_hash, entry.seq
    for later in session.exec(following.order_by(col(LedgerEntry.seq))):
        if later.seq != seq + 1:
            return f"entry {seq + 1}, after this one, is missing (removed)"
        try:
            later_leaf = entry_leaf(later)
        except ValueError as error:
            return f"entry {later.seq}, after this one: {error} (altered)"
        if link(chain_hash, later_leaf) != later.chain_hash:
            return f"entry {later.seq}, after this one, does not follow from it (rewritten)"
        chain_hash, seq = later.chain_hash, later.seq
    if anchor is not None and (seq != anchor or chain_hash != vouched[anchor]):
        return (
            f"the chain from this entry does not reach the checkpoint of entry {anchor} (rewritten)"
        )
    return None


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
        erased = row.erased_at is not None
        recomputed = digest_of(event, erased=erased, salt=row.inputs_salt)
        entry_leaf_hash = entry_leaf(row)
    except (ValueError, KeyError, TypeError):
        return "event bytes are not an event (altered)"
    salted = row.entry_format == FORMAT and stored_type == "decision" and not erased
    if salted != (row.inputs_salt is not None):
        return "inputs salt is missing or out of place (altered)"
    if recomputed != row.event_digest:
        return "event bytes do not match their recorded digest (altered)"
    if not in_canonical_form:
        return "event bytes are not in the canonical form they were stored in (altered)"
    if link(expected.previous_hash, entry_leaf_hash) != row.chain_hash:
        return (
            "chain hash does not follow from the previous entry and what was recorded of this"
            " one (altered, removed or reordered)"
        )
    if row.seq in vouched and vouched[row.seq] != row.chain_hash:
        return "chain hash differs from the one a signed checkpoint vouches for (rewritten)"
    if stored_id != str(row.event_id):
        return f"event_id column {row.event_id} differs from the event's own id {stored_id}"
    if stored_type != row.event_type:
        return f"event_type column {row.event_type!r} differs from the event's {stored_type!r}"
    return None

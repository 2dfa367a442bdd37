"""Writes one batch of raw log messages into the store, inside the caller's transaction.

Valid events are appended to their partition's chain and projected; a message that does not
decode goes to the dead-letter table with its bytes and reason. Everything is idempotent: an
event already in the ledger (same ``event_id``) and a dead letter already kept (same topic,
partition and offset) are skipped, so a batch read twice is stored once.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

import structlog
from sqlalchemy import insert
from sqlmodel import Session, col, select

from agent.contract import ContractError, Event, decode
from collector import ledger, projections
from collector.models import DeadLetter, LedgerEntry

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class RawMessage:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None  # None is a Kafka tombstone, which no event is


@dataclass(frozen=True)
class BatchOutcome:
    stored: int
    duplicates: int
    dead_letters: int


def write_batch(session: Session, messages: list[RawMessage]) -> BatchOutcome:
    """Stage a batch (in offset order per partition) for the caller to commit."""
    now = datetime.now(UTC)
    valid: list[_Decoded] = []
    invalid: list[tuple[RawMessage, str]] = []
    for message in messages:
        if message.value is None:
            invalid.append((message, "message: null value (a tombstone), not an event"))
            continue
        try:
            valid.append(_decoded(message, message.value))
        except ContractError as error:
            invalid.append((message, str(error)))

    fresh = _not_yet_stored(session, valid)
    by_partition: dict[tuple[str, int], list[ledger.NewEntry]] = defaultdict(list)
    for decoded in fresh:
        by_partition[(decoded.message.topic, decoded.message.partition)].append(decoded.entry)
    for (topic, partition), entries in by_partition.items():
        start = ledger.head(session, topic, partition)
        rows = ledger.chain(topic, partition, start, entries, now)
        session.execute(insert(LedgerEntry.__table__), rows)  # type: ignore[attr-defined]
    projections.project(session, [decoded.event for decoded in fresh])

    letters = _dead_letters_not_yet_kept(session, invalid, now)
    session.add_all(letters)
    for letter in letters:
        log.warning(
            "undecodable message kept as dead letter",
            topic=letter.topic,
            partition=letter.partition,
            offset=letter.kafka_offset,
            reason=letter.reason,
        )
    return BatchOutcome(
        stored=len(fresh), duplicates=len(valid) - len(fresh), dead_letters=len(letters)
    )


class _Decoded(NamedTuple):
    message: RawMessage
    event: Event
    entry: ledger.NewEntry


def _decoded(message: RawMessage, value: bytes) -> _Decoded:
    """The event and its ledger entry; ContractError when it has no canonical form."""
    event = decode(value)
    try:
        # Stored re-encoded, so canonical whatever spacing or defaults the producer used.
        document = event.model_dump(mode="json", by_alias=True)
        return _Decoded(message, event, ledger.new_entry(document, message.offset))
    except ValueError as error:  # a lone surrogate (\ud800)
        raise ContractError([("message", f"has no canonical JSON form: {error}")]) from None


def _not_yet_stored(session: Session, valid: list[_Decoded]) -> list[_Decoded]:
    ids = [decoded.event.event_id for decoded in valid]
    seen: set[uuid.UUID] = set()
    if ids:
        seen.update(
            session.exec(select(LedgerEntry.event_id).where(col(LedgerEntry.event_id).in_(ids)))
        )
    fresh = []
    for decoded in valid:
        if decoded.event.event_id not in seen:
            seen.add(decoded.event.event_id)
            fresh.append(decoded)
    return fresh


def _dead_letters_not_yet_kept(
    session: Session, invalid: list[tuple[RawMessage, str]], now: datetime
) -> list[DeadLetter]:
    if not invalid:
        return []
    kept = set(
        session.exec(
            select(DeadLetter.topic, DeadLetter.partition, DeadLetter.kafka_offset).where(
                col(DeadLetter.kafka_offset).in_([m.offset for m, _ in invalid])
            )
        )
    )
    letters = []
    for message, reason in invalid:
        position = (message.topic, message.partition, message.offset)
        if position in kept:
            continue
        kept.add(position)
        letters.append(
            DeadLetter(
                topic=message.topic,
                partition=message.partition,
                kafka_offset=message.offset,
                key=message.key,
                raw=message.value or b"",
                reason=reason,
                received_at=now,
            )
        )
    return letters

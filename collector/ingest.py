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

import structlog
from sqlmodel import Session, col, select

from agent.contract import ContractError, Event, decode, encode
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
    valid: list[tuple[RawMessage, Event]] = []
    invalid: list[tuple[RawMessage, str]] = []
    for message in messages:
        if message.value is None:
            invalid.append((message, "message: null value (a tombstone), not an event"))
            continue
        try:
            valid.append((message, decode(message.value)))
        except ContractError as error:
            invalid.append((message, str(error)))

    fresh = _not_yet_stored(session, valid)
    by_partition: dict[tuple[str, int], list[ledger.NewEntry]] = defaultdict(list)
    for message, event in fresh:
        # Re-encoding makes the stored bytes canonical whatever spacing the producer used.
        by_partition[(message.topic, message.partition)].append(
            ledger.NewEntry(event.event_id, event.type, message.offset, encode(event))
        )
    for (topic, partition), entries in by_partition.items():
        start = ledger.head(session, topic, partition)
        session.add_all(ledger.chain(topic, partition, start, entries, now))
    projections.project(session, [event for _, event in fresh])

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


def _not_yet_stored(
    session: Session, valid: list[tuple[RawMessage, Event]]
) -> list[tuple[RawMessage, Event]]:
    ids = [event.event_id for _, event in valid]
    seen: set[uuid.UUID] = set()
    if ids:
        seen.update(
            session.exec(select(LedgerEntry.event_id).where(col(LedgerEntry.event_id).in_(ids)))
        )
    fresh = []
    for message, event in valid:
        if event.event_id not in seen:
            seen.add(event.event_id)
            fresh.append((message, event))
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

"""Writes one batch of raw log messages into the store, inside the caller's transaction.

Valid events are appended to their partition's chain and projected. Two kinds of message go to
the dead-letter table instead, with their bytes and reason: one that does not decode, whatever
the decoder raised, and one that reuses a stored event's ``event_id`` with other content (a
forgery or a corruption; the original stays). Everything is idempotent: a copy of an event
already in the ledger (same ``event_id`` and digest) and a dead letter already kept (same topic,
partition and offset) are skipped, so a batch read twice is stored once.

Provenance: given the producer keys it trusts, an event of a type only Driftline's own components
write (``driftline.agent.contract.COMPONENT_EVENT_TYPES``) that no trusted key signed is a dead
letter too, as a forgery ("model_deployed: not signed by a trusted Driftline producer key
(forged?)"). A decision, review or feedback needs no signature. A signed event is stored as it came,
its ``provenance`` inside the bytes the chain covers.

An event dated further from the collector's clock than ``ClockBounds`` allows is stored all the
same (dropping it would lose a record), with a warning and its skew on the ledger entry.
Nothing the collector does depends on that caller-chosen time: retention counts from
``recorded_at``.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import astuple, dataclass
from datetime import UTC, datetime
from typing import NamedTuple

import structlog
from sqlmodel import Session, col, select

from driftline.agent.contract import ContractError, Event, decode
from driftline.agent.provenance import TrustedProducers
from driftline.collector.core.clock import DEFAULT_BOUNDS, ClockBounds
from driftline.collector.store import bulk, ledger, projections
from driftline.collector.store.models import DeadLetter, LedgerEntry

log = structlog.get_logger(__name__)

MAX_REASON_CHARS = 2_000
_LEDGER = LedgerEntry.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class RawMessage:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None  # None is a Kafka tombstone, which no event is


@dataclass(frozen=True)
class BatchOutcome:
    stored: int = 0
    duplicates: int = 0  # identical copies of stored events, absorbed
    dead_letters: int = 0  # kept by this batch, conflicts included
    conflicts: int = 0  # of those, events reusing a stored event's id with other content
    unproven: int = 0  # of those, components' events no trusted producer key signed
    refused: int = 0  # of those, events the database refused to store
    clock_skewed: int = 0  # stored events dated too far from the collector's clock

    def __add__(self, other: BatchOutcome) -> BatchOutcome:
        return BatchOutcome(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


def write_batch(
    session: Session,
    messages: list[RawMessage],
    bounds: ClockBounds = DEFAULT_BOUNDS,
    producers: TrustedProducers | None = None,
) -> BatchOutcome:
    """Stage a batch (in offset order per partition) for the caller to commit.

    ``producers``: the keys whose signatures a component's event needs. The consumer always
    gives them; None skips the check, for callers that made the events themselves (tests).
    """
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
    forged: list[tuple[RawMessage, str]] = []
    if producers is not None:
        valid, forged = _proven(valid, producers)
        invalid += forged

    fresh, duplicates, conflicting = _sorted_by_id(valid, _stored_with_ids(session, valid))
    skews = _skews(fresh, bounds, now)
    by_partition: dict[tuple[str, int], list[ledger.NewEntry]] = defaultdict(list)
    for decoded in fresh:
        by_partition[(decoded.message.topic, decoded.message.partition)].append(decoded.entry)
    for (topic, partition), entries in by_partition.items():
        start = ledger.head(session, topic, partition)
        bulk.insert_rows(
            session, _LEDGER, ledger.chain(topic, partition, start, entries, now, skews)
        )
    projections.project(session, [decoded.event for decoded in fresh])

    conflicts = _conflicts(session, conflicting)
    kept = _keep(session, invalid + conflicts, now)
    conflicted = {decoded.message for decoded in conflicting}
    unproven = {message for message, _ in forged}
    return BatchOutcome(
        stored=len(fresh),
        duplicates=duplicates,
        dead_letters=len(kept),
        conflicts=sum(message in conflicted for message in kept),
        clock_skewed=len(skews),
        unproven=sum(message in unproven for message in kept),
    )


def _proven(
    valid: list[_Decoded], producers: TrustedProducers
) -> tuple[list[_Decoded], list[tuple[RawMessage, str]]]:
    """The provenance step: the events that may be stored, and each event of a component's type
    that no trusted producer key signed, with why."""
    proven, forged = [], []
    for decoded in valid:
        refusal = producers.refusal(decoded.event)
        if refusal is None:
            proven.append(decoded)
        else:
            forged.append((decoded.message, refusal))
    return proven, forged


def keep_refused(session: Session, message: RawMessage, reason: str) -> BatchOutcome:
    """Stage a dead letter for a message whose event the database refused to store."""
    kept = _keep(session, [(message, f"database refused the event: {reason}")], datetime.now(UTC))
    return BatchOutcome(dead_letters=len(kept), refused=len(kept))


class _Decoded(NamedTuple):
    message: RawMessage
    event: Event
    entry: ledger.NewEntry


def _decoded(message: RawMessage, value: bytes) -> _Decoded:
    """The event and its ledger entry; ContractError when it does not decode, whatever the
    decoder raised, or has no canonical form."""
    try:
        event = decode(value)
        # Stored re-encoded, so canonical whatever spacing or defaults the producer used.
        document = event.model_dump(mode="json", by_alias=True)
        return _Decoded(message, event, ledger.new_entry(document, message.offset))
    except ContractError:
        raise
    except ValueError as error:  # a lone surrogate (\ud800)
        raise ContractError([("message", f"has no canonical JSON form: {error}")]) from None
    except Exception as error:
        # RecursionError from JSON nested thousands deep, or whatever else a message provokes:
        # raised, it would stop the collector, and stop it again at every start.
        reason = f"cannot be decoded: {type(error).__name__}: {error}"
        raise ContractError([("message", reason)]) from None


def _stored_with_ids(session: Session, valid: list[_Decoded]) -> dict[uuid.UUID, ledger.Stored]:
    """What the ledger already holds under these events' ids."""
    return ledger.stored(session, [decoded.event.event_id for decoded in valid])


def _sorted_by_id(
    valid: list[_Decoded], in_ledger: dict[uuid.UUID, ledger.Stored]
) -> tuple[list[_Decoded], int, list[_Decoded]]:
    """The events new to the ledger, how many are copies of one it has or the batch had
    earlier, and those that reuse such an event's id with other content (``ledger.is_copy``).
    """
    earlier: dict[uuid.UUID, ledger.NewEntry] = {}  # this batch's fresh entries, by id
    fresh: list[_Decoded] = []
    conflicting: list[_Decoded] = []
    duplicates = 0
    for decoded in valid:
        event_id, entry = decoded.event.event_id, decoded.entry
        stored = in_ledger.get(event_id)
        if stored is None:
            first = earlier.get(event_id)
            if first is None:
                earlier[event_id] = entry
                fresh.append(decoded)
                continue
            stored = ledger.Stored(first.event_bytes, first.event_digest, first.inputs_salt)
        if ledger.is_copy(stored, entry.event_bytes):
            duplicates += 1
        else:
            conflicting.append(decoded)
    return fresh, duplicates, conflicting


def _skews(fresh: list[_Decoded], bounds: ClockBounds, now: datetime) -> dict[uuid.UUID, float]:
    """The skew of each event dated out of bounds, by event id, each one logged."""
    skews = {}
    for decoded in fresh:
        skew = bounds.skew(decoded.event.occurred_at, now)
        if skew is not None:
            skews[decoded.event.event_id] = skew
            log.warning(
                "event dated far from the collector's clock; stored and flagged",
                event_id=str(decoded.event.event_id),
                occurred_at=decoded.event.occurred_at.isoformat(),
                skew_s=skew,
            )
    return skews


def _conflicts(session: Session, conflicting: list[_Decoded]) -> list[tuple[RawMessage, str]]:
    """Each conflicting message with a reason naming its id and where the original is: in the
    ledger before, or staged by this batch (the query sees both)."""
    if not conflicting:
        return []
    ids = [decoded.event.event_id for decoded in conflicting]
    originals = select(
        LedgerEntry.event_id, LedgerEntry.topic, LedgerEntry.partition, LedgerEntry.seq
    ).where(col(LedgerEntry.event_id).in_(ids))
    positions = {
        event_id: (topic, partition, seq)
        for event_id, topic, partition, seq in session.exec(originals)
    }
    reasons = []
    for decoded in conflicting:
        event_id = decoded.event.event_id
        topic, partition, seq = positions[event_id]
        reason = (
            f"event_id {event_id}: the ledger holds an event with this id and other content"
            f" (at {topic} partition {partition} seq {seq}), which it keeps"
        )
        reasons.append((decoded.message, reason))
    return reasons


def _keep(
    session: Session, reasons: list[tuple[RawMessage, str]], now: datetime
) -> list[RawMessage]:
    """Stage a dead letter for each message that has none yet, each one logged; return those."""
    if not reasons:
        return []
    already = set(
        session.exec(
            select(DeadLetter.topic, DeadLetter.partition, DeadLetter.kafka_offset).where(
                col(DeadLetter.kafka_offset).in_([m.offset for m, _ in reasons])
            )
        )
    )
    kept, letters = [], []
    for message, reason in reasons:
        position = (message.topic, message.partition, message.offset)
        if position in already:
            continue
        already.add(position)
        kept.append(message)
        letter = DeadLetter(
            topic=message.topic,
            partition=message.partition,
            kafka_offset=message.offset,
            key=message.key,
            raw=message.value or b"",
            reason=_storable(reason),
            received_at=now,
        )
        letters.append(letter)
        log.warning(
            "message kept as dead letter",
            topic=letter.topic,
            partition=letter.partition,
            offset=letter.kafka_offset,
            reason=letter.reason,
        )
    session.add_all(letters)
    return kept


def _storable(reason: str) -> str:
    """A reason every store can keep: no NUL (which PostgreSQL refuses in text, and which a
    reason may quote from the message), and bounded in length, as the raw bytes are kept."""
    reason = reason.replace("\x00", "\\x00")
    if len(reason) <= MAX_REASON_CHARS:
        return reason
    return reason[: MAX_REASON_CHARS - 1] + "…"

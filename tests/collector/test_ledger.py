"""The hash chain: an untouched ledger verifies; any alteration, removal or reordering is found
at the position where it happened."""

import copy
import hashlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, update
from sqlmodel import Session

from driftline.agent.contract import Event, encode
from driftline.collector.consume.ingest import RawMessage, write_batch
from driftline.collector.store import ledger
from driftline.collector.store.database import make_engine, migrate
from driftline.collector.store.models import LedgerEntry
from tests import events as tests_events
from tests.strategies import events

TOPIC = "events"


@contextmanager
def stored(batch: list[Event], partition: int = 0) -> Iterator[Session]:
    engine = make_engine("sqlite://")
    migrate(engine)
    with Session(engine) as session:
        messages = [
            RawMessage(TOPIC, partition, offset, event.kafka_key(), encode(event))
            for offset, event in enumerate(batch)
        ]
        write_batch(session, messages)
        session.commit()
        yield session
    engine.dispose()


def unique(batch: list[Event]) -> bool:
    return len({event.event_id for event in batch}) == len(batch)


event_lists = st.lists(events, min_size=2, max_size=12).filter(unique)


@settings(max_examples=30, deadline=None)
@given(event_lists)
def test_untouched_ledger_verifies(batch: list[Event]) -> None:
    with stored(batch) as session:
        result = ledger.verify(session)
    assert result.intact, result.breaks
    assert (result.chains, result.entries) == (1, len(batch))


@given(events)
def test_a_new_entry_has_the_canonical_bytes_and_digest(event: Event) -> None:
    """new_entry encodes once where canonical and digest_of encode twice: same result."""
    document = event.model_dump(mode="json", by_alias=True)
    entry = ledger.new_entry(event.model_dump(mode="json", by_alias=True), kafka_offset=7)
    assert entry.event_bytes == ledger.canonical(document)
    assert entry.event_digest == ledger.digest_of(document, salt=entry.inputs_salt)
    assert (entry.inputs_salt is not None) == (event.type == "decision")
    assert (entry.event_id, entry.event_type, entry.kafka_offset) == (event.event_id, event.type, 7)


def test_an_event_carrying_the_inputs_slot_still_gets_its_canonical_bytes() -> None:
    payload = {"inputs": {"income": 1}, "output": ledger._INPUTS_SLOT}  # as if it were guessed
    decision = tests_events.decision()
    document = decision.model_dump(mode="json", by_alias=True)
    document["payload"] |= payload
    entry = ledger.new_entry(copy.deepcopy(document), kafka_offset=0)
    assert entry.event_bytes == ledger.canonical(document)
    assert entry.event_digest == ledger.digest_of(document, salt=entry.inputs_salt)


def _entry(seq: int):
    return (LedgerEntry.topic == TOPIC) & (LedgerEntry.partition == 0) & (LedgerEntry.seq == seq)


def _row(session: Session, seq: int) -> LedgerEntry:
    row = session.get(LedgerEntry, (TOPIC, 0, seq))
    assert row is not None
    return row


def alter_bytes(session: Session, seq: int) -> None:
    row = _row(session, seq)
    forged = row.event_bytes.replace(b'"service":"', b'"service":"X', 1)
    session.execute(update(LedgerEntry).where(_entry(seq)).values(event_bytes=forged))


def alter_bytes_and_digest(session: Session, seq: int) -> None:
    row = _row(session, seq)
    forged = row.event_bytes.replace(b'"service":"', b'"service":"X', 1)
    values = {"event_bytes": forged, "event_digest": ledger.digest(forged, salt=row.inputs_salt)}
    session.execute(update(LedgerEntry).where(_entry(seq)).values(**values))


def alter_offset(session: Session, seq: int) -> None:
    row = _row(session, seq)
    session.execute(
        update(LedgerEntry).where(_entry(seq)).values(kafka_offset=row.kafka_offset + 1)
    )


def alter_recorded_at(session: Session, seq: int) -> None:
    row = _row(session, seq)
    later = row.recorded_at + timedelta(seconds=1)
    session.execute(update(LedgerEntry).where(_entry(seq)).values(recorded_at=later))


def flag_clock_skew(session: Session, seq: int) -> None:
    session.execute(update(LedgerEntry).where(_entry(seq)).values(clock_skew_s=-3_600.0))


def downgrade_format(session: Session, seq: int) -> None:
    """An entry passed off as one stored before salts, to drop what the link covers."""
    session.execute(update(LedgerEntry).where(_entry(seq)).values(entry_format=1))


def alter_event_id_column(session: Session, seq: int) -> None:
    session.execute(update(LedgerEntry).where(_entry(seq)).values(event_id=uuid.uuid4()))


def remove(session: Session, seq: int) -> None:
    session.execute(delete(LedgerEntry).where(_entry(seq)))


def swap_with_next(session: Session, seq: int) -> None:
    session.execute(update(LedgerEntry).where(_entry(seq)).values(seq=-1))
    session.execute(update(LedgerEntry).where(_entry(seq + 1)).values(seq=seq))
    session.execute(update(LedgerEntry).where(_entry(-1)).values(seq=seq + 1))


TAMPERINGS = {
    alter_bytes: "altered",
    alter_bytes_and_digest: "does not follow",
    alter_event_id_column: "event_id column",
    alter_offset: "does not follow",
    alter_recorded_at: "does not follow",
    flag_clock_skew: "does not follow",
    downgrade_format: "",
    remove: "missing",
    swap_with_next: "does not follow",
}


@settings(max_examples=60, deadline=None)
@given(event_lists, st.sampled_from(list(TAMPERINGS)), st.data())
def test_tampering_is_found_where_it_happened(batch: list[Event], tamper, data) -> None:
    # Removing the last entry is truncation, which only a signed checkpoint can reveal.
    position = data.draw(st.integers(0, len(batch) - 2))
    with stored(batch) as session:
        tamper(session, position)
        session.commit()
        result = ledger.verify(session)
    assert len(result.breaks) == 1
    found = result.breaks[0]
    assert found.seq == position
    assert TAMPERINGS[tamper] in found.problem


@settings(max_examples=20, deadline=None)
@given(event_lists, st.data())
def test_rewriting_an_entry_with_a_valid_hash_breaks_the_next_link(
    batch: list[Event], data
) -> None:
    position = data.draw(st.integers(0, len(batch) - 2))
    with stored(batch) as session:
        row = _row(session, position)
        previous = _row(session, position - 1).chain_hash if position else ledger.GENESIS
        forged = row.event_bytes.replace(b'"service":"', b'"service":"X', 1)
        digest = ledger.digest(forged, salt=row.inputs_salt)
        recorded = ledger.Recorded(row.kafka_offset, row.recorded_at, row.clock_skew_s)
        values = {
            "event_bytes": forged,
            "event_digest": digest,
            "chain_hash": ledger.link(previous, ledger.leaf(row.entry_format, digest, recorded)),
        }
        session.execute(update(LedgerEntry).where(_entry(position)).values(**values))
        session.commit()
        result = ledger.verify(session)
    assert [b.seq for b in result.breaks] == [position + 1]


@given(
    st.integers(0, 2**63 - 1),
    st.datetimes(timezones=st.timezones()),
    st.none() | st.floats(allow_nan=False, allow_infinity=False),
)
def test_an_entry_leaf_covers_the_canonical_form_of_what_was_recorded(
    offset: int, recorded_at: datetime, skew: float | None
) -> None:
    """The leaf writes its statement out by hand for speed: it is the canonical JSON."""
    recorded = ledger.Recorded(offset, recorded_at, skew)
    statement = ledger.canonical(
        {"clock_skew_s": skew, "kafka_offset": offset, "recorded_at": recorded_at.isoformat()}
    )
    expected = hashlib.sha256(ledger._LEAF_PREFIX + bytes(32) + statement).digest()
    assert ledger.leaf(ledger.FORMAT, bytes(32), recorded) == expected

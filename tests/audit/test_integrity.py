"""Tamper evidence with signed checkpoints: any change to any stored event, a deleted row, two
swapped rows or a truncated chain is found at its position; an untouched or erased store
verifies clean; a proof of one event holds offline and fails when anything in it changes."""

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, update
from sqlmodel import Session, SQLModel, col

from driftline.agent.contract import DecisionPayload, Event, encode
from driftline.collector.audit import checkpoints, integrity, proofs
from driftline.collector.audit.erasure import erase_subject
from driftline.collector.audit.integrity import KeyRing
from driftline.collector.consume.ingest import RawMessage, write_batch
from driftline.collector.store import ledger
from driftline.collector.store.database import make_engine
from driftline.collector.store.models import Decision, LedgerCheckpoint, LedgerEntry
from tests import events as make
from tests.strategies import events

TOPIC = "events"
KEYS = KeyRing.of(Ed25519PrivateKey.generate())
PUBLIC_PEM = checkpoints.public_pem(KEYS.signing.public_key())
NOW = datetime(2026, 11, 1, tzinfo=UTC)


@contextmanager
def signed(batch: list[Event]) -> Iterator[Session]:
    """The batch stored on one chain, with a checkpoint of the chain's head."""
    engine = make_engine("sqlite://")
    SQLModel.metadata.create_all(engine)  # the migrations have their own test; this is faster
    with Session(engine) as session:
        write_batch(
            session,
            [RawMessage(TOPIC, 0, i, e.kafka_key(), encode(e)) for i, e in enumerate(batch)],
        )
        checkpoints.sign_heads(session, KEYS.signing, NOW)
        session.commit()
        yield session
    engine.dispose()


def unique(batch: list[Event]) -> bool:
    return len({event.event_id for event in batch}) == len(batch)


event_lists = st.lists(events, min_size=2, max_size=10).filter(unique)


def _at(seq: int) -> Any:
    return (LedgerEntry.topic == TOPIC) & (LedgerEntry.partition == 0) & (LedgerEntry.seq == seq)


def _row(session: Session, seq: int) -> LedgerEntry:
    row = session.get(LedgerEntry, (TOPIC, 0, seq))
    assert row is not None
    return row


def _leaves(document: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(document, dict) and document:
        for key, value in document.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(document, list) and document:
        for index, value in enumerate(document):
            yield from _leaves(value, (*path, index))
    else:
        yield path


def _changed(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return not value
    if isinstance(value, int | float):
        return value + 1 if value + 1 != value else -value
    if isinstance(value, str):
        return value + "x"
    return "x"  # an empty object or list


def alter_a_field(session: Session, seq: int, data: st.DataObject) -> None:
    event = json.loads(_row(session, seq).event_bytes)
    path = data.draw(st.sampled_from(list(_leaves(event))), label="field")
    target = event
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = _changed(target[path[-1]])
    forged = json.dumps(event, sort_keys=True, separators=(",", ":")).encode()
    session.execute(update(LedgerEntry).where(_at(seq)).values(event_bytes=forged))


def delete_row(session: Session, seq: int, data: st.DataObject) -> None:
    session.execute(delete(LedgerEntry).where(_at(seq)))


def swap_with_a_later_row(session: Session, seq: int, data: st.DataObject) -> None:
    last = session.get(LedgerCheckpoint, _checkpoint_id(session)).seq  # type: ignore[union-attr]
    other = data.draw(st.integers(seq + 1, last), label="other")
    session.execute(update(LedgerEntry).where(_at(seq)).values(seq=-1))
    session.execute(update(LedgerEntry).where(_at(other)).values(seq=seq))
    session.execute(update(LedgerEntry).where(_at(-1)).values(seq=other))


def truncate(session: Session, seq: int, data: st.DataObject) -> None:
    session.execute(delete(LedgerEntry).where(LedgerEntry.seq >= seq))


def mark_erased(session: Session, seq: int, data: st.DataObject) -> None:
    session.execute(update(LedgerEntry).where(_at(seq)).values(erased_at=NOW))


def _checkpoint_id(session: Session) -> Any:
    return checkpoints.all_checkpoints(session)[0].id


TAMPERINGS: list[Callable[[Session, int, st.DataObject], None]] = [
    alter_a_field,
    delete_row,
    swap_with_a_later_row,
    truncate,
    mark_erased,
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_lists, st.sampled_from(TAMPERINGS), st.data())
def test_any_tampering_is_found_at_its_position(batch: list[Event], tamper, data) -> None:
    last = len(batch) - 1
    position = data.draw(st.integers(0, last - 1 if tamper is swap_with_a_later_row else last))
    with signed(batch) as session:
        tamper(session, position, data)
        session.commit()
        report = integrity.verify(session, KEYS.trusted)
    assert [(b.topic, b.partition, b.seq) for b in report.breaks] == [(TOPIC, 0, position)]


@settings(max_examples=40, deadline=None)
@given(event_lists)
def test_an_untouched_store_verifies_clean(batch: list[Event]) -> None:
    with signed(batch) as session:
        report = integrity.verify(session, KEYS.trusted)
    assert report.intact, report.breaks
    assert (report.verification.entries, report.checkpoints) == (len(batch), 1)


@settings(max_examples=30, deadline=None)
@given(event_lists, st.data())
def test_a_chain_rewritten_with_valid_hashes_differs_from_its_checkpoint(
    batch: list[Event], data: st.DataObject
) -> None:
    """Someone with write access recomputes every hash after a change: the links hold, but
    the head no longer matches what was signed."""
    position = data.draw(st.integers(0, len(batch) - 1))
    with signed(batch) as session:
        previous = _row(session, position - 1).chain_hash if position else ledger.GENESIS
        for seq in range(position, len(batch)):
            row = _row(session, seq)
            event_bytes = row.event_bytes.replace(b'"service":"', b'"service":"X', 1)
            digest = ledger.digest(event_bytes, salt=row.inputs_salt)
            recorded = ledger.Recorded(row.kafka_offset, row.recorded_at, row.clock_skew_s)
            previous = ledger.link(previous, ledger.leaf(row.entry_format, digest, recorded))
            session.execute(
                update(LedgerEntry)
                .where(_at(seq))
                .values(event_bytes=event_bytes, event_digest=digest, chain_hash=previous)
            )
        session.commit()
        assert ledger.verify(session).intact  # the chain alone cannot tell
        report = integrity.verify(session, KEYS.trusted)
    (found,) = report.breaks
    assert found.seq == len(batch) - 1 and "signed checkpoint" in found.problem


def test_truncation_hidden_by_deleting_checkpoints_is_found_by_a_copy_kept_elsewhere() -> None:
    batch: list[Event] = [make.decision() for _ in range(6)]
    with signed(batch) as session:
        copied = [
            checkpoints.from_document(checkpoints.to_document(c))
            for c in checkpoints.all_checkpoints(session)
        ]
        session.execute(delete(LedgerEntry).where(LedgerEntry.seq >= 4))
        session.execute(delete(LedgerCheckpoint))
        session.commit()
        rowless = integrity.verify(session, KEYS.trusted)  # the served rows still show it
        assert {t.problem for t in rowless.rows.tampering} == {
            "has no ledger entry (forged, or its entry was removed)"
        }
        gone = [event.decision_id for event in batch[4:]]  # type: ignore[attr-defined]
        session.execute(delete(Decision).where(col(Decision.decision_id).in_(gone)))
        session.commit()
        assert integrity.verify(session, KEYS.trusted).intact  # nothing left to compare with
        report = integrity.verify(session, KEYS.trusted, copied)
    (found,) = report.breaks
    assert found.seq == 4 and "truncated" in found.problem


def test_a_forged_checkpoint_is_reported() -> None:
    with signed([make.decision() for _ in range(3)]) as session:
        session.execute(update(LedgerCheckpoint).values(chain_hash=bytes(32)))
        session.commit()
        report = integrity.verify(session, KEYS.trusted)
        stranger = KeyRing.of(Ed25519PrivateKey.generate())
        unknown = integrity.verify(session, stranger.trusted)
    assert "invalid signature" in report.breaks[0].problem
    assert "unknown key" in unknown.breaks[0].problem


def _decision_about(subject: str) -> Event:
    return make.decision(
        payload=DecisionPayload(
            inputs={"income": 1, "email": f"{subject}@example.org"},
            output="approve",
            confidence=0.9,
            latency_ms=1.0,
            automated=True,
            subject_ref=subject,
        )
    )


def test_an_erased_subject_still_verifies_and_its_proof_still_holds() -> None:
    batch = [_decision_about("s-1"), _decision_about("s-2"), _decision_about("s-1")]
    with signed(batch) as session:
        outcome = erase_subject(
            session,
            subject="s-1",
            reason="GDPR art. 17",
            requested_by="dpo",
            now=NOW,
            key=KEYS.signing,
        )
        session.commit()
        report = integrity.verify(session, KEYS.trusted)
        proof = proofs.prove_decision(session, batch[0].decision_id, KEYS.trusted)
    assert outcome.erased == 2 and report.intact and report.verification.erased == 2
    assert "s-1@example.org" not in proof["entry"]["event"] and proof["entry"]["erased"]
    assert proofs.check_proof(proof, KEYS.signing.public_key()) == []


@settings(max_examples=30, deadline=None)
@given(event_lists, st.data())
def test_a_proof_holds_offline_and_fails_when_anything_in_it_changes(
    batch: list[Event], data: st.DataObject
) -> None:
    seq = data.draw(st.integers(0, len(batch) - 1))
    with signed(batch) as session:
        entry = _row(session, seq)
        checkpoint = checkpoints.covering(session, TOPIC, 0, seq)
        assert checkpoint is not None
        proof = proofs.build_proof(session, entry, checkpoint, PUBLIC_PEM)
    public_key = KEYS.signing.public_key()
    assert proofs.check_proof(proof, public_key) == []

    forged = json.loads(json.dumps(proof))
    part = data.draw(st.sampled_from(["event", "previous_hash", "following", "checkpoint"]))
    if part == "event":
        forged["entry"]["event"] = forged["entry"]["event"].replace('"type"', '"type" ', 1)
        forged["entry"]["event"] = forged["entry"]["event"].replace('"service":"', '"service":"X')
    elif part == "previous_hash":
        forged["previous_hash"] = "00" * 31 + "01"
    elif part == "following":
        forged["following_leaves"] = forged["following_leaves"] + ["00" * 32]
    else:
        forged["checkpoint"]["seq"] += 1
    assert proofs.check_proof(forged, public_key) != []
    assert proofs.check_proof(proof, Ed25519PrivateKey.generate().public_key()) != []

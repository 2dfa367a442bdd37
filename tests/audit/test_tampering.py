"""Hostile tests of what is served: a row, review or erasure mark altered in the database behind
the collector's back is found by `audit verify`, by the API's single-decision read and by the
page's badge; an erased value cannot be confirmed from anything stored."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, inspect, text, update
from sqlmodel import Session, col, select

from driftline.agent.contract import DecisionPayload, Event, decode, encode, new_event_id
from driftline.agent.provenance import ProducerKey, TrustedProducers
from driftline.collector.audit import checkpoints, integrity, proofs
from driftline.collector.audit.erasure import erase_subject
from driftline.collector.audit.integrity import KeyRing
from driftline.collector.audit.row_verification import check_decision
from driftline.collector.consume.ingest import RawMessage, write_batch
from driftline.collector.store import ledger
from driftline.collector.store.models import Decision, Erasure, Feedback, LedgerEntry, Review
from driftline.collector.store.projections import row_for
from driftline.collector.web.ui.views import verify_decision
from tests import events
from tests.api_client import api_client
from tests.audit.test_search_and_lineage import store
from tests.test_cli import driftline

NOW = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture
def keys(tmp_path: Path) -> KeyRing:
    key = Ed25519PrivateKey.generate()
    (tmp_path / "signing.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    # What verifies: the public half, where `audit keygen` puts it.
    checkpoints.write_public_key(tmp_path / "signing.pub.pem", key.public_key())
    return KeyRing.of(key)


def _about(subject: str, income: int) -> DecisionPayload:
    return DecisionPayload(
        inputs={"income": income, "postcode": "1011AB"},
        output="approve",
        confidence=0.9,
        latency_ms=3.0,
        automated=True,
        subject_ref=subject,
    )


@pytest.fixture
def trail(engine: Engine) -> Iterator[list[Event]]:
    """Three decisions, the first reviewed and given feedback, the last about subject s-9."""
    first = events.decision(payload=_about("s-1", 40_000))
    batch = [
        first,
        events.review(first.decision_id),
        events.feedback(first.decision_id),
        events.decision(payload=_about("s-2", 41_000)),
        events.decision(payload=_about("s-9", 52_817)),
    ]
    store(engine, batch)
    yield batch


def _cli_verify(database_url: str, tmp_path: Path) -> tuple[int, str]:
    result = driftline(
        "audit",
        "verify",
        env={
            "DRIFTLINE_DATABASE_URL": database_url,
            "DRIFTLINE_SIGNING_KEY_FILE": str(tmp_path / "signing.pem"),
        },
    )
    return result.returncode, result.stdout + result.stderr


def _alter_decision_output(session: Session, event: Any) -> None:
    session.execute(
        update(Decision).where(col(Decision.decision_id) == event.decision_id).values(output="deny")
    )


def _alter_review_action(session: Session, event: Any) -> None:
    session.execute(
        update(Review).where(col(Review.event_id) == event.event_id).values(action="approve")
    )


def _alter_feedback_reporter(session: Session, event: Any) -> None:
    session.execute(
        update(Feedback).where(col(Feedback.event_id) == event.event_id).values(reporter="x")
    )


ROW_TAMPERINGS = {
    "decisions": (_alter_decision_output, 0, "output differ"),
    "reviews": (_alter_review_action, 1, "action differ"),
    "feedback": (_alter_feedback_reporter, 2, "reporter differ"),
}


@pytest.mark.parametrize("table", sorted(ROW_TAMPERINGS))
def test_a_tampered_row_is_found_by_verify_and_by_the_single_decision_read(
    engine: Engine, database_url: str, trail: list[Event], keys: KeyRing, tmp_path: Path, table: str
) -> None:
    tamper, index, problem = ROW_TAMPERINGS[table]
    decision_id = trail[0].decision_id  # type: ignore[attr-defined]
    client = api_client(engine, role="auditor", keys=keys)
    assert client.get(f"/decisions/{decision_id}").json()["verified"] == {
        "intact": True,
        "tampering": [],
    }
    with Session(engine) as session:
        assert integrity.verify(session, keys.trusted).intact
        tamper(session, trail[index])
        session.commit()
        report = integrity.verify(session, keys.trusted)
        badge = verify_decision(session, decision_id=decision_id, keys=keys)
    assert report.breaks == []  # the ledger itself is untouched: only the served row differs
    (found,) = report.rows.tampering
    assert found.table == table and problem in found.problem
    read = client.get(f"/decisions/{decision_id}").json()["verified"]
    assert not read["intact"] and table in read["tampering"][0], read
    assert badge.state == "failed" and table in badge.detail
    code, output = _cli_verify(database_url, tmp_path)
    assert code == 1 and f"tampered: {table}" in output and "BROKEN" in output, output


def test_a_row_without_an_entry_and_an_entry_without_its_row_are_found(
    engine: Engine, trail: list[Event], keys: KeyRing
) -> None:
    forged = events.decision(payload=_about("s-1", 1))
    with Session(engine) as session:
        session.add(Decision(**_row_of(forged)))
        session.execute(
            Review.__table__.delete().where(  # type: ignore[attr-defined]
                Review.__table__.c.event_id == trail[1].event_id  # type: ignore[attr-defined]
            )
        )
        session.commit()
        report = integrity.verify(session, keys.trusted)
    problems = sorted(str(t) for t in report.rows.tampering)
    assert len(problems) == 2, problems
    assert "has no ledger entry" in problems[0] and problems[0].startswith("decisions")
    assert "missing" in problems[1] and problems[1].startswith("reviews")


def _row_of(event: Event) -> dict[str, Any]:
    return row_for(event)[1]


def test_a_sample_check_finds_a_tampered_row_and_says_how_much_it_checked(
    engine: Engine, trail: list[Event], keys: KeyRing
) -> None:
    with Session(engine) as session:
        _alter_decision_output(session, trail[3])
        session.commit()
        report = integrity.verify(session, keys.trusted, sample=integrity.Sample(100, 30))
    assert report.verification is None and report.rows.complete
    assert report.rows.rows == len(trail)
    assert [t.table for t in report.rows.tampering] == ["decisions"]


def test_an_erasure_mark_written_by_hand_is_found(
    engine: Engine, database_url: str, trail: list[Event], keys: KeyRing, tmp_path: Path
) -> None:
    """The mark as erasure writes it, hash and all, but by someone without the key."""
    target = trail[3]
    with Session(engine) as session:
        entry = session.exec(
            select(LedgerEntry).where(LedgerEntry.event_id == target.event_id)
        ).one()
        event = json.loads(entry.event_bytes)
        hashed = ledger.inputs_hash(event["payload"]["inputs"], entry.inputs_salt)
        mark = {**hashed, "erased_at": NOW.isoformat(), "reason": "GDPR", "erasure_id": "x"}
        event["payload"]["inputs"] = {ledger.TOMBSTONE: mark}
        entry.event_bytes, entry.erased_at, entry.inputs_salt = ledger.canonical(event), NOW, None
        decision = session.get(Decision, target.decision_id)  # type: ignore[attr-defined]
        assert decision is not None
        decision.inputs = event["payload"]["inputs"]
        session.add_all([entry, decision])
        session.commit()
        report = integrity.verify(session, keys.trusted)
        read = api_client(engine, keys=keys).get(f"/decisions/{target.decision_id}")  # type: ignore[attr-defined]
        checkpoints.sign_heads(session, keys.signing, NOW)  # signed over the forgery, even
        session.commit()
        proof = proofs.prove_decision(session, target.decision_id, keys.trusted)  # type: ignore[attr-defined]
    offline = proofs.check_proof(proof, keys.signing.public_key())
    assert offline == [
        "the erasure: erasure mark is not signed by a trusted key (written by hand?)"
    ]
    (found,) = report.breaks
    assert "not signed by a trusted key" in found.problem and found.seq == entry.seq
    assert report.verification is not None and report.verification.breaks == []
    assert "not signed by a trusted key" in read.json()["verified"]["tampering"][0]
    code, output = _cli_verify(database_url, tmp_path)
    assert code == 1 and "not signed by a trusted key" in output, output


def test_a_signed_erasure_verifies_and_an_altered_erasure_record_does_not(
    engine: Engine, trail: list[Event], keys: KeyRing
) -> None:
    with Session(engine) as session:
        outcome = erase_subject(
            session, subject="s-9", reason="GDPR", requested_by="dpo", now=NOW, key=keys.signing
        )
        session.commit()
        assert outcome.erased == 1
        report = integrity.verify(session, keys.trusted)
        assert report.intact and report.marks is not None and report.marks.unsigned == 0
        session.execute(update(Erasure).values(requested_by="someone else"))
        session.commit()
        (found,) = integrity.verify(session, keys.trusted).breaks
    assert found.topic == "erasures" and "does not match its signature" in found.problem


def _everything_stored(engine: Engine) -> Iterator[bytes]:
    """Every value of every column of every table, as bytes."""
    with engine.connect() as connection:
        for table in inspect(connection).get_table_names():
            for row in connection.execute(text(f'SELECT * FROM "{table}"')):
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        yield bytes(value)
                    elif value is not None:
                        yield json.dumps(value, default=str).encode()


def test_an_erased_value_cannot_be_confirmed_from_anything_stored(
    engine: Engine, trail: list[Event], keys: KeyRing
) -> None:
    """A 5-digit income, the postcode known: before salts, 100,000 guesses at most confirmed it
    from the tombstone's plain SHA-256. Now the tombstone's hash is keyed with a salt that
    erasure destroyed, and no stored byte holds the salt, the value or a plain hash of it."""
    target = trail[4]
    with Session(engine) as session:
        entry = session.exec(
            select(LedgerEntry).where(LedgerEntry.event_id == target.event_id)
        ).one()
        salt = entry.inputs_salt
        assert salt is not None
        erase_subject(
            session, subject="s-9", reason="GDPR", requested_by="dpo", now=NOW, key=keys.signing
        )
        session.commit()
        assert integrity.verify(session, keys.trusted).intact
    stored = b"\n".join(_everything_stored(engine))
    assert salt not in stored and salt.hex().encode() not in stored
    assert b"52817" not in stored
    guesses = {
        hashlib.sha256(ledger.canonical({"income": n, "postcode": "1011AB"})).hexdigest()
        for n in range(10_000, 100_000)
    }
    assert not any(guess.encode() in stored for guess in guesses)


def _rewrite(session: Session, event: Event, changes: dict[str, Any]) -> None:
    """Rewrite an event's entry as someone with the code and write access would: new bytes,
    digest and salt, its link and every later link recomputed, and its row to match."""
    entry = session.exec(select(LedgerEntry).where(LedgerEntry.event_id == event.event_id)).one()
    document = json.loads(entry.event_bytes)
    document["payload"] |= changes
    rewritten = ledger.new_entry(document, entry.kafka_offset)
    previous = ledger.GENESIS
    if entry.seq:
        previous = session.get(
            LedgerEntry, (entry.topic, entry.partition, entry.seq - 1)
        ).chain_hash  # type: ignore[union-attr]
    entry.event_bytes, entry.event_digest = rewritten.event_bytes, rewritten.event_digest
    entry.inputs_salt = rewritten.inputs_salt
    later = session.exec(
        select(LedgerEntry)
        .where(LedgerEntry.topic == entry.topic, LedgerEntry.partition == entry.partition)
        .where(col(LedgerEntry.seq) >= entry.seq)
        .order_by(col(LedgerEntry.seq))
    ).all()
    for each in later:
        each.chain_hash = ledger.link(previous, ledger.entry_leaf(each))
        previous = each.chain_hash
        session.add(each)
    table, row = row_for(decode(entry.event_bytes))
    session.execute(update(table).where(col(table.event_id) == event.event_id).values(**row))  # type: ignore[attr-defined]
    session.commit()


def test_an_entry_rewritten_under_a_checkpoint_fails_the_single_read_the_badge_and_a_sample(
    engine: Engine, trail: list[Event], keys: KeyRing
) -> None:
    """Links recomputed from the entry to the head: each link holds on its own, but the chain no
    longer reaches the signed checkpoint, from any entry it covers."""
    decision_id = trail[0].decision_id  # type: ignore[attr-defined]
    with Session(engine) as session:
        checkpoints.sign_heads(session, keys.signing, NOW)
        session.commit()
        _rewrite(session, trail[1], {"action": "approve", "new_output": None})
        found = check_decision(session, decision_id, keys.trusted)
        badge = verify_decision(session, decision_id=decision_id, keys=keys)
        sample = integrity.verify(session, keys.trusted, sample=integrity.Sample(100, 30))
    assert {t.table for t in found} == {"decisions", "reviews", "feedback"}
    assert all("checkpoint" in t.problem for t in found), found
    assert badge.state == "failed" and "reviews" in badge.detail
    assert "reviews" in {t.table for t in sample.rows.tampering} and not sample.intact


NUMBER_TAMPERINGS = [
    ({"account": 2**53 + 1}, {"account": 9007199254740992.0}),  # lost to a float's rounding
    ({"n": 7}, {"n": 7.0}),  # an int made a float
    ({"flag": True}, {"flag": 1}),  # a bool made a number
    ({"n": 10**400}, {"n": 1.5}),  # once an OverflowError in the check itself
]


@pytest.mark.parametrize(("recorded", "altered"), NUMBER_TAMPERINGS)
def test_a_number_changed_in_type_or_beyond_a_floats_precision_is_found(
    engine: Engine, keys: KeyRing, recorded: dict[str, Any], altered: dict[str, Any]
) -> None:
    decision = events.decision(payload=_about("s-1", 1).model_copy(update={"inputs": recorded}))
    store(engine, [decision])
    with Session(engine) as session:
        assert integrity.verify(session, keys.trusted).intact
        session.execute(
            update(Decision)
            .where(col(Decision.decision_id) == decision.decision_id)
            .values(inputs=altered)
        )
        session.commit()
        (found,) = integrity.verify(session, keys.trusted).rows.tampering
    assert "inputs differ" in found.problem


def test_the_second_decision_under_one_id_served_instead_of_the_first_is_found(
    engine: Engine, keys: KeyRing
) -> None:
    first = events.decision(payload=_about("s-1", 1))
    second = first.model_copy(update={"event_id": new_event_id(), "payload": _about("s-1", 2)})
    store(engine, [first, second])
    with Session(engine) as session:
        assert integrity.verify(session, keys.trusted).intact  # the ledger keeps both
        served = row_for(second)[1]
        session.execute(
            update(Decision).where(col(Decision.decision_id) == first.decision_id).values(**served)
        )
        session.commit()
        (found,) = integrity.verify(session, keys.trusted).rows.tampering
    assert "first decision under its id, but a later one is served" in found.problem


def test_an_unsigned_erasure_record_dated_after_the_upgrade_is_a_break(
    engine: Engine, trail: list[Event], keys: KeyRing
) -> None:
    with Session(engine) as session:
        session.add(
            Erasure(id=uuid.uuid4(), subject_ref="s-1", reason="forged", requested_by="nobody",
                    at=datetime.now(UTC), decisions=1)
        )  # fmt: skip
        session.commit()
        (found,) = integrity.verify(session, keys.trusted).breaks
    assert found.topic == "erasures" and "unsigned" in found.problem


def test_a_component_event_written_into_the_ledger_unsigned_is_found_with_the_producer_keys(
    engine: Engine, trail: list[Event], keys: KeyRing
) -> None:
    """Appended past the last checkpoint with the ledger's own code, as INSERTs would: links
    hold, but no trusted producer signed the go-live verdict."""
    producer = ProducerKey.generate()
    forged = events.readiness()
    with Session(engine) as session:
        messages = [RawMessage("events", 0, 99, None, encode(forged))]
        write_batch(session, messages)  # no provenance check: as if written behind its back
        session.commit()
        trusting = TrustedProducers([producer.public_key])
        assert integrity.verify(session, keys.trusted).intact  # without the producer keys
        (found,) = integrity.verify(session, keys.trusted, producers=trusting).breaks
    assert "readiness_evaluated not signed by a trusted producer key" in found.problem


def test_a_sample_that_runs_out_of_time_is_not_intact(
    engine: Engine, trail: list[Event], keys: KeyRing
) -> None:
    with Session(engine) as session:
        report = integrity.verify(session, keys.trusted, sample=integrity.Sample(100, 1e-9))
    assert not report.rows.complete and not report.intact and not report.rows.tampering

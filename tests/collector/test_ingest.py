"""Writing batches: idempotent on event_id, dead letters kept once, read models projected.

And one bad message never holds up the others: what cannot be decoded, what the database
refuses and what forges a stored event's id each become a dead letter, while the rest of the
batch is stored in order; an event dated far from the collector's clock is stored and flagged.
"""

import json
import sqlite3
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, create_engine, exc, func
from sqlmodel import Session, col, select

from driftline.agent.contract import (
    AlertNotifiedEvent,
    AlertNotifiedPayload,
    DecisionPayload,
    Event,
    decode,
    encode,
    validate,
)
from driftline.collector.audit.erasure import erase_subject
from driftline.collector.consume import ingest
from driftline.collector.consume.ingest import RawMessage, write_batch
from driftline.collector.consume.isolation import refuses_the_data, store
from driftline.collector.store import ledger
from driftline.collector.store.models import (
    DeadLetter,
    Decision,
    Feedback,
    LedgerEntry,
    ModelDeployment,
    Review,
)
from tests import events


def _messages(batch: list[Event | bytes], partition: int = 0, start: int = 0) -> list[RawMessage]:
    return [
        RawMessage(
            "events", partition, offset, None, item if isinstance(item, bytes) else encode(item)
        )
        for offset, item in enumerate(batch, start)
    ]


def _count(session: Session, table: type) -> int:
    return session.exec(select(func.count()).select_from(table)).one()


def test_a_batch_read_twice_is_stored_once(engine: Engine) -> None:
    decision = events.decision()
    messages = _messages(
        [events.deployment(), decision, b"not json", events.review(decision.decision_id)]
    )
    with Session(engine) as session:
        first = write_batch(session, messages)
        session.commit()
        second = write_batch(session, messages)
        session.commit()
        assert (first.stored, first.duplicates, first.dead_letters) == (3, 0, 1)
        assert (second.stored, second.duplicates, second.dead_letters) == (0, 3, 0)
        assert _count(session, LedgerEntry) == 3
        assert _count(session, DeadLetter) == 1
        assert _count(session, Decision) == 1
        assert ledger.verify(session).intact


def test_the_same_event_twice_in_one_batch_is_stored_once(engine: Engine) -> None:
    decision = events.decision()
    with Session(engine) as session:
        outcome = write_batch(session, _messages([decision, decision]))
        session.commit()
        assert (outcome.stored, outcome.duplicates) == (1, 1)
        assert _count(session, LedgerEntry) == 1


def test_every_event_type_reaches_its_read_model(engine: Engine) -> None:
    decision = events.decision(trace_id="ab" * 16, span_id="cd" * 8)
    violated = decision.payload.model_copy(update={"contract_violations": ["income: minimum 0"]})
    decision = decision.model_copy(update={"payload": violated})
    batch: list[Event | bytes] = [
        events.deployment(),
        decision,
        events.review(decision.decision_id),
        events.feedback(decision.decision_id),
    ]
    with Session(engine) as session:
        write_batch(session, _messages(batch))
        session.commit()
        stored = session.get(Decision, decision.decision_id)
        assert stored is not None
        assert stored.inputs == {"income": 52_000, "region": "north"}
        assert stored.occurred_at == decision.occurred_at
        assert (stored.trace_id, stored.span_id) == ("ab" * 16, "cd" * 8)
        assert stored.contract_violations == ["income: minimum 0"]
        review = session.exec(select(Review)).one()
        assert (review.action, review.new_output) == ("override", "decline")
        assert session.exec(select(Feedback)).one().correct is False
        assert session.exec(select(ModelDeployment)).one().approved_by == "committee"


def test_a_second_decision_with_the_same_id_is_kept_in_the_ledger_only(engine: Engine) -> None:
    first = events.decision()
    second = events.decision(decision_id=first.decision_id)
    with Session(engine) as session:
        write_batch(session, _messages([first]))
        session.commit()
        write_batch(session, _messages([second]))
        session.commit()
        assert _count(session, LedgerEntry) == 2
        assert session.exec(select(Decision)).one().event_id == first.event_id


def test_each_partition_has_its_own_chain(engine: Engine) -> None:
    with Session(engine) as session:
        for partition in range(3):
            write_batch(session, _messages([events.decision(), events.decision()], partition))
        session.commit()
        result = ledger.verify(session)
        assert (result.chains, result.entries, result.intact) == (3, 6, True)
        seqs = session.exec(select(LedgerEntry.partition, LedgerEntry.seq)).all()
        assert sorted(seqs) == [(p, s) for p in range(3) for s in range(2)]


def test_stored_bytes_are_canonical_whatever_the_producer_sent(engine: Engine) -> None:
    decision = events.decision()
    loose = encode(decision).replace(b",", b", ")
    with Session(engine) as session:
        write_batch(session, _messages([loose]))
        session.commit()
        assert session.exec(select(LedgerEntry.event_bytes)).one() == encode(decision)


def test_an_event_without_a_canonical_form_is_a_dead_letter_not_a_crash(engine: Engine) -> None:
    """JSON reads 1e400 as infinity, which the contract refuses; a lone surrogate passes
    validation but cannot be encoded again. Each is a dead letter beside the valid events."""
    out_of_range = encode(events.decision()).replace(b'"income":52000', b'"income":1e400')
    surrogate = encode(events.decision()).replace(b'"region":"north"', b'"region":"\\ud800"')
    valid = events.decision()
    with Session(engine) as session:
        outcome = write_batch(session, _messages([out_of_range, surrogate, valid]))
        session.commit()
        assert (outcome.stored, outcome.dead_letters) == (1, 2)
        reasons = session.exec(select(DeadLetter.reason).order_by(DeadLetter.kafka_offset)).all()
        assert reasons[0].startswith("payload.inputs.income"), reasons
        assert "finite number" in reasons[0], reasons
        assert "no canonical JSON form" in reasons[1], reasons
        assert session.exec(select(Decision.decision_id)).one() == valid.decision_id


NOW = datetime.now(UTC)


def _older_contract(raw: bytes) -> Event:
    """A decoder with none of the contract's size, depth or NUL bounds, as older agents and
    hand-made messages are: the collector must not depend on the contract catching them."""
    return validate(json.loads(raw))


DECODERS = pytest.mark.parametrize(
    "decoder", [decode, _older_contract], ids=["contract", "older-contract"]
)


def _letters(session: Session) -> list[DeadLetter]:
    return list(session.exec(select(DeadLetter).order_by(col(DeadLetter.kafka_offset))))


def _chain_offsets(session: Session, partition: int) -> list[int]:
    """The Kafka offsets a partition's chain holds, in chain order."""
    return list(
        session.exec(
            select(LedgerEntry.kafka_offset)
            .where(LedgerEntry.partition == partition)
            .order_by(col(LedgerEntry.seq))
        )
    )


@DECODERS
def test_a_nul_character_never_holds_up_the_batch(
    engine: Engine, decoder: Callable[[bytes], Event], monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL keeps no NUL in text or JSONB (psycopg refuses one in a text column before
    sending it, the server one in JSON). Such a message is a dead letter there; SQLite stores
    it. Either way the events after it are stored."""
    monkeypatch.setattr(ingest, "decode", decoder)
    nul_in = [
        encode(events.decision()).replace(b'"north"', b'"no\\u0000rth"'),  # a JSON value
        encode(events.decision()).replace(b'"region"', b'"reg\\u0000ion"'),  # a JSON key
        encode(events.decision()).replace(b'"loan-desk"', b'"loan\\u0000desk"'),  # a column
    ]
    valid = [events.decision() for _ in range(4)]
    batch: list[Event | bytes] = [valid[0], nul_in[0], valid[1], nul_in[1], valid[2]]
    batch += [nul_in[2], valid[3]]
    outcome = store(engine, _messages(batch))
    with Session(engine) as session:
        stored = set(session.exec(select(LedgerEntry.event_id)))
        letters = _letters(session)
        assert ledger.verify(session).intact
    assert {event.event_id for event in valid} <= stored
    assert outcome.stored + outcome.dead_letters == len(batch)
    assert len(stored) + len(letters) == len(batch)
    if engine.dialect.name == "postgresql":
        assert [letter.kafka_offset for letter in letters] == [1, 3, 5]
        assert [letter.raw for letter in letters] == nul_in
        if decoder is _older_contract:
            assert all("database refused" in letter.reason for letter in letters), letters


@DECODERS
def test_json_nested_ten_thousand_deep_is_a_dead_letter_not_a_crash(
    engine: Engine, decoder: Callable[[bytes], Event], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest, "decode", decoder)
    deep = encode(events.decision()).replace(b'"north"', b"[" * 10_000 + b"]" * 10_000)
    assert len(deep) > 20_000
    valid = [events.decision(), events.decision()]
    outcome = store(engine, _messages([valid[0], deep, valid[1]]))
    assert (outcome.stored, outcome.dead_letters) == (2, 1)
    with Session(engine) as session:
        (letter,) = _letters(session)
        assert set(session.exec(select(LedgerEntry.event_id))) == {e.event_id for e in valid}
    assert (letter.kafka_offset, letter.raw) == (1, deep)
    assert letter.reason.startswith("message:"), letter.reason
    assert len(letter.reason) <= ingest.MAX_REASON_CHARS


def refuse_one(engine: Engine, event_id: uuid.UUID) -> None:
    """Make the database itself refuse one event: a trigger on the decisions table, which is
    written after the ledger in the same transaction."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql(
                "CREATE FUNCTION refuse_one() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                f" IF NEW.event_id = '{event_id}' THEN RAISE EXCEPTION 'refused by test trigger';"
                " END IF; RETURN NEW; END $$"
            )
            connection.exec_driver_sql(
                "CREATE TRIGGER refuse_one BEFORE INSERT ON decisions"
                " FOR EACH ROW EXECUTE FUNCTION refuse_one()"
            )
        else:  # SQLAlchemy keeps a UUID as 32 hex digits on SQLite
            connection.exec_driver_sql(
                "CREATE TRIGGER refuse_one BEFORE INSERT ON decisions"
                f" WHEN NEW.event_id = '{event_id.hex}'"
                " BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END"
            )


def test_an_event_the_database_refuses_is_found_by_bisection_and_the_rest_stored(
    engine: Engine,
) -> None:
    zero = [events.decision() for _ in range(7)]
    one = [events.decision() for _ in range(6)]
    refused = zero[4]
    refuse_one(engine, refused.event_id)
    messages = _messages(list(zero)) + _messages(list(one), partition=1)
    messages.sort(key=lambda m: m.offset)  # the partitions interleaved, as a poll returns them

    outcome = store(engine, messages)
    assert (outcome.stored, outcome.duplicates, outcome.dead_letters) == (12, 0, 1)
    again = store(engine, messages)  # read again after a crash: nothing is stored twice
    assert (again.stored, again.duplicates, again.dead_letters) == (0, 12, 0)
    with Session(engine) as session:
        (letter,) = _letters(session)
        assert ledger.verify(session).intact
        assert _chain_offsets(session, 0) == [0, 1, 2, 3, 5, 6]
        assert _chain_offsets(session, 1) == [0, 1, 2, 3, 4, 5]
        assert session.exec(select(func.count()).select_from(Decision)).one() == 12
        assert session.get(Decision, refused.decision_id) is None
    assert (letter.partition, letter.kafka_offset, letter.raw) == (0, 4, encode(refused))
    assert letter.reason.startswith("database refused the event: "), letter.reason
    assert "refused by test trigger" in letter.reason
    assert "\n" not in letter.reason and "\x00" not in letter.reason


def test_a_number_too_large_for_its_column_is_a_dead_letter(engine: Engine) -> None:
    """SQLite's driver refuses it with a Python OverflowError, PostgreSQL with a DataError."""
    payload = AlertNotifiedPayload(
        notification_id=uuid.uuid4(),
        receiver="team",
        integration="webhook[0]",
        group_key="{}",
        status="firing",
        fingerprints=[],
        attempts=2**70,
    )
    huge = AlertNotifiedEvent(service="router", model=events.MODEL, payload=payload)
    valid = events.decision()
    outcome = store(engine, _messages([huge, valid]))
    assert (outcome.stored, outcome.dead_letters) == (1, 1)
    with Session(engine) as session:
        (letter,) = _letters(session)
        assert session.exec(select(LedgerEntry.event_id)).one() == valid.event_id
    assert letter.reason.startswith("database refused the event: "), letter.reason


@pytest.mark.parametrize(
    ("error", "refused"),
    [
        (exc.DataError("INSERT", {}, psycopg.errors.UntranslatableCharacter()), True),
        (exc.DataError("INSERT", {}, psycopg.DataError("text cannot contain NUL")), True),
        (exc.IntegrityError("INSERT", {}, sqlite3.IntegrityError("refused by trigger")), True),
        (exc.ProgrammingError("INSERT", {}, psycopg.errors.RaiseException("refused")), True),
        (OverflowError("Python int too large to convert to SQLite INTEGER"), True),
        (exc.OperationalError("INSERT", {}, psycopg.errors.AdminShutdown()), False),
        (exc.OperationalError("INSERT", {}, psycopg.OperationalError("connection lost")), False),
        (exc.OperationalError("INSERT", {}, psycopg.errors.DiskFull()), False),
        (exc.OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked")), False),
        (exc.InterfaceError("INSERT", {}, psycopg.InterfaceError("connection is closed")), False),
        (exc.DataError("INSERT", {}, psycopg.DataError(), connection_invalidated=True), False),
        (exc.ProgrammingError("INSERT", {}, psycopg.errors.UndefinedTable()), False),
        (exc.ProgrammingError("INSERT", {}, psycopg.errors.InsufficientPrivilege()), False),
        (exc.InternalError("INSERT", {}, psycopg.errors.DataCorrupted()), False),
        (exc.TimeoutError("QueuePool limit reached"), False),
        (TypeError("a bug in the collector"), False),
    ],
)
def test_only_a_refusal_of_the_data_splits_a_batch(error: Exception, refused: bool) -> None:
    assert refuses_the_data(error) is refused


def test_a_database_that_is_down_is_not_split_but_left_to_the_consumer_to_retry() -> None:
    unreachable = create_engine("postgresql+psycopg://postgres@127.0.0.1:1/none")
    with pytest.raises(exc.OperationalError):
        store(unreachable, _messages([events.decision(), b"not json"]))
    unreachable.dispose()


def _about(subject: str, inputs: dict[str, int]) -> DecisionPayload:
    return DecisionPayload(
        inputs=inputs,
        output="approve",
        confidence=0.8,
        latency_ms=2.0,
        automated=True,
        subject_ref=subject,
    )


def test_a_forged_duplicate_is_a_dead_letter_naming_the_original(engine: Engine) -> None:
    original = events.decision(payload=_about("s-1", {"income": 1}))
    forged = original.model_copy(update={"payload": _about("s-1", {"income": 999_999})})
    store(engine, _messages([events.deployment(), original]))

    outcome = store(engine, _messages([forged, original], start=2))
    assert (outcome.stored, outcome.duplicates, outcome.dead_letters) == (0, 1, 1)
    assert outcome.conflicts == 1
    with Session(engine) as session:
        (letter,) = _letters(session)
        assert (letter.kafka_offset, letter.raw) == (2, encode(forged))
        assert str(original.event_id) in letter.reason
        assert "events partition 0 seq 1" in letter.reason, letter.reason
        assert session.exec(select(func.count()).select_from(LedgerEntry)).one() == 2
        assert session.exec(select(Decision.inputs)).one() == {"income": 1}
        key = Ed25519PrivateKey.generate()
        erase_subject(session, subject="s-1", reason="GDPR", requested_by="dpo", now=NOW, key=key)
        session.commit()
    # Erased, a copy is still a copy, and other content outside the inputs is still a conflict.
    # Other inputs can no longer be told from the erased ones (nothing stored can confirm what
    # they were): that copy is absorbed, and the erased inputs are not stored again.
    elsewhere = original.model_copy(update={"service": "elsewhere"})
    after_erasure = store(engine, _messages([original, forged, elsewhere], start=4))
    assert (after_erasure.stored, after_erasure.duplicates, after_erasure.conflicts) == (0, 2, 1)
    with Session(engine) as session:
        assert "$erased" in session.exec(select(Decision.inputs)).one()


def test_a_forged_duplicate_in_the_same_batch_is_a_dead_letter(engine: Engine) -> None:
    original = events.decision()
    forged = original.model_copy(update={"service": "elsewhere"})
    outcome = store(engine, _messages([original, original, forged]))
    assert (outcome.stored, outcome.duplicates, outcome.dead_letters) == (1, 1, 1)
    assert outcome.conflicts == 1
    with Session(engine) as session:
        (letter,) = _letters(session)
        assert session.exec(select(Decision.service)).one() == "loan-desk"
    assert letter.kafka_offset == 2
    assert f"{original.event_id}" in letter.reason
    assert "events partition 0 seq 0" in letter.reason, letter.reason


def test_an_event_dated_far_from_the_collectors_clock_is_stored_and_flagged(
    engine: Engine,
) -> None:
    """Events spooled through an outage of days are not flagged; the far past and the future
    are, and stored all the same with the time they claim."""
    dated = {
        "spooled 3 days": NOW - timedelta(days=3),
        "a second ahead": NOW + timedelta(seconds=1),
        "8 days back": NOW - timedelta(days=8),
        "year 2999": datetime(2999, 1, 1, tzinfo=UTC),
        "year 0001": datetime(1, 1, 1, tzinfo=UTC),
    }
    batch = {label: events.decision(occurred_at=at) for label, at in dated.items()}
    outcome = store(engine, _messages(list(batch.values())))
    assert (outcome.stored, outcome.clock_skewed) == (5, 3)
    with Session(engine) as session:
        skew = dict(session.exec(select(LedgerEntry.event_id, LedgerEntry.clock_skew_s)).all())
        occurred = dict(session.exec(select(Decision.event_id, Decision.occurred_at)).all())
        assert ledger.verify(session).intact
    flagged = {label for label, event in batch.items() if skew[event.event_id] is not None}
    assert flagged == {"8 days back", "year 2999", "year 0001"}
    assert skew[batch["year 2999"].event_id] > 0 > skew[batch["year 0001"].event_id]
    assert all(occurred[event.event_id] == dated[label] for label, event in batch.items())

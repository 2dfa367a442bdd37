"""Writing batches: idempotent on event_id, dead letters kept once, read models projected."""

from sqlalchemy import Engine, func
from sqlmodel import Session, select

from agent.contract import Event, encode
from collector import ledger
from collector.ingest import RawMessage, write_batch
from collector.models import DeadLetter, Decision, Feedback, LedgerEntry, ModelDeployment, Review
from tests import events


def _messages(batch: list[Event | bytes], partition: int = 0) -> list[RawMessage]:
    return [
        RawMessage(
            "events", partition, offset, None, item if isinstance(item, bytes) else encode(item)
        )
        for offset, item in enumerate(batch)
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

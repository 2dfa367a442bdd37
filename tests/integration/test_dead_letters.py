"""Messages that are not events land in the dead-letter table with their bytes and reason;
every valid event around them is stored and consumption goes on."""

import json
from collections.abc import Callable

from kafka import KafkaProducer
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from driftline.agent.contract import encode
from driftline.collector.runtime.broker import EmbeddedBroker
from driftline.collector.store import ledger
from driftline.collector.store.models import DeadLetter, LedgerEntry
from tests import events
from tests.collector.test_ingest import refuse_one
from tests.waiting import wait_for


def test_bad_messages_become_dead_letters_and_good_ones_around_them_are_stored(
    broker: EmbeddedBroker, topic: str, engine: Engine, run_collector: Callable[[], None]
) -> None:
    valid = [events.decision() for _ in range(6)]
    future_version = json.loads(encode(events.decision()))
    future_version["schema"] = 99
    bad: list[tuple[bytes | None, str]] = [
        (b"\x8f\x00 garbage \xff", "not UTF-8"),
        (encode(events.decision())[:57], "not valid JSON"),
        (json.dumps(future_version).encode(), "unsupported version 99"),
        (b"", "not valid JSON"),
        (None, "tombstone"),
        (b'{"schema": 1, "type": "decision"}', "Field required"),
    ]
    stream: list[bytes | None] = []
    for good, (raw, _) in zip(valid, bad, strict=True):
        stream += [encode(good), raw]

    producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, enable_idempotence=True)
    sent = [
        producer.send(topic, key=b"k", value=raw, partition=1).get(timeout=10) for raw in stream
    ]
    producer.close()
    run_collector()

    def counts() -> tuple[int, int]:
        with Session(engine) as session:
            return (
                session.exec(select(func.count()).select_from(LedgerEntry)).one(),
                session.exec(select(func.count()).select_from(DeadLetter)).one(),
            )

    wait_for(counts, lambda c: c == (6, 6), what="6 events and 6 dead letters")

    with Session(engine) as session:
        letters = session.exec(select(DeadLetter).order_by(col(DeadLetter.kafka_offset))).all()
        stored_ids = set(session.exec(select(LedgerEntry.event_id)))
        assert ledger.verify(session).intact
    assert stored_ids == {event.event_id for event in valid}
    bad_offsets = [metadata.offset for metadata in sent[1::2]]
    assert [letter.kafka_offset for letter in letters] == bad_offsets
    for letter, (raw, reason) in zip(letters, bad, strict=True):
        assert letter.raw == (raw or b"")
        assert letter.key == b"k"
        assert reason in letter.reason, letter.reason
        assert (letter.topic, letter.partition) == (topic, 1)


def test_a_poison_message_no_longer_stalls_the_consumer(
    broker: EmbeddedBroker, topic: str, engine: Engine, run_collector: Callable[[], None]
) -> None:
    """An event the database refuses used to be rewound and read again forever, and JSON
    nested 10,000 deep stopped the collector at every start: nothing after either was stored.
    A NUL character is refused by PostgreSQL (SQLite keeps it)."""
    before, after = [events.decision() for _ in range(3)], [events.decision() for _ in range(3)]
    refused = events.decision()
    refuse_one(engine, refused.event_id)
    nul = encode(events.decision()).replace(b'"north"', b'"no\\u0000rth"')
    deep = encode(events.decision()).replace(b'"north"', b"[" * 10_000 + b"]" * 10_000)
    stream = [encode(e) for e in before] + [encode(refused), nul, deep]
    stream += [encode(e) for e in after]

    producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, enable_idempotence=True)
    offsets = [
        producer.send(topic, value=raw, partition=2).get(timeout=10).offset for raw in stream
    ]
    producer.close()
    run_collector()

    def accounted() -> tuple[set[object], list[int]]:
        with Session(engine) as session:
            stored = set(session.exec(select(LedgerEntry.event_id)))
            letters = session.exec(select(DeadLetter.kafka_offset)).all()
            return stored, sorted(letters)

    wanted = {event.event_id for event in before + after}
    stored, letters = wait_for(
        accounted,
        lambda found: wanted <= found[0] and len(found[0]) + len(found[1]) == len(stream),
        what="every message stored or kept as a dead letter",
    )
    assert refused.event_id not in stored
    refused_at, nul_at, deep_at = offsets[3:6]
    assert set(letters) - {nul_at} == {refused_at, deep_at}
    if engine.dialect.name == "postgresql":
        assert nul_at in letters
    with Session(engine) as session:
        assert ledger.verify(session).intact

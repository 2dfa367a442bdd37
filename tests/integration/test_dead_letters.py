"""Messages that are not events land in the dead-letter table with their bytes and reason;
every valid event around them is stored and consumption goes on."""

import json
from collections.abc import Callable

from kafka import KafkaProducer
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from agent.contract import encode
from collector import ledger
from collector.broker import EmbeddedBroker
from collector.models import DeadLetter, LedgerEntry
from tests import events
from tests.waiting import wait_for


def test_bad_messages_become_dead_letters_and_good_ones_around_them_are_stored(
    broker: EmbeddedBroker, topic: str, engine: Engine, run_collector: Callable[[], None]
) -> None:
    valid = [events.decision() for _ in range(6)]
    future_version = json.loads(encode(events.decision()))
    future_version["schema"] = 2
    bad: list[tuple[bytes | None, str]] = [
        (b"\x8f\x00 garbage \xff", "not UTF-8"),
        (encode(events.decision())[:57], "not valid JSON"),
        (json.dumps(future_version).encode(), "unsupported version 2"),
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

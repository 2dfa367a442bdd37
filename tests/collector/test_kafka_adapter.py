"""The Kafka adapter (librdkafka) on the embedded broker: partitions shared across a consumer
group and handed over when a member joins; a batch whose partition was revoked before its commit
leaves the new owner's position alone, and every event is stored exactly once; a commit Kafka
refuses is an error the caller sees, and the batch is read again; a router started while Kafka
is cut off waits for it instead of stopping."""

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from driftline.agent import Driftline
from driftline.collector.alerting.config import load_alerting
from driftline.collector.alerting.router import ROUTER_SERVICE, AlertRouter
from driftline.collector.consume import isolation
from driftline.collector.consume.kafka import Batch, GroupConsumer, KafkaUnavailable, ensure_topic
from driftline.collector.core.producer_keys import trusted_producers
from driftline.collector.core.settings import CollectorSettings
from driftline.collector.runtime.broker import EmbeddedBroker, free_port
from driftline.collector.store.database import make_engine, migrate
from driftline.collector.store.models import LedgerEntry
from tests.tcp_proxy import TcpProxy
from tests.waiting import wait_for

ALL = frozenset((0, 1, 2))


def member(broker: EmbeddedBroker, topic: str, **overrides: int) -> GroupConsumer:
    config = {"max_poll_interval_ms": 10_000, "session_timeout_ms": 6_000} | overrides
    consumer = GroupConsumer.connect(
        threading.Event(),
        bootstrap_servers=broker.bootstrap_servers,
        topic=topic,
        group_id=f"group-{topic}",
        client_id="test",
        offset_reset="earliest",
        **config,
    )
    assert consumer is not None
    return consumer


class Member(threading.Thread):
    """A consumer polling on a thread of its own, storing each batch (when given a store) and
    committing it, as the collector does."""

    def __init__(self, consumer: GroupConsumer, engine: Engine | None = None) -> None:
        super().__init__(daemon=True)
        self.consumer = consumer
        self._engine = engine
        self.read: list[tuple[int, int]] = []  # (partition, offset)
        self.halt = threading.Event()

    def owned(self) -> frozenset[int]:
        return frozenset(partition for _, partition in self.consumer.partitions)

    def run(self) -> None:
        try:
            while not self.halt.is_set():
                batch = self.consumer.poll(100, timeout_s=0.2)
                if self._engine is not None and batch.messages:
                    isolation.store(self._engine, batch.raw())
                self.read += [(m.partition(), m.offset()) for m in batch.messages]  # type: ignore[misc]
                self.consumer.commit(batch)
        finally:
            self.consumer.close()


@pytest.fixture
def members() -> Iterator[list[Member]]:
    started: list[Member] = []
    yield started
    for one in started:
        one.halt.set()
        one.join(timeout=15)


def record_decisions(broker: EmbeddedBroker, topic: str, count: int) -> None:
    with Driftline(
        service="s", kafka_bootstrap_servers=broker.bootstrap_servers, topic=topic
    ) as agent:
        for n in range(count):
            agent.record_decision(
                model="m", version="1", inputs={"n": n}, output=n, confidence=0.5, latency_ms=1
            )
        assert agent.flush(timeout_s=30).ok


def committed(broker: EmbeddedBroker, topic: str) -> dict[int, int]:
    """The group's committed offset per partition, read by a client outside the group."""
    reader = Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": f"group-{topic}"})
    try:
        offsets = reader.committed([TopicPartition(topic, p) for p in ALL], timeout=10)
        return {tp.partition: tp.offset for tp in offsets}
    finally:
        reader.close()


def end_offsets(broker: EmbeddedBroker, topic: str, count: int) -> dict[int, int]:
    """The offset after the last of the ``count`` messages on each partition, found by reading
    them (Tansu's ListOffsets answers "latest" with an older offset)."""
    reader = Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": "ends"})
    reader.assign([TopicPartition(topic, p, 0) for p in ALL])
    ends, read = dict.fromkeys(ALL, 0), 0
    try:
        while read < count:
            for message in reader.consume(100, timeout=1):
                if message.error() is None:
                    ends[message.partition()] = message.offset() + 1  # type: ignore[index, operator]
                    read += 1
        return ends
    finally:
        reader.close()


def stored(engine: Engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(LedgerEntry)).one()


def test_a_member_that_joins_takes_over_partitions_and_each_message_is_read_once(
    broker: EmbeddedBroker, topic: str, members: list[Member]
) -> None:
    record_decisions(broker, topic, 30)
    first = Member(member(broker, topic))
    members.append(first)
    first.start()
    wait_for(lambda: len(first.read), lambda n: n == 30, what="the first member to read all")
    assert first.owned() == ALL

    second = Member(member(broker, topic))
    members.append(second)
    second.start()
    owned = wait_for(
        lambda: (first.owned(), second.owned()),
        lambda o: bool(o[0]) and bool(o[1]) and o[0] | o[1] == ALL,
        what="the partitions shared by both members",
    )
    assert not owned[0] & owned[1]

    record_decisions(broker, topic, 30)
    wait_for(lambda: len(first.read) + len(second.read), lambda n: n >= 60, what="all 60 read")
    later = first.read[30:] + second.read
    assert len(later) == len(set(later)) == 30, "a message was read twice or not at all"
    assert {p for p, _ in second.read} <= owned[1]
    assert {p for p, _ in first.read[30:]} <= owned[0]


def test_a_batch_revoked_before_its_commit_leaves_the_new_owner_alone(
    broker: EmbeddedBroker, topic: str, engine: Engine, members: list[Member]
) -> None:
    record_decisions(broker, topic, 30)
    old_owner = member(broker, topic)
    in_flight = Batch([], {}, {}, {})
    while not in_flight.messages:
        in_flight = old_owner.poll(100, timeout_s=1)
    assert {p for _, p in in_flight.last} == ALL

    # Another member joins while the batch is in flight; the old owner's next polls serve the
    # rebalance, and what they hand it (its remaining partitions, from the start) it stores.
    new_owner = Member(member(broker, topic), engine)
    members.append(new_owner)
    new_owner.start()

    def poll_once() -> frozenset[int]:
        batch = old_owner.poll(100, timeout_s=0.2)
        if batch.messages:
            isolation.store(engine, batch.raw())
        old_owner.commit(batch)
        return frozenset(p for _, p in old_owner.partitions)

    kept = wait_for(
        poll_once,
        lambda mine: bool(mine) and mine != ALL and bool(new_owner.owned()),
        what="the rebalance",
    )
    record_decisions(broker, topic, 30)
    ends = end_offsets(broker, topic, 60)
    taken = ALL - kept
    wait_for(
        lambda: (poll_once(), committed(broker, topic))[1],
        lambda offsets: all(offsets[p] == ends[p] for p in ALL),
        what="both members to commit to the end",
    )

    isolation.store(engine, in_flight.raw())  # the old owner's transaction commits at last
    old_owner.commit(in_flight)  # must neither raise nor move the new owner back
    old_owner.close()

    after = committed(broker, topic)
    assert {p: after[p] for p in taken} == {p: ends[p] for p in taken}
    assert after == ends
    assert stored(engine) == 60, "every event stored exactly once"


def test_a_commit_kafka_refuses_is_raised_and_the_batch_is_read_again(
    broker: EmbeddedBroker, topic: str
) -> None:
    record_decisions(broker, topic, 12)
    consumer = member(broker, topic, max_poll_interval_ms=3_000, session_timeout_ms=3_000)
    try:
        batch = Batch([], {}, {}, {})
        while not batch.messages:
            batch = consumer.poll(100, timeout_s=1)
        time.sleep(4.5)  # the database is slower than max.poll.interval: the group moves on
        with pytest.raises(KafkaUnavailable, match="commit failed"):
            consumer.commit(batch)

        again: dict[tuple[str, int], int] = {}
        while not again.keys() >= batch.first.keys():
            for partition, offset in consumer.poll(100, timeout_s=1).first.items():
                again.setdefault(partition, offset)
        assert {p: again[p] for p in batch.first} == batch.first, "read again from its start"
    finally:
        consumer.close()


ALERTING = """\
route: {receiver: team, group_by: [model], group_wait: 0s, group_interval: 1s}
receivers:
  - name: team
    webhook_configs: [{url: "http://127.0.0.1:9/hook"}]
"""


def test_a_router_started_while_kafka_is_cut_off_waits_and_then_consumes(
    tmp_path: Path,
) -> None:
    broker_port = free_port()
    proxy = TcpProxy(broker_port)
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    migrate(engine)
    stop = threading.Event()
    with (
        EmbeddedBroker(port=broker_port, advertised_port=proxy.port) as broker,
        httpx.Client(timeout=5) as client,
    ):
        ensure_topic(broker.bootstrap_servers, "events", partitions=3)
        alerting = tmp_path / "alerting.yaml"
        alerting.write_text(ALERTING)
        with Driftline(
            service=ROUTER_SERVICE,
            kafka_bootstrap_servers=broker.bootstrap_servers,
            topic="events",
            spool_dir=tmp_path / "router-spool",
        ) as agent:
            router = AlertRouter(
                engine=engine,
                config=load_alerting(alerting),
                agent=agent,
                client=client,
                external_url="http://driftline.example",
                producers=trusted_producers(CollectorSettings()),
            )
            settings = CollectorSettings(topic="events", router_group="router")
            proxy.cut()
            thread = threading.Thread(
                target=router.run, args=(stop, settings, broker.bootstrap_servers), daemon=True
            )
            thread.start()
            try:
                time.sleep(8)  # a first attempt to reach Kafka times out, and another begins
                assert thread.is_alive(), "the router gave up while Kafka was away"
                assert not router.consuming.is_set()
                proxy.restore()
                assert router.consuming.wait(60), "the router never joined once Kafka was back"
            finally:
                stop.set()
                thread.join(timeout=30)
                proxy.close()
    engine.dispose()


def test_what_is_produced_while_a_latest_reading_group_is_away_is_read_when_it_returns(
    broker: EmbeddedBroker, topic: str
) -> None:
    # As the alert router reads: from the end, for a partition without a committed offset.
    def read_for(seconds: float, wanted: int) -> int:
        consumer = GroupConsumer.connect(
            threading.Event(), bootstrap_servers=broker.bootstrap_servers, topic=topic,
            group_id=f"group-{topic}", client_id="test", offset_reset="latest",
            max_poll_interval_ms=10_000, session_timeout_ms=6_000,
        )  # fmt: skip
        assert consumer is not None
        read, deadline = 0, time.monotonic() + seconds
        try:
            while time.monotonic() < deadline and (len(consumer.partitions) < 3 or read < wanted):
                batch = consumer.poll(100, timeout_s=0.2)
                read += len(batch.messages)
                consumer.commit(batch)
        finally:
            consumer.close()
        return read

    assert read_for(30, 0) == 0  # assigned every partition; no message, nothing of its own
    record_decisions(broker, topic, 30)  # while nobody of the group reads
    assert read_for(30, 30) == 30, "what was produced while the group was away was skipped"

"""The one Kafka client on Driftline's side of the log: librdkafka (confluent-kafka), for every
consumer group (the collector's, the alert router's) and for creating the topic.

- ``GroupConsumer.connect`` waits, with backoff, until the broker answers: a broker that is away
  at start (restarted during an outage) is waited for, never a reason to exit.
- ``poll`` hands back a ``Batch``: librdkafka's ``consume`` fetches and parses the records in C;
  the batch keeps librdkafka's messages as they are and notes each partition's offsets.
- ``commit(batch)`` commits synchronously, per partition, the offset after the batch's last
  message; ``rewind(batch)`` seeks each partition back to the batch's first offset. Both act
  only on the partitions this consumer has held without a break since it polled the batch: a
  partition revoked in between belongs to another consumer now, which reads on from the
  committed offset, and neither a commit nor a seek of ours may move it.
- Every failure of Kafka reaches callers as ``KafkaUnavailable``.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, cast

import structlog
from confluent_kafka import (
    OFFSET_INVALID,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from driftline.agent.publisher import EVENT_TYPE_HEADER, LIBRDKAFKA_LOG
from driftline.collector.consume.ingest import RawMessage

log = structlog.get_logger(__name__)

MAX_BACKOFF_S = 30.0
CONNECT_TIMEOUT_S = 5.0

Partition = tuple[str, int]


class KafkaUnavailable(Exception):
    """Kafka could not be reached, or refused what was asked of it."""


@dataclass(frozen=True)
class Batch:
    """Messages from one ``poll``, in offset order per partition."""

    messages: list[Message[Any, Any]]
    first: dict[Partition, int]  # per partition: the first offset in the batch
    last: dict[Partition, int]  # and the last
    terms: dict[Partition, int]  # and which of this consumer's holdings of it they came in

    def raw(self) -> list[RawMessage]:
        """The batch as ``ingest`` takes it."""
        return [
            RawMessage(m.topic(), m.partition(), m.offset(), m.key(), m.value())  # type: ignore[arg-type]
            for m in self.messages
        ]


def event_type(message: Message[Any, Any]) -> str | None:
    """The event type the agent put in the message's header; None from an older agent."""
    headers = message.headers()  # a list, from a consumer
    if isinstance(headers, list):
        for name, value in headers:
            if name == EVENT_TYPE_HEADER and isinstance(value, bytes):
                try:
                    return value.decode()
                except UnicodeDecodeError:  # not our agent's: read as if it had no header
                    return None
    return None


class GroupConsumer:
    """A member of a consumer group on one topic, committing only what it is told to."""

    def __init__(
        self,
        *,
        bootstrap_servers: str,
        topic: str,
        group_id: str,
        client_id: str,
        offset_reset: Literal["earliest", "latest"],
        max_poll_interval_ms: int,
        session_timeout_ms: int,
        security: dict[str, str] | None = None,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.group_id = group_id
        config = {
            "bootstrap.servers": bootstrap_servers,
            "group.id": group_id,
            "client.id": client_id,
            "enable.auto.commit": False,
            "auto.offset.reset": offset_reset,
            "max.poll.interval.ms": max_poll_interval_ms,
            "session.timeout.ms": session_timeout_ms,
            "heartbeat.interval.ms": max(100, session_timeout_ms // 3),
            "logger": LIBRDKAFKA_LOG,
        } | (security or {})
        try:
            self._consumer = Consumer(config)
        except KafkaException as error:  # a setting librdkafka refuses
            raise KafkaUnavailable(f"the Kafka client cannot be made: {error}") from None
        self._offset_reset = offset_reset
        self._terms = itertools.count(1)
        self._held: dict[Partition, int] = {}  # the partitions assigned, each with its term
        self._closed = False

    @classmethod
    def connect(
        cls, stop: threading.Event, wait: Callable[[], None] | None = None, **config: Any
    ) -> GroupConsumer | None:
        """A subscribed consumer once the broker answers; None if ``stop`` was set first.
        ``wait`` is called between attempts (a heartbeat, say)."""
        consumer = cls(**config)
        backoff_s = 0.5
        try:
            while not stop.is_set():
                try:
                    consumer._consumer.list_topics(timeout=CONNECT_TIMEOUT_S)
                except KafkaException as error:
                    log.error(
                        "cannot reach Kafka; trying again",
                        bootstrap_servers=consumer.bootstrap_servers,
                        group=consumer.group_id,
                        error=str(error.args[0]),
                        retry_in_s=backoff_s,
                    )
                    if wait is not None:
                        wait()
                    stop.wait(backoff_s)
                    backoff_s = min(backoff_s * 2, MAX_BACKOFF_S)
                    continue
                consumer._subscribe()
                return consumer
        except BaseException:  # ``wait`` failed (the router's database, say): no consumer left
            consumer.close()
            raise
        consumer.close()
        return None

    def _subscribe(self) -> None:
        self._consumer.subscribe(
            [self.topic], on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._revoked
        )

    @property
    def partitions(self) -> frozenset[Partition]:
        """The partitions assigned, each with its start fixed: from then on nothing produced
        on them is missed."""
        return frozenset(self._held.copy())  # a copy: other threads may look

    def lag(self) -> dict[Partition, int]:
        """Messages behind the end of each partition held, by what the consumer last heard of
        the end (no request to the broker); a partition whose end or position is not yet
        known is left out."""
        held = [TopicPartition(topic, partition) for topic, partition in self.partitions]
        if not held:
            return {}
        behind = {}
        for position in self._consumer.position(held):
            _low, high = self._consumer.get_watermark_offsets(position, cached=True)
            if high >= 0 and position.offset >= 0:
                behind[(position.topic, position.partition)] = max(0, high - position.offset)
        return behind

    def poll(self, max_messages: int, timeout_s: float) -> Batch:
        """Up to ``max_messages``, waiting up to ``timeout_s`` for the first."""
        try:
            polled = self._consumer.consume(num_messages=max_messages, timeout=timeout_s)
        except KafkaException as error:
            raise KafkaUnavailable(str(error.args[0])) from None
        messages = []
        first: dict[Partition, int] = {}
        last: dict[Partition, int] = {}
        for message in polled:
            failure = message.error()
            if failure is not None:
                self._report(failure)
                continue
            messages.append(message)
            # A message without an error always has all three.
            partition = cast(Partition, (message.topic(), message.partition()))
            offset = cast(int, message.offset())
            first.setdefault(partition, offset)
            last[partition] = offset
        terms = {partition: self._held.get(partition, 0) for partition in first}
        return Batch(messages, first, last, terms)

    def commit(self, batch: Batch) -> None:
        """Commit, and wait for, the offset after the batch's last message in each partition
        still held since the batch was polled. KafkaUnavailable if Kafka did not take it."""
        offsets = [
            TopicPartition(topic, partition, offset + 1)
            for (topic, partition), offset in self._still_held(batch, batch.last).items()
        ]
        if not offsets:
            return
        try:
            committed = self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as error:
            raise KafkaUnavailable(f"offset commit failed: {error.args[0]}") from None
        failed = [f"{tp.topic}[{tp.partition}]: {tp.error}" for tp in committed if tp.error]
        if failed:
            raise KafkaUnavailable(f"offset commit failed: {', '.join(failed)}")

    def rewind(self, batch: Batch) -> None:
        """Read the batch again from the next poll on, in the partitions still held."""
        for (topic, partition), offset in self._still_held(batch, batch.first).items():
            try:
                self._consumer.seek(TopicPartition(topic, partition, offset))
            except KafkaException as error:
                # Revoked while this seek was on its way: the new owner reads from the commit.
                log.info(
                    "partition no longer ours; not rewound",
                    topic=topic,
                    partition=partition,
                    error=str(error.args[0]),
                )

    def close(self) -> None:
        """Leave the group at once, committing nothing."""
        if not self._closed:
            self._closed = True
            self._consumer.close()

    def _still_held(self, batch: Batch, offsets: dict[Partition, int]) -> dict[Partition, int]:
        held = {p: o for p, o in offsets.items() if self._held.get(p) == batch.terms[p]}
        if len(held) < len(offsets):
            log.info(
                "partitions revoked since the batch was read; left to their new owner",
                partitions=sorted(f"{t}[{p}]" for t, p in offsets.keys() - held.keys()),
            )
        return held

    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self._offset_reset == "latest":
            started = self._start_at_end(consumer, partitions)
            consumer.assign(partitions)
            self._remember(consumer, started)
        for tp in partitions:
            self._held[(tp.topic, tp.partition)] = next(self._terms)
        log.info("partitions assigned", group=self.group_id, partitions=_names(partitions))

    def _start_at_end(
        self, consumer: Consumer, partitions: list[TopicPartition]
    ) -> list[TopicPartition]:
        """Fix where each partition without a committed offset starts: at its end as of this
        assignment, not whenever librdkafka's fetcher resolves "latest" later (an empty
        partition's position stays unknown until a message arrives): what is produced once the
        assignment is served is read. The partitions so started are returned."""
        started = []
        try:
            committed = consumer.committed(partitions, timeout=CONNECT_TIMEOUT_S)
            for tp, done in zip(partitions, committed, strict=True):
                if done.offset >= 0:
                    tp.offset = done.offset
                else:
                    tp.offset = consumer.get_watermark_offsets(tp, timeout=CONNECT_TIMEOUT_S)[1]
                    started.append(TopicPartition(tp.topic, tp.partition, tp.offset))
        except KafkaException as error:
            log.warning("start offsets not fixed; librdkafka resolves them", error=str(error))
            for tp in partitions:
                tp.offset = OFFSET_INVALID  # the committed offset, or else auto.offset.reset
            return []
        return started

    def _remember(self, consumer: Consumer, started: list[TopicPartition]) -> None:
        """Commit where the partitions without a committed offset start: a partition no
        message came to before a restart would otherwise start at its end again, past what
        was produced while nobody read it."""
        if not started:
            return
        try:
            consumer.commit(offsets=started, asynchronous=False)
        except KafkaException as error:  # read from the end again next time: logged
            log.warning("start offsets not committed", error=str(error.args[0]))

    def _revoked(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._held.pop((tp.topic, tp.partition), None)
        log.info("partitions revoked", group=self.group_id, partitions=_names(partitions))

    def _report(self, error: KafkaError) -> None:
        if error.fatal():
            raise KafkaUnavailable(str(error))
        # Transport errors and the like: librdkafka reconnects and retries on its own.
        log.warning("Kafka consumer error", group=self.group_id, error=str(error))


def _names(partitions: list[TopicPartition]) -> list[str]:
    return [f"{tp.topic}[{tp.partition}]" for tp in partitions]


def ensure_topic(
    bootstrap_servers: str,
    topic: str,
    partitions: int,
    security: dict[str, str] | None = None,
    timeout_s: float = 30.0,
) -> None:
    """Create ``topic`` unless it is there (the embedded stack and tests); KafkaUnavailable if
    Kafka does not answer within ``timeout_s``."""
    config: dict[str, str | int | float | bool] = {"bootstrap.servers": bootstrap_servers}
    config.update(security or {})
    admin = AdminClient(config, logger=LIBRDKAFKA_LOG)
    try:
        if topic in admin.list_topics(timeout=timeout_s).topics:
            return
        created = admin.create_topics(
            [NewTopic(topic, num_partitions=partitions, replication_factor=1)],
            operation_timeout=timeout_s,
            request_timeout=timeout_s,
        )
        created[topic].result()
    except KafkaException as error:
        if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:  # created meanwhile
            raise KafkaUnavailable(f"topic {topic} not created: {error.args[0]}") from None

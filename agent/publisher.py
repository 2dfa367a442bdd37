"""Sends encoded events to Kafka: ``publish(batch) -> PublishResult`` plus ``shutdown``.

The publisher decides only *where* events go. It never raises for a failed send: the result
says which events failed for now (the broker is away or slow: worth keeping and sending again)
and which Kafka refused for good (too large, an invalid record: sending again cannot help).

It uses librdkafka (confluent-kafka): batching, compression, checksums and the network run
in librdkafka's own threads without the GIL, so the service's threads keep it. kafka-python
does that work in Python, and cost the agent more than half of its throughput.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from driftline.agent.labels import EventLabels
from driftline.agent.logs import agent_logger

log = agent_logger(__name__)

# Past the delivery timeout, librdkafka reports every message it still holds as timed out;
# this much more is allowed for those reports to arrive before the batch is given up.
REPORT_GRACE_S = 2.0


# The Kafka header that names each event's type, so that a consumer interested in a few types
# (the alert router) skips the rest without decoding them.
EVENT_TYPE_HEADER = "driftline-event-type"


@dataclass(frozen=True)
class Outgoing:
    event_id: uuid.UUID
    key: bytes
    value: bytes
    event_type: str | None  # None only for an event spooled by an agent from before the header
    # Its service and model, for the counters; None when read back from the spool, which
    # keeps the event as it travels (``labels.of_wire`` reads them from it).
    labels: EventLabels | None = None

    def headers(self) -> list[tuple[str, str | bytes | None]] | None:
        return None if self.event_type is None else [(EVENT_TYPE_HEADER, self.event_type.encode())]


@dataclass(frozen=True)
class PublishResult:
    delivered: int
    failed: list[tuple[Outgoing, str]] = field(default_factory=list)
    spooled: int = 0  # not delivered yet, but safe on disk
    refused: list[tuple[Outgoing, str]] = field(default_factory=list)  # by Kafka, for good
    # The delivered events themselves, to count them by service and model; ``delivered`` of
    # them. A result that names fewer has the rest counted without labels.
    acknowledged: list[Outgoing] = field(default_factory=list)


# Errors about one message that no retry can cure. Everything else (time-outs, transport,
# leadership, authorisation) is about the broker or the cluster, and is retried.
PERMANENT_ERRORS = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.INVALID_MSG_SIZE,
        KafkaError.INVALID_MSG,
        KafkaError.INVALID_RECORD,
        KafkaError.RECORD_LIST_TOO_LARGE,
    }
)


def is_permanent(error: KafkaError) -> bool:
    return error.code() in PERMANENT_ERRORS


@dataclass(frozen=True)
class KafkaTarget:
    """Where the agent's producers send, and how long Kafka may take to acknowledge."""

    bootstrap_servers: str
    topic: str
    delivery_timeout_ms: int
    security: dict[str, str] = field(default_factory=dict)

    def producer_config(self) -> dict[str, Any]:
        """The agent's librdkafka producer: idempotent, acknowledged by every in-sync replica."""
        return {
            "bootstrap.servers": self.bootstrap_servers,
            "enable.idempotence": True,  # stated: keeps order and absorbs retries
            "acks": "all",
            "linger.ms": 5,
            "message.timeout.ms": self.delivery_timeout_ms,
            "request.timeout.ms": min(self.delivery_timeout_ms // 2, 30_000),
            # What librdkafka may hold unsent: an outage of a few seconds at a high rate fits,
            # and past it the agent spools instead of growing the service's memory.
            "queue.buffering.max.kbytes": 256 * 1024,
            # Not librdkafka's default (CRC32) but the Java client's, which kafka-python also
            # used: every key keeps the partition its earlier records landed on, so a review
            # recorded after an upgrade still follows its decision on one partition.
            "partitioner": "murmur2_random",
            "logger": LIBRDKAFKA_LOG,
            "log.connection.close": False,
        } | self.security

    def explain(self, outcome: KafkaError | str) -> str:
        """Why an event was not delivered, naming the settings that bear on it."""
        if isinstance(outcome, str):
            return outcome
        if outcome.code() == KafkaError._MSG_TIMED_OUT:
            return (
                f"not acknowledged by Kafka at {self.bootstrap_servers} "
                f"(DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS) within {self.delivery_timeout_ms} ms "
                "(DRIFTLINE_DELIVERY_TIMEOUT_MS)"
            )
        return f"Kafka refused the event: {outcome.str()}"


class Publisher(Protocol):
    def publish(self, batch: list[Outgoing]) -> PublishResult: ...

    def shutdown(self, timeout_s: float) -> None: ...


class KafkaPublisher:
    """An idempotent librdkafka producer. Creating it does not connect, so an unreachable
    broker at start-up delays delivery instead of breaking the service."""

    def __init__(self, target: KafkaTarget) -> None:
        self._target = target
        self._topic = target.topic
        self._delivery_timeout_ms = target.delivery_timeout_ms
        self._producer: Producer | None = None

    def publish(self, batch: list[Outgoing]) -> PublishResult:
        if not batch:
            return PublishResult(delivered=0)
        producer = self._connected()
        outcomes: dict[int, KafkaError | str | None] = {}  # position: None when delivered
        refused: dict[int, str] = {}
        deadline = time.monotonic() + self._delivery_timeout_ms / 1000 + REPORT_GRACE_S
        for position, item in enumerate(batch):
            report = functools.partial(_settle, outcomes, position)
            while position not in outcomes:
                try:
                    producer.produce(
                        self._topic,
                        item.value,
                        item.key,
                        headers=item.headers(),
                        on_delivery=report,
                    )
                    break
                except BufferError:  # librdkafka's own queue is full: let it send some
                    if time.monotonic() >= deadline:
                        outcomes[position] = "the Kafka client's queue stayed full"
                    producer.poll(0.05)
                except KafkaException as error:
                    outcomes[position] = f"Kafka did not take the event: {error.args[0]}"
                    if is_permanent(error.args[0]):
                        refused[position] = self._target.explain(error.args[0])
        unreported = producer.flush(max(0.0, deadline - time.monotonic()))
        failed, refusals, acknowledged = [], [], []
        for position, item in enumerate(batch):
            outcome = outcomes.get(position, "no delivery report from the Kafka client")
            if position in refused:
                refusals.append((item, refused[position]))
            elif isinstance(outcome, KafkaError) and is_permanent(outcome):
                refusals.append((item, self._target.explain(outcome)))
            elif outcome is not None:
                failed.append((item, self._target.explain(outcome)))
            else:
                acknowledged.append(item)
        if failed or unreported:
            # A fresh producer (new producer id, new sequence numbers) is the sure way back
            # once the broker returns; the events themselves are the caller's to keep.
            self.shutdown(timeout_s=0)
        return PublishResult(
            delivered=len(acknowledged), failed=failed, refused=refusals, acknowledged=acknowledged
        )

    def shutdown(self, timeout_s: float) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            if producer.flush(timeout_s):
                # What it still holds was reported to the caller as failed: it must never
                # arrive later behind the caller's back.
                producer.purge()
                producer.flush(0)

    def _connected(self) -> Producer:
        if self._producer is None:
            self._producer = Producer(self._target.producer_config())
            log.debug("Kafka producer made", bootstrap_servers=self._target.bootstrap_servers)
        return self._producer


class _LibrdkafkaLog(logging.Logger):
    """librdkafka's own lines (one per reconnection attempt in an outage) at debug level: the
    spooling publisher names an outage once, and the service's stderr is not the agent's."""

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        text = str(msg) % args if args else str(msg)
        log.debug("librdkafka", line=text, level=logging.getLevelName(level))


LIBRDKAFKA_LOG = _LibrdkafkaLog("driftline.agent.librdkafka")


def _settle(
    outcomes: dict[int, KafkaError | str | None],
    position: int,
    error: KafkaError | None,
    message: Message[Any, Any],
) -> None:
    outcomes[position] = error

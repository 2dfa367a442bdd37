"""Sends encoded events to Kafka: ``publish(batch) -> PublishResult`` plus ``shutdown``.

The publisher decides only *where* events go. It never raises for a failed send: the result
says which events failed and why, and the caller decides what to do with them.

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

import structlog
from confluent_kafka import KafkaError, KafkaException, Message, Producer

log = structlog.get_logger(__name__)

# Past the delivery timeout, librdkafka reports every message it still holds as timed out;
# this much more is allowed for those reports to arrive before the batch is given up.
REPORT_GRACE_S = 2.0


@dataclass(frozen=True)
class Outgoing:
    event_id: uuid.UUID
    key: bytes
    value: bytes


@dataclass(frozen=True)
class PublishResult:
    delivered: int
    failed: list[tuple[Outgoing, str]] = field(default_factory=list)
    spooled: int = 0  # not delivered yet, but safe on disk


class Publisher(Protocol):
    def publish(self, batch: list[Outgoing]) -> PublishResult: ...

    def shutdown(self, timeout_s: float) -> None: ...


class KafkaPublisher:
    """An idempotent librdkafka producer. Creating it does not connect, so an unreachable
    broker at start-up delays delivery instead of breaking the service."""

    def __init__(
        self,
        *,
        bootstrap_servers: str,
        topic: str,
        delivery_timeout_ms: int,
        security: dict[str, str] | None = None,
    ) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._security = security or {}
        self._topic = topic
        self._delivery_timeout_ms = delivery_timeout_ms
        self._producer: Producer | None = None

    def publish(self, batch: list[Outgoing]) -> PublishResult:
        if not batch:
            return PublishResult(delivered=0)
        producer = self._connected()
        outcomes: dict[int, KafkaError | str | None] = {}  # position: None when delivered
        deadline = time.monotonic() + self._delivery_timeout_ms / 1000 + REPORT_GRACE_S
        for position, item in enumerate(batch):
            report = functools.partial(_settle, outcomes, position)
            while position not in outcomes:
                try:
                    producer.produce(self._topic, item.value, item.key, on_delivery=report)
                    break
                except BufferError:  # librdkafka's own queue is full: let it send some
                    if time.monotonic() >= deadline:
                        outcomes[position] = "the Kafka client's queue stayed full"
                    producer.poll(0.05)
                except KafkaException as error:
                    outcomes[position] = f"Kafka did not take the event: {error.args[0]}"
        unreported = producer.flush(max(0.0, deadline - time.monotonic()))
        failed = []
        for position, item in enumerate(batch):
            if position not in outcomes:
                failed.append((item, "no delivery report from the Kafka client"))
            elif (outcome := outcomes[position]) is not None:
                failed.append((item, self._reason(outcome)))
        if failed or unreported:
            # A fresh producer (new producer id, new sequence numbers) is the sure way back
            # once the broker returns; the events themselves are the caller's to keep.
            self.shutdown(timeout_s=0)
        return PublishResult(delivered=len(batch) - len(failed), failed=failed)

    def shutdown(self, timeout_s: float) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            if producer.flush(timeout_s):
                # What it still holds was reported to the caller as failed: it must never
                # arrive later behind the caller's back.
                producer.purge()
                producer.flush(0)

    def _reason(self, outcome: KafkaError | str) -> str:
        if isinstance(outcome, str):
            return outcome
        if outcome.code() == KafkaError._MSG_TIMED_OUT:
            return (
                f"not acknowledged by Kafka at {self._bootstrap_servers} "
                f"(DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS) within {self._delivery_timeout_ms} ms "
                "(DRIFTLINE_DELIVERY_TIMEOUT_MS)"
            )
        return f"Kafka refused the event: {outcome.str()}"

    def _connected(self) -> Producer:
        if self._producer is None:
            self._producer = Producer(
                {
                    "bootstrap.servers": self._bootstrap_servers,
                    "enable.idempotence": True,  # stated: keeps order and absorbs retries
                    "acks": "all",
                    "linger.ms": 5,
                    "message.timeout.ms": self._delivery_timeout_ms,
                    "request.timeout.ms": min(self._delivery_timeout_ms // 2, 30_000),
                    # The partitioner of the Java client and kafka-python: a decision's events
                    # land on the same partition whichever client produced them.
                    "partitioner": "murmur2_random",
                    "logger": LIBRDKAFKA_LOG,
                    "log.connection.close": False,
                }
                | self._security
            )
            log.debug("Kafka producer made", bootstrap_servers=self._bootstrap_servers)
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

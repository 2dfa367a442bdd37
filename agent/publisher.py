"""Sends encoded events to Kafka: ``publish(batch) -> PublishResult`` plus ``shutdown``.

The publisher decides only *where* events go. It never raises for a failed send: the result
says which events failed and why, and the caller decides what to do with them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import structlog
from kafka import KafkaProducer
from kafka.errors import KafkaError

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Outgoing:
    event_id: uuid.UUID
    key: bytes
    value: bytes


@dataclass(frozen=True)
class PublishResult:
    delivered: int
    failed: list[tuple[Outgoing, str]] = field(default_factory=list)


class KafkaPublisher:
    """An idempotent kafka-python producer, created on first use so that an unreachable
    broker at start-up delays delivery instead of breaking the service."""

    def __init__(self, *, bootstrap_servers: str, topic: str, delivery_timeout_ms: int) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._topic = topic
        self._delivery_timeout_ms = delivery_timeout_ms
        self._producer: KafkaProducer | None = None

    def publish(self, batch: list[Outgoing]) -> PublishResult:
        if not batch:
            return PublishResult(delivered=0)
        try:
            producer = self._connected()
        except KafkaError as error:
            reason = f"no connection to Kafka at {self._bootstrap_servers}: {error}"
            return PublishResult(delivered=0, failed=[(item, reason) for item in batch])
        failed = []
        futures = []
        for item in batch:
            try:
                futures.append((item, producer.send(self._topic, key=item.key, value=item.value)))
            except KafkaError as error:  # e.g. no metadata for the topic within max_block_ms
                failed.append((item, f"Kafka did not take the event: {error}"))
        producer.flush(timeout=self._delivery_timeout_ms / 1000)
        for item, future in futures:
            # flush() does not raise for failed sends: each future says how its send went.
            if not future.is_done:
                failed.append((item, "not acknowledged by Kafka within the delivery timeout"))
            elif future.failed():
                failed.append((item, f"Kafka refused the event: {future.exception}"))
        return PublishResult(delivered=len(batch) - len(failed), failed=failed)

    def shutdown(self, timeout_s: float) -> None:
        if self._producer is not None:
            self._producer.close(timeout=timeout_s)
            self._producer = None

    def _connected(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = KafkaProducer(
                bootstrap_servers=self._bootstrap_servers,
                enable_idempotence=True,  # stated, since conflicting settings turn it off silently
                acks="all",
                linger_ms=5,
                delivery_timeout_ms=self._delivery_timeout_ms,
                # kafka-python insists on delivery > linger + request timeout.
                request_timeout_ms=min(self._delivery_timeout_ms // 2, 30_000),
                max_block_ms=self._delivery_timeout_ms,
                bootstrap_timeout_ms=self._delivery_timeout_ms,
            )
            log.info("connected to Kafka", bootstrap_servers=self._bootstrap_servers)
        return self._producer

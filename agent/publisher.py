"""Sends encoded events to Kafka: ``publish(batch) -> PublishResult`` plus ``shutdown``.

The publisher decides only *where* events go. It never raises for a failed send: the result
says which events failed and why, and the caller decides what to do with them.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass, field
from typing import Protocol

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
    spooled: int = 0  # not delivered yet, but safe on disk


class Publisher(Protocol):
    def publish(self, batch: list[Outgoing]) -> PublishResult: ...

    def shutdown(self, timeout_s: float) -> None: ...


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
            reason = (
                f"no connection to Kafka at {self._bootstrap_servers} "
                f"(DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS): {error}"
            )
            return PublishResult(delivered=0, failed=[(item, reason) for item in batch])
        failed = []
        futures = []
        for number, item in enumerate(batch):
            if number % 32 == 31:
                time.sleep(0)  # give the GIL to the service's threads (see dispatcher)
            try:
                futures.append((item, producer.send(self._topic, key=item.key, value=item.value)))
            except KafkaError as error:  # e.g. no metadata for the topic within max_block_ms
                failed.append((item, f"Kafka did not take the event: {error}"))
        # flush() raises when time runs out and not for failed sends: the futures say which.
        with contextlib.suppress(KafkaError):
            producer.flush(timeout=self._delivery_timeout_ms / 1000)
        for item, future in futures:
            if not future.is_done:
                failed.append((item, "not acknowledged by Kafka within the delivery timeout"))
            elif future.failed():
                failed.append((item, f"Kafka refused the event: {future.exception}"))
        if failed:
            # A fresh producer (new producer id, new sequence numbers) is the sure way back
            # once the broker returns; the events themselves are the caller's to keep.
            self.shutdown(timeout_s=0)
        return PublishResult(delivered=len(batch) - len(failed), failed=failed)

    def shutdown(self, timeout_s: float) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            with contextlib.suppress(KafkaError):  # close flushes, and that flush may time out
                producer.close(timeout=timeout_s)

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

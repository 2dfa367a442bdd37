"""The collector's consumer loop: Kafka batch in, one database transaction, then commit offsets.

Offsets are committed only after the transaction commits, so a crash at any point re-reads
events that ``ingest`` then absorbs as duplicates: every event ends up stored exactly once.
An event whose data the database refuses is kept as a dead letter and the rest of its batch
stored (``isolation``). When the database fails a batch for any other reason (it is down, the
connection was lost), the partitions are rewound and the batch is tried again with backoff;
nothing is skipped. An event of a type only Driftline's own components write is stored only when
a producer key the collector trusts signed it (``ingest``, ``producer_keys``).
"""

from __future__ import annotations

import threading
from typing import Any

import structlog
from kafka import KafkaConsumer
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata, TopicPartition
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from agent.provenance import TrustedProducers
from collector.consume import isolation
from collector.consume.ingest import BatchOutcome, RawMessage
from collector.core.clock import DEFAULT_BOUNDS, ClockBounds
from collector.core.health import Heartbeat
from collector.core.producer_keys import trusted_producers
from collector.core.settings import CollectorSettings

log = structlog.get_logger(__name__)

MAX_BACKOFF_S = 30.0

# What KafkaConsumer.poll returns; kafka-python's ConsumerRecord carries no type hints.
Polled = dict[TopicPartition, list[Any]]


class Collector:
    def __init__(
        self,
        *,
        engine: Engine,
        bootstrap_servers: str,
        topic: str,
        group_id: str,
        batch_size: int = 500,
        max_poll_interval_ms: int = 10_000,
        session_timeout_ms: int = 6_000,
        security: dict[str, Any] | None = None,
        clock_bounds: ClockBounds = DEFAULT_BOUNDS,
        producers: TrustedProducers | None = None,
    ) -> None:
        """``producers``: the keys a component's event must be signed by; none given, none
        is trusted, and every such event is a dead letter."""
        self._engine = engine
        self._topic = topic
        self._batch_size = batch_size
        self._clock_bounds = clock_bounds
        self._producers = producers or TrustedProducers()
        self._consumer_config = {
            "bootstrap_servers": bootstrap_servers,
            "group_id": group_id,
            "client_id": "driftline-collector",
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "max_poll_interval_ms": max_poll_interval_ms,
            "session_timeout_ms": session_timeout_ms,
            "heartbeat_interval_ms": max(100, session_timeout_ms // 3),
        } | (security or {})

    @classmethod
    def from_settings(
        cls, engine: Engine, settings: CollectorSettings, bootstrap_servers: str
    ) -> Collector:
        return cls(
            engine=engine,
            bootstrap_servers=bootstrap_servers,
            topic=settings.topic,
            group_id=settings.consumer_group,
            batch_size=settings.batch_size,
            max_poll_interval_ms=settings.max_poll_interval_ms,
            session_timeout_ms=settings.session_timeout_ms,
            security=settings.kafka_python_security(),
            clock_bounds=ClockBounds(settings.clock_skew_past_s, settings.clock_skew_future_s),
            producers=trusted_producers(settings),
        )

    def run(self, stop: threading.Event, heartbeat: Heartbeat | None = None) -> None:
        """Consume until ``stop`` is set, beating ``heartbeat`` at every poll."""
        consumer = self._connect(stop)
        if consumer is None:
            return
        log.info("collector consuming", topic=self._topic, group=self._consumer_config["group_id"])
        backoff_s = 0.5
        try:
            while not stop.is_set():
                if heartbeat is not None:
                    heartbeat.beat()
                polled = consumer.poll(timeout_ms=500, max_records=self._batch_size)
                if not polled:
                    continue
                try:
                    outcome = self._store(polled)
                except SQLAlchemyError as error:
                    log.error("database failed the batch; will read it again", error=str(error))
                    _rewind(consumer, polled)
                    stop.wait(backoff_s)
                    backoff_s = min(backoff_s * 2, MAX_BACKOFF_S)
                    continue
                backoff_s = 0.5
                _commit(consumer, polled)
                log.debug(
                    "batch stored",
                    stored=outcome.stored,
                    duplicates=outcome.duplicates,
                    dead_letters=outcome.dead_letters,
                    conflicts=outcome.conflicts,
                    clock_skewed=outcome.clock_skewed,
                )
        finally:
            consumer.close(autocommit=False)

    def _connect(self, stop: threading.Event) -> KafkaConsumer | None:
        """A consumer, once Kafka answers; None if stopped first. A broker that is away at
        start (a restart during an outage) is waited for, not a reason to exit."""
        backoff_s = 0.5
        while not stop.is_set():
            try:
                return KafkaConsumer(self._topic, **self._consumer_config)
            except KafkaError as error:
                log.error(
                    "cannot reach Kafka; trying again",
                    bootstrap_servers=self._consumer_config["bootstrap_servers"],
                    error=repr(error),
                    retry_in_s=backoff_s,
                )
                stop.wait(backoff_s)
                backoff_s = min(backoff_s * 2, MAX_BACKOFF_S)
        return None

    def _store(self, polled: Polled) -> BatchOutcome:
        messages = [
            RawMessage(record.topic, record.partition, record.offset, record.key, record.value)
            for records in polled.values()
            for record in records
        ]
        return isolation.store(self._engine, messages, self._clock_bounds, self._producers)


def _commit(consumer: KafkaConsumer, polled: Polled) -> None:
    offsets = {
        partition: OffsetAndMetadata(records[-1].offset + 1, "", -1)
        for partition, records in polled.items()
    }
    try:
        consumer.commit(offsets)
    except KafkaError as error:
        # The batch is stored; whoever reads it again absorbs it as duplicates.
        log.warning("offset commit failed after the batch was stored", error=str(error))


def _rewind(consumer: KafkaConsumer, polled: Polled) -> None:
    for partition, records in polled.items():
        try:
            consumer.seek(partition, records[0].offset)
        except (KafkaError, AssertionError) as error:
            # The partition moved to another consumer, which starts from the committed offset.
            log.info(
                "partition no longer ours; not rewound", partition=str(partition), error=str(error)
            )

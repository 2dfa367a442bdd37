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
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from driftline.agent.provenance import TrustedProducers
from driftline.collector.consume import isolation, metrics
from driftline.collector.consume.ingest import BatchOutcome
from driftline.collector.consume.kafka import Batch, GroupConsumer, KafkaUnavailable
from driftline.collector.core.clock import DEFAULT_BOUNDS, ClockBounds
from driftline.collector.core.health import Heartbeat, first_line
from driftline.collector.core.producer_keys import trusted_producers
from driftline.collector.core.settings import CollectorSettings

log = structlog.get_logger(__name__)

MAX_BACKOFF_S = 30.0


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
        security: dict[str, str] | None = None,
        clock_bounds: ClockBounds = DEFAULT_BOUNDS,
        producers: TrustedProducers | None = None,
    ) -> None:
        """``producers``: the keys a component's event must be signed by; none given, none
        is trusted, and every such event is a dead letter."""
        self._engine = engine
        self._batch_size = batch_size
        self._clock_bounds = clock_bounds
        self._producers = producers or TrustedProducers()
        self._consumer_config: dict[str, Any] = {
            "bootstrap_servers": bootstrap_servers,
            "topic": topic,
            "group_id": group_id,
            "client_id": "driftline-collector",
            "offset_reset": "earliest",
            "max_poll_interval_ms": max_poll_interval_ms,
            "session_timeout_ms": session_timeout_ms,
            "security": security,
        }

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
            security=settings.librdkafka_security(),
            clock_bounds=ClockBounds(settings.clock_skew_past_s, settings.clock_skew_future_s),
            producers=trusted_producers(settings),
        )

    def run(self, stop: threading.Event, heartbeat: Heartbeat | None = None) -> None:
        """Consume until ``stop`` is set, beating ``heartbeat`` at every poll. A broker that is
        away at start (a restart during an outage) is waited for, not a reason to exit."""
        beat = heartbeat.beat if heartbeat is not None else None

        def waiting() -> None:
            if heartbeat is not None:
                heartbeat.beat()
                heartbeat.fault(
                    "kafka", f"cannot reach {self._consumer_config['bootstrap_servers']}"
                )

        consumer = GroupConsumer.connect(stop, waiting, **self._consumer_config)
        if consumer is None:
            return
        if heartbeat is not None:
            heartbeat.clear("kafka")
        log.info("collector consuming", topic=consumer.topic, group=consumer.group_id)
        backoff_s = 0.5
        try:
            while not stop.is_set():
                if beat is not None:
                    beat()
                batch = consumer.poll(self._batch_size, timeout_s=0.5)
                metrics.count_lag(consumer.lag())
                if not batch.messages:
                    continue
                try:
                    with metrics.BATCH_SECONDS.time():
                        outcome = self._store(batch)
                except SQLAlchemyError as error:
                    log.error("database failed the batch; will read it again", error=str(error))
                    metrics.BATCH_FAILURES.inc()
                    if heartbeat is not None:
                        heartbeat.fault("database", f"failed the last batch: {first_line(error)}")
                    consumer.rewind(batch)
                    stop.wait(backoff_s)
                    backoff_s = min(backoff_s * 2, MAX_BACKOFF_S)
                    continue
                metrics.count(outcome)
                if heartbeat is not None:
                    heartbeat.clear("database")
                backoff_s = 0.5
                try:
                    with metrics.COMMIT_SECONDS.time():
                        consumer.commit(batch)
                    if heartbeat is not None:
                        heartbeat.clear("kafka")
                except KafkaUnavailable as error:
                    # The batch is stored; whoever reads it again absorbs it as duplicates.
                    log.warning("offset commit failed after the batch was stored", error=str(error))
                    metrics.COMMIT_FAILURES.inc()
                    if heartbeat is not None:
                        heartbeat.fault("kafka", f"the last offset commit failed: {error}")
                log.debug(
                    "batch stored",
                    stored=outcome.stored,
                    duplicates=outcome.duplicates,
                    dead_letters=outcome.dead_letters,
                    conflicts=outcome.conflicts,
                    clock_skewed=outcome.clock_skewed,
                )
        finally:
            consumer.close()

    def _store(self, batch: Batch) -> BatchOutcome:
        return isolation.store(self._engine, batch.raw(), self._clock_bounds, self._producers)

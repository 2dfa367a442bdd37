"""What reading the log costs the collector: its Kafka adapter (librdkafka's ``consume``, a
``Batch`` and its ``raw`` messages) against kafka-python's ``poll``, the client the design card
named, reading the same decision events from the same embedded broker in the same run.

The events are those of ``bench.collector``, on three partitions. Each reader is a new consumer
group that reads the whole topic from the start, in turn and ``--rounds`` times each, so that
the load of a shared machine falls on both alike; the best round of each counts.

    .venv/bin/python -m bench.consume [--events 100000] [--rounds 3]

The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import itertools
import json
import threading
import time
from collections.abc import Callable

from kafka import KafkaConsumer

from bench.agent import bare_librdkafka
from bench.collector import BATCH, decisions
from driftline.collector.consume.kafka import GroupConsumer, ensure_topic
from driftline.collector.runtime.broker import EmbeddedBroker

TOPIC = "bench-consume"
_groups = itertools.count()


def with_adapter(bootstrap_servers: str, events: int) -> float:
    """Seconds for the collector's adapter to hand over every event as ``RawMessage``s."""
    consumer = GroupConsumer.connect(
        threading.Event(),
        bootstrap_servers=bootstrap_servers,
        topic=TOPIC,
        group_id=f"bench-adapter-{next(_groups)}",
        client_id="bench-adapter",
        offset_reset="earliest",
        max_poll_interval_ms=10_000,
        session_timeout_ms=6_000,
    )
    assert consumer is not None
    try:
        return _timed(lambda: len(consumer.poll(BATCH, 1.0).raw()), events)
    finally:
        consumer.close()


def with_kafka_python(bootstrap_servers: str, events: int) -> float:
    """Seconds for kafka-python's ``poll`` to hand over every event."""
    consumer = KafkaConsumer(
        TOPIC,
        bootstrap_servers=bootstrap_servers,
        group_id=f"bench-kafka-python-{next(_groups)}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=BATCH,
    )
    try:
        return _timed(
            lambda: sum(map(len, consumer.poll(timeout_ms=1_000, max_records=BATCH).values())),
            events,
        )
    finally:
        consumer.close()


def _timed(read: Callable[[], int], events: int) -> float:
    """Seconds from the first message read to the last; the group join is not counted."""
    seen = 0
    while seen == 0:
        seen = read()
    began = time.perf_counter()
    while seen < events:
        seen += read()
    assert seen == events, seen
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    encoded = decisions(args.events)
    with EmbeddedBroker() as broker:
        ensure_topic(broker.bootstrap_servers, TOPIC, partitions=3)
        bare_librdkafka(broker.bootstrap_servers, encoded, TOPIC)
        seconds: dict[str, list[float]] = {"adapter": [], "kafka_python": []}
        for _ in range(args.rounds):
            seconds["adapter"].append(with_adapter(broker.bootstrap_servers, args.events))
            seconds["kafka_python"].append(with_kafka_python(broker.bootstrap_servers, args.events))
    rates = {name: args.events / min(times) for name, times in seconds.items()}
    figures = {
        "events": args.events,
        "adapter_events_per_s": round(rates["adapter"]),
        "kafka_python_events_per_s": round(rates["kafka_python"]),
        "adapter_us_per_event": round(1e6 / rates["adapter"], 2),
        "kafka_python_us_per_event": round(1e6 / rates["kafka_python"], 2),
        "vs_kafka_python": round(rates["adapter"] / rates["kafka_python"], 2),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

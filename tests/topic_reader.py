"""Reads everything on a topic straight from the broker, without a consumer group."""

import time
from typing import Any

from kafka import KafkaConsumer, TopicPartition


def read_topic(
    bootstrap_servers: str, topic: str, count: int, timeout_s: float = 30.0
) -> list[Any]:
    """Return the first ``count`` records of ``topic`` (all partitions), or fail trying."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        records = []
        deadline = time.monotonic() + timeout_s
        while len(records) < count and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
        assert len(records) >= count, f"only {len(records)} of {count} records on {topic}"
        return records
    finally:
        consumer.close()

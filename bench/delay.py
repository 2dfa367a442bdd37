"""How long a decision takes from ``record_decision`` to queryable in the store, at a steady
rate, against the floor Kafka sets: a bare producer to a bare consumer through the same broker
at the same rate, measured in the same run.

Driftline's side is the load test (``driftline.collector.golive.loadtest``): the agent in this
process records at the rate, ``driftline collect`` stores in its own process (SQLite), and a
decision counts as queryable once the store's count of them passes it (polled every 50 ms). The bare
side stamps each message with its send time and reads it with a plain consumer (assigned partitions,
no database).

    .venv/bin/python -m bench.delay [--rate 1000] [--seconds 60]

The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from confluent_kafka import Producer
from kafka import KafkaConsumer, TopicPartition
from rich.console import Console

from bench.stores import database_url, sqlite_store
from driftline.agent import Driftline
from driftline.collector.consume.kafka import ensure_topic
from driftline.collector.golive.loadtest import run_load_test
from driftline.collector.runtime.broker import EmbeddedBroker

console = Console(stderr=True)


def driftline_delay(broker: EmbeddedBroker, directory: Path, rate: int, seconds: float) -> Any:
    topic = "bench-delay"
    ensure_topic(broker.bootstrap_servers, topic, partitions=3)
    with sqlite_store(directory, "delay") as engine:
        environment = os.environ | {
            "DRIFTLINE_DATABASE_URL": database_url(engine),
            "DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "DRIFTLINE_TOPIC": topic,
            "DRIFTLINE_LOG_LEVEL": "warning",
        }
        collector = subprocess.Popen(
            [str(Path(sys.executable).parent / "driftline"), "collect"], env=environment
        )
        try:
            with Driftline(
                service="bench", kafka_bootstrap_servers=broker.bootstrap_servers, topic=topic,
                queue_size=max(10_000, rate * 2),
            ) as agent:  # fmt: skip
                # One decision first, so the collector has joined its group before the clock.
                run_load_test(
                    agent, engine, model="bench", version="warm-up", rate_per_s=10, duration_s=0.1
                )
                return run_load_test(
                    agent, engine, model="bench", version="1", rate_per_s=rate, duration_s=seconds
                )
        finally:
            collector.terminate()
            collector.wait(timeout=30)


def bare_delay_ms(broker: EmbeddedBroker, rate: int, seconds: float) -> np.ndarray[Any, Any]:
    """Send time to receive time of each message, bare producer to bare consumer."""
    topic = "bench-delay-bare"
    ensure_topic(broker.bootstrap_servers, topic, partitions=3)
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap_servers, enable_auto_commit=False)
    partitions = [TopicPartition(topic, p) for p in range(3)]
    consumer.assign(partitions)
    consumer.seek_to_end(*partitions)
    for partition in partitions:
        consumer.position(partition)  # resolve the end now, not after the first message
    producer = Producer(
        {"bootstrap.servers": broker.bootstrap_servers, "enable.idempotence": True,
         "acks": "all", "linger.ms": 5}
    )  # fmt: skip
    total = int(rate * seconds)
    received = np.zeros(total)
    sent = np.zeros(total)
    got = 0
    began = time.perf_counter()
    for n in range(total):
        delay = began + n / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        sent[n] = time.perf_counter()
        producer.produce(topic, struct.pack(">Q", n), str(n).encode())
        producer.poll(0)
        for batch in consumer.poll(timeout_ms=0).values():
            for record in batch:
                received[struct.unpack(">Q", record.value)[0]] = time.perf_counter()
                got += 1
    producer.flush(30)
    deadline = time.perf_counter() + 60
    while got < total and time.perf_counter() < deadline:
        for batch in consumer.poll(timeout_ms=50).values():
            for record in batch:
                received[struct.unpack(">Q", record.value)[0]] = time.perf_counter()
                got += 1
    consumer.close()
    assert got == total, f"the bare consumer read {got} of {total}"
    return (received - sent) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=1_000)
    parser.add_argument("--seconds", type=float, default=60)
    options = parser.parse_args()
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as directory:
        bare = bare_delay_ms(broker, options.rate, options.seconds)
        result = driftline_delay(broker, Path(directory), options.rate, options.seconds)
    figures = {
        "rate_per_s": options.rate,
        "seconds": options.seconds,
        "delay_median_ms": result.delay_median_ms,
        "delay_p99_ms": result.delay_p99_ms,
        "lost": result.lost,
        "achieved_per_s": result.achieved_per_s,
        "bare_kafka_median_ms": round(float(np.median(bare)), 1),
        "bare_kafka_p99_ms": round(float(np.percentile(bare, 99)), 1),
    }
    if result.delay_p99_ms is not None:
        figures["p99_vs_bare_kafka"] = round(result.delay_p99_ms / figures["bare_kafka_p99_ms"], 1)
    console.print(figures)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

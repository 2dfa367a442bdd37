"""What the agent costs a service: per call, and in sustained throughput to Kafka.

Measured in one run against baselines on the same machine:
- per call, ``record_decision`` against a plain function call with the same arguments and
  against a bare OpenTelemetry span start/end (SDK provider, no exporter);
- sustained throughput, the agent's events/s to the embedded broker against bare producers
  (idempotent, acks=all) sending the same encoded bytes: kafka-python, the pure-Python client
  the goal was set against, and confluent-kafka (librdkafka), the client the agent uses.
  Each side is connected before its clock starts.

Calls are timed one by one in bursts of 100 with a pause between bursts, as a service records
decisions, so the figures are the caller's cost and not the queue's.

Also what a sidecar's 202 costs when it means "on disk" (DRIFTLINE_SIDECAR_ACK=on_disk: the
request's events processed, written to the spool and synced before it returns) against
"queued" (the default), per request of 10 events, through the call the sidecar makes.

    .venv/bin/python -m bench.agent [--calls 20000] [--events 50000]

The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Producer
from kafka import KafkaProducer
from opentelemetry.sdk.trace import TracerProvider

from driftline.agent import Driftline
from driftline.agent.contract import (
    DecisionEvent,
    DecisionPayload,
    ModelRef,
    new_event_id,
    wire_bytes,
)
from driftline.collector.consume.kafka import ensure_topic
from driftline.collector.runtime.broker import EmbeddedBroker

INPUTS = {"income": 52_000, "age": 41, "debt_ratio": 0.31, "region": "north"}
BURST = 100


def per_call_us(call: Callable[[], Any], calls: int) -> list[float]:
    timings = []
    for _ in range(calls // BURST):
        for _ in range(BURST):
            began = time.perf_counter_ns()
            call()
            timings.append((time.perf_counter_ns() - began) / 1000)
        time.sleep(0.002)
    return timings


def summary(timings: list[float]) -> dict[str, float]:
    ordered = sorted(timings)
    return {
        "median_us": round(statistics.median(ordered), 2),
        "p99_us": round(ordered[int(len(ordered) * 0.99)], 2),
    }


FIELDS: dict[str, Any] = {
    "model": "credit-risk", "version": "3", "inputs": INPUTS, "output": "approve",
    "confidence": 0.91, "latency_ms": 12.5,
}  # fmt: skip


def plain_function(**fields: Any) -> object:
    """The baseline: a call with the same arguments that makes an id and returns."""
    return new_event_id()


def record(agent: Driftline) -> object:
    return agent.record_decision(
        model="credit-risk", version="3", inputs=INPUTS, output="approve",
        confidence=0.91, latency_ms=12.5,
    )  # fmt: skip


SIDECAR_EVENT = {
    "type": "decision",
    "model": {"name": "credit-risk", "version": "3"},
    "payload": {"inputs": INPUTS, "output": "approve", "confidence": 0.91, "latency_ms": 12.5,
                "automated": True},
}  # fmt: skip


def sidecar_ack(bootstrap_servers: str, ack: str, requests: int) -> dict[str, float]:
    """Per-request cost of the sidecar's recording call for 10 events, acknowledged as ``ack``
    says, and the events/s that gives."""
    with Driftline(
        service="bench", kafka_bootstrap_servers=bootstrap_servers, topic="bench-sidecar",
        spool_dir=tempfile.mkdtemp(), sidecar_ack=ack, queue_size=requests * 10,
    ) as agent:  # fmt: skip
        timings = []
        for _ in range(requests):
            documents = [agent.complete_event(SIDECAR_EVENT) for _ in range(10)]
            began = time.perf_counter_ns()
            assert all(agent.record_events(documents))
            timings.append((time.perf_counter_ns() - began) / 1000)
        assert agent.flush(timeout_s=120).ok
    return summary(timings) | {"events_per_s": round(10 / (statistics.mean(timings) / 1e6))}


def bare_librdkafka(
    bootstrap_servers: str, encoded: list[tuple[bytes, bytes]], topic: str = "bench-librdkafka"
) -> float:
    """Seconds for a bare confluent-kafka producer to deliver the encoded (key, value) pairs."""
    producer = Producer(
        {"bootstrap.servers": bootstrap_servers, "enable.idempotence": True, "acks": "all",
         "linger.ms": 5, "partitioner": "murmur2_random"}
    )  # fmt: skip
    producer.produce("bench-warm-up", b"warm-up")
    producer.flush(30)
    failures: list[object] = []

    def settle(error: object, message: object) -> None:
        if error is not None:
            failures.append(error)

    began = time.perf_counter()
    for key, value in encoded:
        while True:
            try:
                producer.produce(topic, value, key, on_delivery=settle)
                break
            except BufferError:
                producer.poll(0.01)
    assert producer.flush(60) == 0 and not failures, failures
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=50_000)
    args = parser.parse_args()

    with EmbeddedBroker() as broker:
        ensure_topic(broker.bootstrap_servers, "bench-calls", 3)
        ensure_topic(broker.bootstrap_servers, "bench-agent", 3)
        ensure_topic(broker.bootstrap_servers, "bench-bare", 3)
        ensure_topic(broker.bootstrap_servers, "bench-librdkafka", 3)
        ensure_topic(broker.bootstrap_servers, "bench-sidecar", 3)
        tracer = TracerProvider().get_tracer("bench")
        plain = summary(per_call_us(lambda: plain_function(**FIELDS), args.calls))
        span = summary(per_call_us(lambda: tracer.start_span("decision").end(), args.calls))
        with Driftline(
            service="bench",
            kafka_bootstrap_servers=broker.bootstrap_servers,
            topic="bench-calls",
            spool_dir=tempfile.mkdtemp(),
            queue_size=args.calls,  # bursts outpace the worker; a full queue would drop
        ) as agent:
            recorded = summary(per_call_us(lambda: record(agent), args.calls))
            assert agent.flush(timeout_s=60).ok

        events = [
            DecisionEvent(
                service="bench",
                model=ModelRef(name="credit-risk", version="3"),
                decision_id=new_event_id(),
                payload=DecisionPayload(
                    inputs=INPUTS, output="approve", confidence=0.91, latency_ms=12.5,
                    automated=True,
                ),
            )
            for _ in range(args.events)
        ]  # fmt: skip
        encoded = [(event.kafka_key(), wire_bytes(event)) for event in events]
        producer = KafkaProducer(
            bootstrap_servers=broker.bootstrap_servers,
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
        )
        began = time.perf_counter()
        futures = [producer.send("bench-bare", key=k, value=v) for k, v in encoded]
        producer.flush()
        bare_s = time.perf_counter() - began
        assert all(f.succeeded() for f in futures)
        producer.close()
        librdkafka_s = bare_librdkafka(broker.bootstrap_servers, encoded)
        del events, encoded, futures  # so that the agent's garbage collections do not walk them
        gc.collect()

        with Driftline(
            service="bench",
            kafka_bootstrap_servers=broker.bootstrap_servers,
            topic="bench-agent",
            spool_dir=tempfile.mkdtemp(),
            queue_size=args.events,
        ) as agent:
            record(agent)  # connected, as the bare producers are, before the clock starts
            assert agent.flush(timeout_s=60).ok
            began = time.perf_counter()
            for _ in range(args.events):
                record(agent)
            report = agent.flush(timeout_s=300)
            agent_s = time.perf_counter() - began
            assert report.ok, report

        queued = sidecar_ack(broker.bootstrap_servers, "queued", args.calls // 10)
        on_disk = sidecar_ack(broker.bootstrap_servers, "on_disk", args.calls // 10)

    figures = {
        "calls": args.calls,
        "plain_call": plain,
        "otel_span": span,
        "record_decision": recorded,
        "added_median_us": round(recorded["median_us"] - plain["median_us"], 2),
        "added_p99_us": round(recorded["p99_us"] - plain["p99_us"], 2),
        "events": args.events,
        "bare_producer_events_per_s": round(args.events / bare_s),
        "agent_events_per_s": round(args.events / agent_s),
        "agent_vs_bare_throughput": round(bare_s / agent_s, 3),
        "bare_librdkafka_events_per_s": round(args.events / librdkafka_s),
        "agent_vs_bare_librdkafka_throughput": round(librdkafka_s / agent_s, 3),
        "sidecar_ack_queued": queued,
        "sidecar_ack_on_disk": on_disk,
        "on_disk_vs_queued_median": round(on_disk["median_us"] / queued["median_us"], 2),
    }
    print(
        f"per call (median / p99 µs): plain {plain['median_us']} / {plain['p99_us']}, "
        f"OTel span {span['median_us']} / {span['p99_us']}, "
        f"record_decision {recorded['median_us']} / {recorded['p99_us']}"
    )
    print(
        f"throughput: agent {figures['agent_events_per_s']} events/s, bare producer "
        f"{figures['bare_producer_events_per_s']} events/s "
        f"({figures['agent_vs_bare_throughput']:.0%} of it), bare librdkafka producer "
        f"{figures['bare_librdkafka_events_per_s']} events/s "
        f"({figures['agent_vs_bare_librdkafka_throughput']:.0%} of it)"
    )
    print(
        f"sidecar request of 10 events (median / p99 µs): queued {queued['median_us']} / "
        f"{queued['p99_us']}, on disk {on_disk['median_us']} / {on_disk['p99_us']} "
        f"(x{figures['on_disk_vs_queued_median']})"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

"""What the collector can store: its ingest rate against plain inserts of the same rows, and
its resident memory from 100k to the last event, on SQLite and on PostgreSQL.

The events (decisions with six inputs, keyed by decision id, on three partitions) are produced
to the embedded broker before the clock starts. ``driftline collect`` then runs in its own
process, as in production, from an empty store; its rate is taken from its first stored event
to its last (so the consumer group's join is not counted), and its memory is read from
/proc at every poll. The baselines read back the very rows the collector wrote (ledger entry
and decision) and insert them into other empty stores, in the collector's batch size, one
transaction per batch, timed alone (``bench.stores``): SQLAlchemy Core's executemany (the
"bare insert") and, on PostgreSQL, COPY, the fastest plain way there.

    .venv/bin/python -m bench.collector [--events 1000000] [--only sqlite] [--no-replicas]

Goal: one collector process at 0.8 of the executemany rate or more (``vs_bare_insert``; its
ratio to COPY, ``vs_copy``, beside it); resident memory within 50 MB from 100k events to the
last. Two collectors in one consumer group run too, unless ``--no-replicas``. The last line is
one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from sqlalchemy import Engine

from bench.agent import bare_librdkafka
from bench.memory import resident_mb
from bench.stores import baselines, collected_rows, database_url, store, stored_events
from driftline.agent.contract import DecisionEvent, DecisionPayload, ModelRef, encode
from driftline.collector.consume.kafka import ensure_topic
from driftline.collector.runtime.broker import EmbeddedBroker

BATCH = 500  # the collector's default batch size
MEMORY_FROM = 100_000
RATE_GOAL = 0.8  # of the executemany baseline's rate, one collector process
MEMORY_GOAL_MB = 50  # growth of resident memory from MEMORY_FROM events to the last
console = Console(stderr=True)


def first_sample_at(events: int) -> int:
    """Where memory is first read: at 100k events, or a tenth of a smaller run."""
    return min(MEMORY_FROM, events // 10)


def decisions(count: int, seed: int = 7) -> list[tuple[bytes, bytes]]:
    """Encoded (key, value) pairs of ``count`` decision events."""
    rng = random.Random(seed)
    model = ModelRef(name="credit-risk", version="4")
    encoded = []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("encoding events", total=count)
        for number in range(count):
            event = DecisionEvent(
                service="loan-desk",
                model=model,
                decision_id=uuid.UUID(int=rng.getrandbits(128), version=4),
                trace_id=f"{rng.getrandbits(128):032x}",
                span_id=f"{rng.getrandbits(64):016x}",
                payload=DecisionPayload(
                    inputs={
                        "income": rng.randrange(10_000, 200_000),
                        "debt_ratio": round(rng.random(), 4),
                        "age": rng.randrange(18, 90),
                        "region": rng.choice(["north", "south", "east", "west"]),
                        "employment": rng.choice(["salaried", "self-employed", "none"]),
                        "email": f"hmac:{rng.getrandbits(128):032x}",
                    },
                    output=rng.choice(["approve", "decline"]),
                    confidence=round(rng.random(), 4),
                    latency_ms=round(rng.uniform(2, 40), 2),
                    automated=rng.random() < 0.7,
                ),
            )
            encoded.append((event.kafka_key(), encode(event)))
            if number % 10_000 == 0:
                progress.update(task, completed=number)
    return encoded


def collect(
    engine: Engine, bootstrap_servers: str, topic: str, events: int, replicas: int
) -> dict[str, Any]:
    """Run ``replicas`` processes of ``driftline collect`` in one consumer group until they
    have stored every event; their rate, and the memory of the largest."""
    environment = os.environ | {
        "DRIFTLINE_DATABASE_URL": database_url(engine),
        "DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers,
        "DRIFTLINE_TOPIC": topic,
        "DRIFTLINE_CONSUMER_GROUP": f"bench-{engine.dialect.name}-{replicas}",
        "DRIFTLINE_LOG_LEVEL": "warning",
    }
    driftline = Path(sys.executable).parent / "driftline"
    processes = [
        subprocess.Popen([str(driftline), "collect"], env=environment) for _ in range(replicas)
    ]
    first: tuple[float, int] | None = None
    memory_at_start = memory_from = None
    peak = 0.0
    try:
        with Progress(console=console, transient=True) as progress:
            label = f"{replicas} collector(s) on {engine.dialect.name}"
            task = progress.add_task(label, total=events)
            while True:
                for process in processes:
                    if process.poll() is not None:
                        raise RuntimeError(f"driftline collect exited with {process.returncode}")
                stored = stored_events(engine)
                now = time.perf_counter()
                memory = max(resident_mb(process.pid) for process in processes)
                memory_at_start = memory_at_start or memory
                peak = max(peak, memory)
                if first is None and stored:
                    first = (now, stored)
                if memory_from is None and stored >= first_sample_at(events):
                    memory_from = memory
                progress.update(task, completed=stored)
                if stored >= events:
                    break
                time.sleep(0.5)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
    assert first is not None and memory_from is not None
    began, already = first
    return {
        "events_per_s": round((events - already) / (now - began)),
        "rss_start_mb": round(memory_at_start or 0.0, 1),
        "rss_first_mb": round(memory_from, 1),
        "rss_last_mb": round(memory, 1),
        "rss_peak_mb": round(peak, 1),
        "rss_growth_mb": round(memory - memory_from, 1),
    }


def baseline_rates(source: Engine, kind: str, directory: Path, events: int) -> dict[str, float]:
    """Events per second of each plain way (``bench.stores.baselines``) of inserting the rows
    the collector wrote in ``source`` into an empty store of its own, in the collector's batch
    size, one transaction per batch; batch by batch in turn, reads and preparation not counted.
    """
    seconds: dict[str, float] = {}
    with ExitStack() as stack, Progress(console=console, transient=True) as progress:
        targets = [
            (baseline, stack.enter_context(store(kind, directory, baseline.name)))
            for baseline in baselines(kind)
        ]
        task = progress.add_task(f"plain inserts on {kind}", total=events)
        for rows in collected_rows(source, BATCH):
            for baseline, target in targets:
                prepared = baseline.prepare(rows)
                began = time.perf_counter()
                baseline.insert(target, prepared)
                seconds[baseline.name] = (
                    seconds.get(baseline.name, 0.0) + time.perf_counter() - began
                )
            progress.update(task, advance=len(rows[0]))
    return {name: events / elapsed for name, elapsed in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument(
        "--no-replicas", action="store_true", help="skip the run of two collectors in one group"
    )
    options = parser.parse_args()
    encoded = decisions(options.events)
    figures: dict[str, Any] = {
        "events": options.events,
        "batch": BATCH,
        "first_sample_at": first_sample_at(options.events),
    }
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as directory:
        topic = "bench-collector"
        ensure_topic(broker.bootstrap_servers, topic, partitions=3)
        produced_s = bare_librdkafka(broker.bootstrap_servers, encoded, topic)
        console.print(f"produced {options.events} events in {produced_s:.0f}s")
        del encoded
        for kind in ("sqlite", "postgresql"):
            if options.only not in (None, kind):
                continue
            with store(kind, Path(directory), "collected") as collected:
                result = collect(collected, broker.bootstrap_servers, topic, options.events, 1)
                rates = baseline_rates(collected, kind, Path(directory), options.events)
            for name, rate in rates.items():
                label = "bare_insert" if name == "executemany" else name
                result[f"{label}_events_per_s"] = round(rate)
                result[f"vs_{label}"] = round(result["events_per_s"] / rate, 3)
            if not options.no_replicas:
                with store(kind, Path(directory), "replicated") as replicated:
                    two = collect(replicated, broker.bootstrap_servers, topic, options.events, 2)
                result["two_replicas_events_per_s"] = two["events_per_s"]
                result["two_replicas_vs_bare_insert"] = round(
                    two["events_per_s"] / rates["executemany"], 3
                )
            result["rate_goal_met"] = result["vs_bare_insert"] >= RATE_GOAL
            result["memory_goal_met"] = result["rss_growth_mb"] <= MEMORY_GOAL_MB
            figures[kind] = result
            console.print(f"{kind}: {json.dumps(result)}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

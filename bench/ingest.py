"""What the collector's write path costs without Kafka: ``isolation.store`` of decision batches
against the plain inserts of the very rows it wrote, batch by batch, on SQLite and PostgreSQL.

The decisions are those of ``bench.collector``, on three partitions. They are stored once to
learn the rows the collector writes (ledger entry and decision); then, batch after batch, the
same batch is stored by the collector into one empty store and its rows inserted into others by
each baseline, in turn, so that the load of a shared machine falls on all alike. Baselines:
SQLAlchemy Core executemany (what ``bench.collector`` compares with) and COPY on PostgreSQL.

    .venv/bin/python -m bench.ingest [--events 20000] [--only sqlite] [--profile]

``--profile`` prints the collector's top cProfile entries instead. The last line is one JSON
object with the figures.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.collector import BATCH, decisions
from bench.stores import baselines, collected_rows, store
from driftline.collector.consume.ingest import RawMessage
from driftline.collector.consume.isolation import store as collector_store


def messages(count: int) -> list[RawMessage]:
    return [
        RawMessage("bench-ingest", number % 3, number // 3, key, value)
        for number, (key, value) in enumerate(decisions(count))
    ]


def measure(kind: str, batches: list[list[RawMessage]], directory: Path) -> dict[str, Any]:
    """Events per second of the collector and of each baseline, and the ratios."""
    with store(kind, directory, "ingest-source") as source:
        for batch in batches:
            collector_store(source, batch)
        with ExitStack() as stack:
            collected = stack.enter_context(store(kind, directory, "ingest-collector"))
            targets = {
                baseline.name: (
                    baseline,
                    stack.enter_context(store(kind, directory, baseline.name)),
                )
                for baseline in baselines(kind)
            }
            seconds = dict.fromkeys(["collector", *targets], 0.0)
            for batch, rows in zip(batches, collected_rows(source, BATCH), strict=True):
                began = time.perf_counter()
                collector_store(collected, batch)
                seconds["collector"] += time.perf_counter() - began
                for name, (baseline, engine) in targets.items():
                    prepared = baseline.prepare(rows)
                    began = time.perf_counter()
                    baseline.insert(engine, prepared)
                    seconds[name] += time.perf_counter() - began
    events = sum(len(batch) for batch in batches)
    figures: dict[str, Any] = {
        f"{name}_events_per_s": round(events / s) for name, s in seconds.items()
    }
    for name in targets:
        figures[f"vs_{name}"] = round(seconds[name] / seconds["collector"], 3)
    return figures


def profile(kind: str, batches: list[list[RawMessage]], directory: Path) -> None:
    with store(kind, directory, "ingest-profile") as engine:
        profiler = cProfile.Profile()
        profiler.enable()
        for batch in batches:
            collector_store(engine, batch)
        profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--profile", action="store_true")
    options = parser.parse_args()
    raw = messages(options.events)
    batches = [raw[start : start + BATCH] for start in range(0, len(raw), BATCH)]
    figures: dict[str, Any] = {"events": options.events, "batch": BATCH}
    with tempfile.TemporaryDirectory() as directory:
        for kind in ("sqlite", "postgresql"):
            if options.only not in (None, kind):
                continue
            if options.profile:
                profile(kind, batches, Path(directory))
                continue
            figures[kind] = measure(kind, batches, Path(directory))
            print(f"{kind}: {json.dumps(figures[kind])}", flush=True)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

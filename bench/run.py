"""``make bench``: run every benchmark under bench/ and print one table of their figures.

Each script runs in its own process (``python -m bench.<name>``), one after another so that
none measures on a machine another one is loading; its last line of output is its figures.
Every comparison in the table is a ratio against a baseline the same script measured in the
same run. The complete figures of every script are written to ``bench-results.json``.

    .venv/bin/python -m bench.run [--quick] [--only agent,collector,...]

``--quick`` runs each at a small scale (a minute or two in all, to check the scripts work);
the full run takes over 85 minutes on a 2-core machine (51 without bench.text, whose
Evidently part alone ran over 22). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

Figures = dict[str, Any]
Line = tuple[str, str, str, str]  # figure, Driftline, baseline, ratio or verdict

console = Console(stderr=True, width=200)


def _agent(f: Figures) -> list[Line]:
    call = f["record_decision"]
    return [
        ("record_decision median / p99", f"{call['median_us']} / {call['p99_us']} µs",
         f"plain call {f['plain_call']['median_us']} / {f['plain_call']['p99_us']} µs",
         f"adds {f['added_median_us']} / {f['added_p99_us']} µs (goal ≤ 20 / 200)"),
        ("agent to Kafka", f"{f['agent_events_per_s']:,} events/s",
         f"bare kafka-python {f['bare_producer_events_per_s']:,}/s",
         f"{f['agent_vs_bare_throughput']:.0%} (goal ≥ 80%)"),
        ("sidecar 202 on disk, 10 events, median / p99",
         f"{f['sidecar_ack_on_disk']['median_us']} / {f['sidecar_ack_on_disk']['p99_us']} µs",
         f"queued {f['sidecar_ack_queued']['median_us']} / {f['sidecar_ack_queued']['p99_us']} µs",
         f"x{f['on_disk_vs_queued_median']} per request"),
    ]  # fmt: skip


def _collector(f: Figures) -> list[Line]:
    lines = []
    for store in ("sqlite", "postgresql"):
        if store in f:
            s = f[store]
            ratio = f"{s['vs_bare_insert']:.0%}"
            if "vs_copy" in s:
                ratio += f"; {s['vs_copy']:.0%} of COPY"
            if "two_replicas_vs_bare_insert" in s:
                ratio += f"; 2 replicas {s['two_replicas_vs_bare_insert']:.0%}"
            lines += [
                (f"collector ingest, {store}", f"{s['events_per_s']:,} events/s",
                 f"bare insert {s['bare_insert_events_per_s']:,}/s", f"{ratio} (goal ≥ 80%)"),
                (f"collector memory, {store}", f"{s['rss_first_mb']} → {s['rss_last_mb']} MB",
                 f"{f['first_sample_at']:,} → {f['events']:,} events",
                 f"{s['rss_growth_mb']:+} MB (goal ≤ 50)"),
            ]  # fmt: skip
    return lines


def _consume(f: Figures) -> list[Line]:
    return [
        ("reading the log, per event", f"{f['adapter_us_per_event']} µs",
         f"kafka-python poll {f['kafka_python_us_per_event']} µs",
         f"x {f['vs_kafka_python']} the rate"),
    ]  # fmt: skip


def _delay(f: Figures) -> list[Line]:
    return [
        (f"record to queryable at {f['rate_per_s']:,}/s, median / p99",
         f"{f['delay_median_ms']} / {f['delay_p99_ms']} ms",
         f"bare Kafka {f['bare_kafka_median_ms']} / {f['bare_kafka_p99_ms']} ms",
         f"p99 x {f.get('p99_vs_bare_kafka')}; lost {f['lost']}"),
    ]  # fmt: skip


def _detectors(f: Figures) -> list[Line]:
    speed, no_drift, stream = f["speed_100x10k"], f["no_drift"], f["stream"]
    lines = [
        ("drift check, 100 features x 10k rows", f"{speed['check_ms']:.0f} ms",
         f"sorting the window {speed['sort_window_ms']:.0f} ms", f"x {speed['ratio_to_sort']:.1f}"),
        ("false alarms per no-drift check", f"{no_drift['false_alarm_rate_per_check']:.1%}",
         f"{no_drift['checks']:,} checks", "configured 1%"),
        ("detection, 0.1 sd shift at 5k", f"{f['detection_default']['0.1sd@5000']:.0%}",
         "", ""),
        ("false alarms, one categorical, 10 to 5,000 categories",
         f"at most {max(f['cardinality'].values()):.1%}",
         f"{len(f['cardinality'])} cardinalities and shapes", "configured 1%"),
        ("sequential check, delay to 0.5 / 1.0 sd",
         f"{stream['0.5sd']['sequential']['median_delay_decisions']:.0f} / "
         f"{stream['1.0sd']['sequential']['median_delay_decisions']:.0f} decisions",
         f"window check {stream['0.5sd']['window']['median_delay_decisions']:.0f} / "
         f"{stream['1.0sd']['window']['median_delay_decisions']:.0f}",
         f"false alarms {sum(s['sequential']['false_alarms'] for s in stream.values())}"),
    ]  # fmt: skip
    if "speedup_vs_alibi_ks_50" in f:
        lines.append(
            ("check time against peers (50 features)", "",
             "alibi-detect KS, Evidently",
             f"x {f['speedup_vs_alibi_ks_50']:.1f}, x {f['speedup_vs_evidently_50']:.1f} faster")
        )  # fmt: skip
    return lines


def _text(f: Figures) -> list[Line]:
    pooled = f["text_false_alarms"]["pooled"]
    low, high = pooled["expected_interval"]
    peer = f.get("evidently", {})
    peer_null = peer.get("false_alarms_at_1pct", {})
    peer_rate = f"Evidently at 1% {np.mean(list(peer_null.values())):.1%}" if peer_null else ""
    detected = f["text_detection"]
    peer_detected = peer.get("detection_default", {})
    seconds = f["seconds"]["text_check_10000"]
    peer_seconds = peer.get("seconds_per_check", {}).get("text_check_10000")
    return [
        ("text check false alarms, real text", f"{pooled['rate']:.1%} of {pooled['checks']:,}",
         peer_rate, f"configured 1% (95%: {low:.1%} to {high:.1%})"),
        ("text check, 10% new topic at 1,000 / 5,000",
         f"{detected['topic 10%@1000']:.0%} / {detected['topic 10%@5000']:.0%}",
         f"Evidently {peer_detected['topic 10%@1000']:.0%} / {peer_detected['topic 10%@5000']:.0%}"
         if peer_detected else "", "share of windows caught"),
        ("text check, 10,000 texts a side", f"{seconds:.2f} s",
         f"Evidently {peer_seconds:.2f} s" if peer_seconds else "", "goal ≤ 2 s"),
    ]  # fmt: skip


def _audit(f: Figures) -> list[Line]:
    return [
        (f"audit {kind}, {store} at {f['decisions']:,}",
         f"{f[store][kind]['median_ms']} / {f[store][kind]['p99_ms']} ms",
         f"plain SQL p99 {f[store][f'plain_{kind}']['p99_ms']} ms",
         f"p99 x {f[store][f'{kind}_ratio']}")
        for store in ("sqlite", "postgresql") if store in f
        for kind in ("lookup", "page")
    ]  # fmt: skip


def _ui(f: Figures) -> list[Line]:
    return [
        (f"web page {page} at {f['decisions']:,}",
         f"{f[page]['median_ms']} / {f[page]['p99_ms']} ms",
         f"/healthz {f['healthz']['median_ms']} / {f['healthz']['p99_ms']} ms", "goal p99 < 1 s")
        for page in ("overview", "drift", "alerts", "audit", "decision") if page in f
    ]  # fmt: skip


def _soak(f: Figures) -> list[Line]:
    return [
        (f"memory of {name} after {f['events']:,} events", f"{rss['last']} MB",
         f"{rss['first']} MB at {f['first_sample_at']:,}", f"{rss['growth']:+.1f} MB")
        for name, rss in f["rss_mb"].items()
    ]  # fmt: skip


BENCHES: dict[str, tuple[Callable[[Figures], list[Line]], list[str]]] = {
    # name: (its lines in the table, its arguments under --quick)
    "agent": (_agent, ["--calls", "2000", "--events", "5000"]),
    "collector": (_collector, ["--events", "20000"]),
    "consume": (_consume, ["--events", "20000", "--rounds", "1"]),
    "delay": (_delay, ["--rate", "200", "--seconds", "10"]),
    "detectors": (
        _detectors,
        ["--checks", "50", "--trials", "5", "--splits", "50", "--seeds", "5", "--no-peers"],
    ),
    "text": (_text, ["--checks", "20", "--trials", "2", "--no-peers"]),
    "audit": (_audit, ["--decisions", "20000", "--requests", "100"]),
    "ui": (_ui, ["--decisions", "20000", "--requests", "10"]),
    "soak": (_soak, ["--events", "20000"]),
}


def run(name: str, arguments: list[str]) -> Figures:
    """Run one bench; its figures, from its last line."""
    console.print(f"[bold]bench.{name}[/] {' '.join(arguments)}")
    began = time.monotonic()
    finished = subprocess.run(
        [sys.executable, "-m", f"bench.{name}", *arguments],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    figures: Figures = json.loads(finished.stdout.strip().splitlines()[-1])
    console.print(f"  done in {time.monotonic() - began:.0f} s")
    return figures


def machine() -> str:
    memory_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    return f"{os.cpu_count()} cores, {memory_kb / 1024**2:.0f} GiB, {platform.platform()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small scale, to check the scripts")
    parser.add_argument("--only", default="", help="comma-separated bench names")
    options = parser.parse_args()
    names = [name for name in options.only.split(",") if name] or list(BENCHES)
    unknown = sorted(set(names) - set(BENCHES))
    if unknown:
        parser.error(f"unknown bench(es) {', '.join(unknown)}; known: {', '.join(BENCHES)}")
    results: Figures = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
    }
    table = Table(title=f"Driftline benchmarks, {results['date']}, {results['machine']}")
    for heading in ("figure", "Driftline", "baseline (same run)", "ratio / goal"):
        table.add_column(heading)
    for name in names:
        lines, quick = BENCHES[name]
        try:
            results[name] = figures = run(name, quick if options.quick else [])
        except subprocess.CalledProcessError as error:  # the others' figures still count
            results[name] = {"error": f"exited with {error.returncode}"}
            table.add_row(f"bench.{name}", "FAILED", f"exited with {error.returncode}", "")
            continue
        for line in lines(figures):
            table.add_row(*line)
    console.print(table)
    Path("bench-results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results))


if __name__ == "__main__":
    main()

"""Memory of every long-running process after a million events: the whole system as
production runs it, one process per component, each started from its entry point.

``driftline agent`` (the HTTP sidecar) takes the decisions in batches of 500, ``driftline
collect`` stores them (SQLite), ``driftline detect`` checks a baseline fitted from the first
decisions every 5 s, ``driftline route`` reads the log for verdicts (a webhook receiver on
loopback), and ``driftline api`` answers an auditor's search twice a second. Each process's
resident memory is read from /proc when the store holds 100k events (a tenth of them, if
fewer than a million) and at the end; the
figure that matters is the growth between the two.

    .venv/bin/python -m bench.soak [--events 1000000]

The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import Progress
from sqlalchemy import Engine
from sqlmodel import Session

from bench.collector import first_sample_at
from bench.memory import resident_mb
from bench.stores import database_url, sqlite_store, stored_events
from bench.ui import add_baseline
from driftline.agent.provenance import ProducerKey
from driftline.collector.audit import checkpoints
from driftline.collector.audit.access import create_token
from driftline.collector.consume.kafka import ensure_topic
from driftline.collector.core.settings import public_half
from driftline.collector.runtime.broker import EmbeddedBroker, free_port
from tests.http_recorder import recording_server

MODEL, VERSION = "credit-risk", "4"
BATCH = 500
console = Console(stderr=True)
ALERTING = """\
route: {{receiver: on-call, group_by: [model]}}
receivers:
  - name: on-call
    webhook_configs: [{{url: "{url}/hook"}}]
"""


def decision(n: int) -> dict[str, Any]:
    inputs = {
        "income": 20_000 + (n * 7_919) % 150_000,
        "region": "NSEW"[n % 4],
        "debt_ratio": (n * 37 % 100) / 100,
    }
    payload = {
        "inputs": inputs,
        "output": "approve" if n % 3 else "decline",
        "confidence": (n * 13 % 100) / 100,
        "latency_ms": 5.0 + n % 20,
        "automated": True,
    }
    return {"type": "decision", "model": {"name": MODEL, "version": VERSION}, "payload": payload}


@contextmanager
def components(
    engine: Engine, directory: Path, bootstrap_servers: str, webhook: str
) -> Iterator[dict[str, tuple[subprocess.Popen[bytes], int]]]:
    """Every component in its own process: name to (process, port or 0)."""
    alerting = directory / "alerting.yaml"
    alerting.write_text(ALERTING.format(url=webhook))
    key = directory / "signing-key.pem"
    signing = checkpoints.load_signing_key(key, create=True)
    # The API verifies with the public half only, where `up` and `audit keygen` put it.
    checkpoints.write_public_key(public_half(key), signing.public_key())
    producer_key = directory / "producer-key.pem"  # the detector and router sign with it
    ProducerKey.load(producer_key, create=True)
    environment = os.environ | {
        "DRIFTLINE_DATABASE_URL": database_url(engine),
        "DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers,
        "DRIFTLINE_TOPIC": "driftline.events",
        "DRIFTLINE_LOG_LEVEL": "warning",
        "DRIFTLINE_MIGRATE_ON_START": "false",
        "DRIFTLINE_SERVICE": "loan-desk",
        "DRIFTLINE_SPOOL_DIR": str(directory / "agent-spool"),
        "DRIFTLINE_DETECT_INTERVAL_S": "5",
        "DRIFTLINE_DETECT_SPOOL_DIR": str(directory / "detector-spool"),
        "DRIFTLINE_ALERTING_CONFIG": str(alerting),
        "DRIFTLINE_ROUTER_SPOOL_DIR": str(directory / "router-spool"),
        "DRIFTLINE_SIGNING_KEY_FILE": str(key),
        "DRIFTLINE_PRODUCER_KEY_FILE": str(producer_key),
    }
    driftline = str(Path(sys.executable).parent / "driftline")
    agent_port, api_port = free_port(), free_port()
    commands = {
        "agent": ([driftline, "agent", "--port", str(agent_port)], agent_port),
        "collect": ([driftline, "collect"], 0),
        "detect": ([driftline, "detect"], 0),
        "route": ([driftline, "route"], 0),
        "api": ([driftline, "api", "--api-port", str(api_port)], api_port),
    }
    running = {}
    try:
        for name, (command, port) in commands.items():
            running[name] = (subprocess.Popen(command, env=environment), port)
        yield running
    finally:
        for process, _ in running.values():
            process.terminate()
        for process, _ in running.values():
            process.wait(timeout=30)


def wait_until_up(url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            httpx.get(url, timeout=2).raise_for_status()
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def send(agent_url: str, events: int, stop: threading.Event) -> None:
    with httpx.Client(base_url=agent_url, timeout=30) as client:
        for first in range(0, events, BATCH):
            while not stop.is_set():
                answer = client.post(
                    "/v1/events", json=[decision(n) for n in range(first, first + BATCH)]
                )
                if answer.status_code == 202:
                    break
                if answer.status_code != 503:  # 503: the agent's queue is full, come back
                    answer.raise_for_status()
                time.sleep(float(answer.headers.get("Retry-After", "1")))


def audit(api_url: str, token: str, stop: threading.Event) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=api_url, headers=headers, timeout=30) as client:
        while not stop.wait(0.5):
            client.get("/decisions", params={"model": MODEL, "limit": 100}).raise_for_status()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    options = parser.parse_args()
    figures: dict[str, Any] = {"events": options.events}
    stop = threading.Event()
    with (
        EmbeddedBroker() as broker,
        tempfile.TemporaryDirectory() as directory,
        sqlite_store(Path(directory), "soak") as engine,
        recording_server() as receiver,
    ):
        ensure_topic(broker.bootstrap_servers, "driftline.events", partitions=3)
        with Session(engine) as session:
            token = create_token(
                session, name="soak", role="auditor", created_by="bench", now=datetime.now(UTC)
            ).token
            session.commit()
        with components(engine, Path(directory), broker.bootstrap_servers, receiver.url) as ps:
            agent_url = f"http://127.0.0.1:{ps['agent'][1]}"
            api_url = f"http://127.0.0.1:{ps['api'][1]}"
            wait_until_up(f"{agent_url}/healthz")
            wait_until_up(f"{api_url}/healthz")
            sender = threading.Thread(target=send, args=(agent_url, options.events, stop))
            sender.start()
            threading.Thread(target=audit, args=(api_url, token, stop), daemon=True).start()
            memory: dict[str, dict[str, float]] = {name: {} for name in ps}
            first_sample = figures["first_sample_at"] = first_sample_at(options.events)
            baseline_set = False
            began = time.monotonic()
            with Progress(console=console, transient=True) as progress:
                task = progress.add_task("soak", total=options.events)
                while (stored := stored_events(engine)) < options.events:
                    for name, (process, _) in ps.items():
                        if process.poll() is not None:
                            raise RuntimeError(f"driftline {name} exited: {process.returncode}")
                    if not baseline_set and stored >= 5_000:
                        add_baseline(engine, MODEL, VERSION, 5_000)
                        baseline_set = True
                    if not memory["agent"] and stored >= first_sample:
                        memory = {n: {"first": resident_mb(p.pid)} for n, (p, _) in ps.items()}
                    progress.update(task, completed=stored)
                    time.sleep(1)
            stop.set()
            sender.join()
            for name, (process, _) in ps.items():
                memory[name]["last"] = resident_mb(process.pid)
                memory[name]["growth"] = memory[name]["last"] - memory[name]["first"]
            figures["seconds"] = round(time.monotonic() - began)
    figures["rss_mb"] = {
        name: {key: round(value, 1) for key, value in values.items()}
        for name, values in memory.items()
    }
    figures["largest_growth_mb"] = max(v["growth"] for v in figures["rss_mb"].values())
    console.print(figures)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

"""What an auditor waits for at scale: lookup by decision id and a filtered page, through the
API over HTTP, at a million stored decisions, on SQLite and on PostgreSQL.

Each store is filled directly (decisions with their ledger entries, a review on one in ten,
feedback on one in twenty), then served by uvicorn on loopback exactly as `driftline up`
serves it, with token checks and the record of every read. Two baselines are measured in the
same run: the plain SQL a lookup or a page needs at least (one SELECT by primary key, one
filtered SELECT ... LIMIT 100; the ratios say what the API adds on top), and GET /healthz,
the floor of HTTP and FastAPI on this machine.

    .venv/bin/python -m bench.audit [--decisions 1000000] [--requests 1000] [--only sqlite]

PostgreSQL is taken at DRIFTLINE_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test);
the bench makes its own database there and drops it. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.console import Console
from rich.progress import Progress
from sqlalchemy import Engine, bindparam, insert, select, text
from sqlmodel import Session, col

from bench.stores import store
from driftline.collector.audit.access import create_token
from driftline.collector.audit.integrity import KeyRing
from driftline.collector.runtime.broker import free_port
from driftline.collector.store import ledger
from driftline.collector.store.database import make_engine
from driftline.collector.store.models import Decision, Feedback, LedgerEntry, Review
from driftline.collector.web.api.app import create_app

T = TypeVar("T")
START = datetime(2026, 1, 1, tzinfo=UTC)
MODELS = [("credit-risk", "3"), ("credit-risk", "4"), ("fraud", "7"), ("churn", "2")]
BATCH = 10_000
console = Console(stderr=True)


def fill(engine: Engine, decisions: int, seed: int = 1) -> list[uuid.UUID]:
    """``decisions`` decisions over 90 days, chained into 3 ledger partitions; their ids."""
    rng = random.Random(seed)
    ids = []
    chain = [ledger.GENESIS] * 3
    seq = [0, 0, 0]
    recorded = datetime.now(UTC)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"filling {engine.dialect.name}", total=decisions)
        for first in range(0, decisions, BATCH):
            rows, entries, reviews, feedback = [], [], [], []
            for number in range(first, min(first + BATCH, decisions)):
                decision_id, event_id = uuid.uuid4(), uuid.uuid4()
                model, version = MODELS[number % len(MODELS)]
                at = START + timedelta(seconds=number * 90 * 86_400 / decisions)
                inputs = {"income": rng.randrange(10_000, 200_000), "region": rng.choice("NSEW")}
                rows.append(
                    {
                        "decision_id": decision_id, "event_id": event_id, "occurred_at": at,
                        "service": "loan-desk", "model_name": model, "model_version": version,
                        "inputs": inputs, "output": "approve", "confidence": rng.random(),
                        "class_scores": None, "latency_ms": 12.0, "automated": rng.random() < 0.7,
                        "subject_ref": f"applicant-{rng.randrange(decisions // 3)}",
                        "contract_violations": [], "has_violations": False,
                        "trace_id": None, "span_id": None,
                    }
                )  # fmt: skip
                event = {"event_id": str(event_id), "type": "decision", "inputs": inputs}
                event_bytes = ledger.canonical(event)
                partition = number % 3
                digest = hashlib.sha256(event_bytes).digest()
                chain[partition] = ledger.link(chain[partition], digest)
                entries.append(
                    {
                        "topic": "driftline.events", "partition": partition,
                        "seq": seq[partition], "event_id": event_id, "event_type": "decision",
                        "kafka_offset": seq[partition], "event_bytes": event_bytes,
                        "event_digest": digest, "chain_hash": chain[partition],
                        "recorded_at": recorded, "erased_at": None,
                    }
                )  # fmt: skip
                seq[partition] += 1
                if number % 10 == 0:
                    reviews.append(
                        {
                            "event_id": uuid.uuid4(), "decision_id": decision_id,
                            "occurred_at": at + timedelta(hours=1), "reviewer": "a.kim",
                            "action": rng.choice(["approve", "override", "escalate"]),
                            "new_output": None, "rationale": None,
                        }
                    )  # fmt: skip
                if number % 20 == 0:
                    feedback.append(
                        {
                            "event_id": uuid.uuid4(), "decision_id": decision_id,
                            "occurred_at": at + timedelta(days=3), "ground_truth": "approve",
                            "correct": rng.random() < 0.8, "reporter": "ops", "comment": None,
                        }
                    )  # fmt: skip
                ids.append(decision_id)
            with engine.begin() as connection:
                tables = [Decision, LedgerEntry, Review, Feedback]
                for table, batch in zip(tables, [rows, entries, reviews, feedback], strict=True):
                    if batch:
                        connection.execute(insert(table), batch)
            progress.update(task, advance=len(rows))
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
    else:
        with engine.begin() as connection:
            connection.execute(text("ANALYZE"))
    return ids


def timed_ms(call: Callable[[T], Any], items: list[T]) -> dict[str, float]:
    timings = []
    for item in items:
        began = time.perf_counter_ns()
        call(item)
        timings.append((time.perf_counter_ns() - began) / 1e6)
    ordered = sorted(timings)
    return {
        "median_ms": round(statistics.median(ordered), 3),
        "p99_ms": round(ordered[int(len(ordered) * 0.99)], 3),
    }


def page_params(rng: random.Random) -> dict[str, str]:
    """A model version over a random week, 100 decisions a page: an auditor's usual ask."""
    model, version = rng.choice(MODELS)
    since = START + timedelta(days=rng.randrange(0, 83))
    return {
        "model": model,
        "version": version,
        "since": since.isoformat(),
        "until": (since + timedelta(days=7)).isoformat(),
        "limit": "100",
    }


def measure(engine: Engine, ids: list[uuid.UUID], requests: int) -> dict[str, Any]:
    rng = random.Random(2)
    lookups = [rng.choice(ids) for _ in range(requests)]
    pages = [page_params(rng) for _ in range(requests)]
    with Session(engine) as session:
        issued = create_token(
            session, name="bench", role="auditor", created_by="bench", now=datetime.now(UTC)
        )
        session.commit()
    port = free_port()
    # The server gets its own process, as under `driftline up`: sharing this one's interpreter
    # lock with the client would add the client's time to every answer.
    server = multiprocessing.get_context("spawn").Process(
        target=serve, args=(engine.url.render_as_string(hide_password=False), port), daemon=True
    )
    server.start()
    headers = {"Authorization": f"Bearer {issued.token}"}
    figures: dict[str, Any] = {}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as api:
            _wait_until_up(api)
            for warm in lookups[:50]:
                api.get(f"/decisions/{warm}").raise_for_status()
            # The floor of this stack: HTTP, FastAPI and one SELECT 1, no token, no record.
            figures["healthz"] = timed_ms(lambda _: api.get("/healthz").raise_for_status(), pages)
            figures["lookup"] = timed_ms(
                lambda d: api.get(f"/decisions/{d}").raise_for_status(), lookups
            )
            figures["page"] = timed_ms(
                lambda p: api.get("/decisions", params=p).raise_for_status(), pages
            )
        with engine.connect() as connection:
            by_id = select(Decision).where(col(Decision.decision_id) == bindparam("id"))
            figures["plain_lookup"] = timed_ms(
                lambda d: connection.execute(by_id, {"id": d}).one(), lookups
            )
            figures["plain_page"] = timed_ms(
                lambda p: connection.execute(_plain_page(p)).all(), pages
            )
    finally:
        server.terminate()
        server.join(timeout=10)
    figures["lookup_ratio"] = round(
        figures["lookup"]["p99_ms"] / figures["plain_lookup"]["p99_ms"], 1
    )
    figures["page_ratio"] = round(figures["page"]["p99_ms"] / figures["plain_page"]["p99_ms"], 1)
    figures["lookup_p99_under_10ms"] = figures["lookup"]["p99_ms"] < 10
    figures["page_p99_under_50ms"] = figures["page"]["p99_ms"] < 50
    return figures


def serve(database_url: str, port: int) -> None:
    app = create_app(make_engine(database_url), keys=KeyRing.of(Ed25519PrivateKey.generate()))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def _wait_until_up(api: httpx.Client, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            api.get("/healthz").raise_for_status()
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _plain_page(params: dict[str, str]) -> Any:
    return (
        select(Decision)
        .where(
            col(Decision.model_name) == params["model"],
            col(Decision.model_version) == params["version"],
            col(Decision.occurred_at) >= datetime.fromisoformat(params["since"]),
            col(Decision.occurred_at) < datetime.fromisoformat(params["until"]),
        )
        .order_by(col(Decision.occurred_at), col(Decision.decision_id))
        .limit(100)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=1_000)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    options = parser.parse_args()
    figures: dict[str, Any] = {"decisions": options.decisions, "requests": options.requests}
    with tempfile.TemporaryDirectory() as directory:
        for name in ("sqlite", "postgresql"):
            if options.only not in (None, name):
                continue
            with store(name, Path(directory)) as engine:
                began = time.monotonic()
                ids = fill(engine, options.decisions)
                console.print(f"{name}: filled in {time.monotonic() - began:.0f}s")
                figures[name] = measure(engine, ids, options.requests)
                console.print(f"{name}: {json.dumps(figures[name])}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

"""How long the web page takes at scale: every page over HTTP with a million stored decisions,
on SQLite (the embedded default), against GET /healthz measured in the same run.

The store is filled as ``bench.audit`` fills it (decisions over 90 days, reviews on one in ten,
feedback on one in twenty, ledger entries); a baseline fitted from the first decisions of one
version and a drift verdict are added, so that the drift page draws its plots. The server runs
in its own process, as under `driftline up`, with the token check and the record of every read.

    .venv/bin/python -m bench.ui [--decisions 1000000] [--requests 50]

The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine
from sqlmodel import Session, func, select

from bench.audit import _wait_until_up, console, fill, serve, timed_ms
from bench.stores import sqlite_store
from driftline.agent.contract import new_event_id
from driftline.collector.audit.access import create_token, open_ui_session
from driftline.collector.drift.baselines import fit_first_decisions
from driftline.collector.runtime.broker import free_port
from driftline.collector.store.models import BaselineRecord, Decision, DriftVerdict
from driftline.collector.web.api.auth import SESSION_COOKIE

MODEL, VERSION = "credit-risk", "3"
GOAL_MS = 1_000


def add_baseline(engine: Engine, model: str, version: str, first: int) -> str:
    """A baseline fitted from the version's first ``first`` decisions, stored; its id."""
    with Session(engine) as session:
        fitted = fit_first_decisions(session, model, version, first)
        assert fitted is not None
        session.add(
            BaselineRecord(
                event_id=new_event_id(), baseline_id=fitted.baseline_id,
                occurred_at=datetime.now(UTC), service="loan-desk", model_name=model,
                model_version=version, source=fitted.source, set_by="bench", size=first,
                record=fitted.record,
            )
        )  # fmt: skip
        session.commit()
        return fitted.baseline_id


def add_drift(engine: Engine) -> None:
    """A baseline from the version's first 2,000 decisions and one drift verdict on income,
    about the version's last day."""
    baseline_id = add_baseline(engine, MODEL, VERSION, 2_000)
    with Session(engine) as session:
        last = session.exec(
            select(func.max(Decision.occurred_at)).where(
                Decision.model_name == MODEL, Decision.model_version == VERSION
            )
        ).one()
        assert last is not None
        now = datetime.now(UTC)
        session.add(
            DriftVerdict(
                event_id=new_event_id(), occurred_at=now, model_name=MODEL,
                model_version=VERSION, state="detected", baseline_id=baseline_id,
                feature="income", test="ks", statistic=0.2, p_value=1e-9, adjusted_p=1e-8,
                false_alarm_rate=0.01, effect_name="wasserstein_sd", effect=0.4,
                window_start=last - timedelta(hours=12), window_end=last,
                baseline_size=2_000, current_size=2_000,
            )
        )  # fmt: skip
        session.commit()


def measure(engine: Engine, ids: list[uuid.UUID], requests: int) -> dict[str, Any]:
    rng = random.Random(3)
    with Session(engine) as session:
        issued = create_token(
            session, name="bench", role="operator", created_by="bench", now=datetime.now(UTC)
        )
        # Signed in as the login form does: the page's cookie holds a session, not the token.
        signed_in = open_ui_session(
            session, token=issued.record, now=datetime.now(UTC), lasts=timedelta(hours=8)
        )
        session.commit()
    pages = {
        "overview": "/ui/",
        "drift": f"/ui/drift/{MODEL}/{VERSION}",
        "alerts": "/ui/alerts",
        "audit_search": f"/ui/audit?model={MODEL}&review_action=override",
    }
    port = free_port()
    server = multiprocessing.get_context("spawn").Process(
        target=serve, args=(engine.url.render_as_string(hide_password=False), port), daemon=True
    )
    server.start()
    figures: dict[str, Any] = {}
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", cookies={SESSION_COOKIE: signed_in}
        ) as ui:
            _wait_until_up(ui)
            for path in pages.values():
                ui.get(path).raise_for_status()  # warm: templates compiled, caches filled

            def get(path: str) -> None:
                ui.get(path).raise_for_status()

            figures["healthz"] = timed_ms(get, ["/healthz"] * requests)
            for name, path in pages.items():
                figures[name] = timed_ms(get, [path] * requests)
            figures["decision"] = timed_ms(
                get, [f"/ui/decisions/{rng.choice(ids)}" for _ in range(requests)]
            )
    finally:
        server.terminate()
        server.join(timeout=10)
    slowest = max(v["p99_ms"] for k, v in figures.items() if k != "healthz")
    figures["slowest_page_p99_ms"] = slowest
    figures["every_page_p99_under_1s"] = slowest < GOAL_MS
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=50)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory, sqlite_store(Path(directory)) as engine:
        began = time.monotonic()
        ids = fill(engine, options.decisions)
        add_drift(engine)
        console.print(f"filled in {time.monotonic() - began:.0f}s")
        figures = {"decisions": options.decisions, "requests": options.requests}
        figures |= measure(engine, ids, options.requests)
    for name, value in figures.items():
        if isinstance(value, dict):
            console.print(f"{name:>14}: median {value['median_ms']} ms, p99 {value['p99_ms']} ms")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

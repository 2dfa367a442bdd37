"""What ``driftline demo`` does inside the running stack: drive the simulated service through
the agent, check that every event reached the ledger intact, show one decision's trail, then
shift the service's population until the detector worker reports drift, and show its verdicts.
Each step reads its result back through the store or the API, as a user would.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from rich.console import Console
from sqlalchemy import Engine
from sqlmodel import Session

from agent import Driftline
from collector import ledger, queries
from collector.simulation import MODEL, SERVICE, VERSION, run_simulation
from collector.stack import Stack

SHIFT_BATCH = 250
# What the simulated service records; the detector worker's events share the ledger.
SERVICE_EVENTS = ("decision", "review", "feedback", "model_deployed")


class DemoFailed(RuntimeError):
    """A step of the demo did not do what it should; the message says which."""


def run_demo(stack: Stack, console: Console, *, decisions: int, shifted: int) -> None:
    assert stack.engine is not None
    before = _ledger_size(stack.engine)
    with _service_agent(stack) as agent:
        started = time.monotonic()
        result = run_simulation(agent, decisions=decisions)
        console.print(
            f"[green]✓[/] simulated service [bold]{SERVICE}[/] recorded "
            f"{len(result.decisions)} decisions, {len(result.reviewed)} reviews, "
            f"{len(result.with_feedback)} feedback ({result.events} events) "
            f"in {time.monotonic() - started:.1f}s"
        )
        report = agent.flush(timeout_s=60)
    if not report.ok:
        raise DemoFailed(f"the agent did not deliver every event: {report}")
    console.print(f"[green]✓[/] agent delivered {report.delivered} events to Kafka")
    stored = _wait_for_ledger(stack.engine, before + report.delivered, timeout_s=90)
    if stored - before != report.delivered:
        raise DemoFailed(f"the collector stored {stored - before} of {report.delivered} events")
    console.print(f"[green]✓[/] collector stored those {stored - before} events in the ledger")
    with Session(stack.engine) as session:
        verification = ledger.verify(session)
    state = "intact" if verification.intact else f"BROKEN: {verification.breaks}"
    console.print(
        f"[green]✓[/] ledger: {verification.chains} hash chains, "
        f"{verification.entries} entries, {state}"
    )
    chosen = next(d for d in result.decisions if d in result.reviewed and d in result.with_feedback)
    _show_trail(console, stack.api_url, chosen)
    if shifted:
        _show_drift(console, stack, decisions, shifted)


def _service_agent(stack: Stack) -> Driftline:
    return Driftline(
        service=SERVICE, kafka_bootstrap_servers=stack.bootstrap_servers, topic=stack.settings.topic
    )


def _show_drift(console: Console, stack: Stack, decisions: int, shifted: int) -> None:
    """Shift the simulated population, in batches as a live service would, until the detector
    worker reports drift; then show its verdicts as the API gives them."""
    console.rule("drift")
    url = f"{stack.api_url}/drift/{MODEL}/{VERSION}"
    status = _wait_for_json(url, lambda _: True, timeout_s=60)
    if status is None:
        raise DemoFailed(f"the detector set no baseline for {MODEL} {VERSION} within 60 s")
    baseline = status["baseline"]
    console.print(
        f"[green]✓[/] detector set baseline {baseline['baseline_id'][:12]} from the "
        f"{baseline['source']} ({len(baseline['features'])} features)"
    )
    sent, drifting = 0, None
    with _service_agent(stack) as agent:
        while drifting is None and sent < shifted:
            batch = min(SHIFT_BATCH, shifted - sent)
            first = decisions + sent
            run_simulation(
                agent, decisions=batch, seed=first, shifted=True, deploy=False, first_number=first
            )
            sent += batch
            agent.flush(timeout_s=30)
            drifting = _wait_for_json(url, lambda s: s["state"] == "drifting", timeout_s=3)
    console.print(
        f"[green]✓[/] simulated service sent {sent} decisions on applicants with more debt; "
        "its model hedges"
    )
    drifting = drifting or _wait_for_json(url, lambda s: s["state"] == "drifting", timeout_s=10)
    if drifting is None:
        raise DemoFailed("the detector reported no drift")
    for check in drifting["drifting"]:
        verdict = check["verdict"]
        effect = "unbounded" if verdict["effect"] is None else f"{verdict['effect']:.3g}"
        console.print(
            f"[red]✗ drift detected[/] {check['feature']} ({check['test']}): adjusted p "
            f"{verdict['adjusted_p']:.2g}, {verdict['effect_name']} {effect}, "
            f"window of {verdict['current_size']} decisions"
        )
    console.print(f"GET /drift/{MODEL}/{VERSION} gives every check and the verdict history")


def _wait_for_json(url: str, done: Callable[[Any], bool], timeout_s: float) -> Any:
    """The JSON at ``url`` once it answers 200 and ``done`` holds; None at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = httpx.get(url, timeout=10)
        if response.status_code == 200 and done(body := response.json()):
            return body
        if time.monotonic() > deadline:
            return None
        time.sleep(0.25)


def _ledger_size(engine: Engine) -> int:
    with Session(engine) as session:
        return queries.count_ledger_entries(session=session, event_types=SERVICE_EVENTS)


def _wait_for_ledger(engine: Engine, target: int, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    size = _ledger_size(engine)
    while size < target and time.monotonic() < deadline:
        time.sleep(0.2)
        size = _ledger_size(engine)
    return size


def _show_trail(console: Console, api_url: str, decision_id: uuid.UUID) -> None:
    response = httpx.get(f"{api_url}/decisions/{decision_id}", timeout=10)
    if response.status_code != 200:
        raise DemoFailed(
            f"GET /decisions/{decision_id} answered {response.status_code}: {response.text}"
        )
    console.rule(f"GET /decisions/{decision_id}")
    console.print_json(json.dumps(response.json()))

"""What ``driftline demo`` does inside the running stack: drive the simulated service through
the agent, check that every event reached the ledger intact, show one decision's trail, then
run the golden evaluation set against the live model and a changed one, agree the go-live
thresholds and show the gate's verdict (``demo_golive``), then shift the service's population
until the detector worker reports drift, and show its verdicts.
Then a simulated chat service: its tokens and cost, and a change of its users' topic and length
until the worker reports the text drift, with the words that moved. Each step reads its result
back through the store or the API, as a user would.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from rich.console import Console
from sqlalchemy import Engine
from sqlmodel import Session

from driftline.agent import Driftline
from driftline.collector.audit.access import create_token, free_name
from driftline.collector.audit.checkpoints import public_key_from_pem
from driftline.collector.audit.proofs import check_proof
from driftline.collector.runtime import chat_simulation as chat
from driftline.collector.runtime.demo_golive import show_golive
from driftline.collector.runtime.simulation import MODEL, SERVICE, VERSION, run_simulation
from driftline.collector.runtime.stack import Stack
from driftline.collector.store import queries

SHIFT_BATCH = 250
# What the simulated service records; the detector worker's events share the ledger.
SERVICE_EVENTS = ("decision", "review", "feedback", "model_deployed")


class DemoFailed(RuntimeError):
    """A step of the demo did not do what it should; the message says which."""


def run_demo(
    stack: Stack, console: Console, *, decisions: int, shifted: int, chats: int = 0
) -> None:
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
    with _api_client(stack) as api:
        _show_integrity(console, api)
        chosen = next(
            d for d in result.decisions if d in result.reviewed and d in result.with_feedback
        )
        _show_trail(console, api, chosen)
        _show_proof(console, api, chosen)
        show_golive(console, stack, _wait_until)
        if shifted:
            _show_drift(console, stack, api, decisions, shifted)
        if chats:
            _show_chat(console, stack, api, chats)


def _api_client(stack: Stack) -> httpx.Client:
    """An API client with an operator token made for the demo (the demo signs a checkpoint)."""
    assert stack.engine is not None
    with Session(stack.engine) as session:
        issued = create_token(
            session,
            name=free_name(session, "demo"),  # the store may have run the demo before
            role="operator",
            created_by="driftline demo",
            now=datetime.now(UTC),
        )
        session.commit()
    return httpx.Client(
        base_url=stack.api_url, headers={"Authorization": f"Bearer {issued.token}"}, timeout=10
    )


def _show_integrity(console: Console, api: httpx.Client) -> None:
    signed = _json(api.post("/integrity/checkpoints"), "POST /integrity/checkpoints")
    report = _json(api.get("/integrity/verify"), "GET /integrity/verify")
    if not report["intact"]:
        raise DemoFailed(f"the ledger does not verify: {report['breaks']}")
    console.print(
        f"[green]✓[/] signed {len(signed)} checkpoints (Ed25519); GET /integrity/verify: "
        f"{report['chains']} hash chains, {report['entries']} entries and "
        f"{report['rows_checked']} served rows, intact"
    )


def _show_proof(console: Console, api: httpx.Client, decision_id: uuid.UUID) -> None:
    proof = _json(api.get(f"/decisions/{decision_id}/proof"), "GET /decisions/{id}/proof")
    public_key = public_key_from_pem(proof["public_key"].encode(), "the proof's public key")
    problems = check_proof(proof, public_key)
    if problems:
        raise DemoFailed(f"the proof of {decision_id} does not hold: {problems}")
    console.print(
        f"[green]✓[/] GET /decisions/{decision_id}/proof: the event and "
        f"{len(proof['following_leaves'])} later entries hash to the signed checkpoint, "
        "checked offline with the public key"
    )


def _json(response: httpx.Response, what: str) -> Any:
    if response.is_error:
        raise DemoFailed(f"{what} answered {response.status_code}: {response.text}")
    return response.json()


def _service_agent(stack: Stack, service: str = SERVICE) -> Driftline:
    """The simulated service's agent. It also plays the service's release pipeline, which
    records the deployment, so it holds the stack's producer key: a real service's does not."""
    return Driftline(
        service=service, kafka_bootstrap_servers=stack.bootstrap_servers,
        topic=stack.settings.topic, producer_key_file=stack.settings.producer_key_file,
    )  # fmt: skip


def _show_drift(
    console: Console, stack: Stack, api: httpx.Client, decisions: int, shifted: int
) -> None:
    """Shift the simulated population, in batches as a live service would, until the detector
    worker reports drift; then show its verdicts as the API gives them."""
    console.rule("drift")
    url = f"/drift/{MODEL}/{VERSION}"
    status = _wait_for_json(api, url, lambda _: True, timeout_s=60)
    if status is None:
        raise DemoFailed(f"the detector set no baseline for {MODEL} {VERSION} within 60 s")
    baseline = status["baseline"]
    console.print(
        f"[green]✓[/] detector set baseline {baseline['baseline_id'][:12]} from the "
        f"{baseline['source']} ({len(baseline['features'])} features)"
    )

    def shifted_batch(agent: Driftline, sent: int, batch: int) -> None:
        first = decisions + sent
        run_simulation(
            agent, decisions=batch, seed=first, shifted=True, deploy=False, first_number=first
        )

    with _service_agent(stack) as agent:
        sent, drifting = _shift_until(api, url, _drifts, agent, shifted_batch, shifted)
    console.print(
        f"[green]✓[/] simulated service sent {sent} decisions on applicants with more debt; "
        "its model hedges"
    )
    if drifting is None:
        raise DemoFailed("the detector reported no drift")
    _print_verdicts(console, drifting, window=True)
    console.print(f"GET /drift/{MODEL}/{VERSION} gives every check and the verdict history")


def _show_chat(console: Console, stack: Stack, api: httpx.Client, chats: int) -> None:
    """The chat service's decisions with their tokens and cost as the API prices them, then its
    users' change of topic, in batches, until the worker reports the text drift."""
    console.rule("a generative service")
    with _service_agent(stack, chat.SERVICE) as agent:
        result = chat.run_chat(agent, decisions=chats)
        if not agent.flush(timeout_s=60).ok:
            raise DemoFailed("the chat service's agent did not deliver every event")
    found = _wait_for_json(
        api, "/decisions", lambda page: len(page["items"]) == min(chats, 500), timeout_s=60,
        params={"model": chat.MODEL, "limit": 500},
    )  # fmt: skip
    if found is None:
        raise DemoFailed("the chat service's decisions did not reach the API")
    priced = [item["cost"] for item in found["items"] if item["cost"] is not None]
    currency = found["items"][0]["currency"]
    console.print(
        f"[green]✓[/] simulated chat service [bold]{chat.SERVICE}[/] recorded {chats} answers "
        f"by {chat.PROVIDER} {chat.RESPONSE_MODEL} ({result.judged} judged with named scores): "
        f"{result.input_tokens:,} tokens in ({chat.SYSTEM_TOKENS} a question from the cache), "
        f"{result.output_tokens:,} out; GET /decisions prices its first {len(priced)} at "
        f"{sum(priced):.4f} {currency}, {sum(priced) / max(1, len(priced)) * 1_000:.3f} "
        f"{currency} per thousand answers"
    )
    url = f"/drift/{chat.MODEL}/{chat.VERSION}"
    if _wait_for_json(api, url, lambda _: True, timeout_s=60) is None:
        raise DemoFailed(f"the detector set no baseline for {chat.MODEL} within 60 s")

    def travel_batch(agent: Driftline, sent: int, batch: int) -> None:
        chat.run_chat(agent, decisions=batch, seed=chats + sent, shifted=True)

    with _service_agent(stack, chat.SERVICE) as agent:
        sent, drifting = _shift_until(api, url, _text_drifts, agent, travel_batch, chats)
    if drifting is None:
        raise DemoFailed("the detector reported no text drift of the chat service")
    console.print(
        f"[green]✓[/] chat users asked {sent} questions about travel, three times as long"
    )
    _print_verdicts(console, drifting, window=False)


def _shift_until(
    api: httpx.Client,
    url: str,
    done: Callable[[Any], bool],
    agent: Driftline,
    send: Callable[[Driftline, int, int], None],
    most: int,
) -> tuple[int, Any]:
    """Send shifted batches (``send(agent, sent so far, batch)``), as a live service would,
    until the drift status at ``url`` is ``done`` or ``most`` are sent; how many were sent, and
    the status (None if it never was)."""
    sent, status = 0, None
    while status is None and sent < most:
        batch = min(SHIFT_BATCH, most - sent)
        send(agent, sent, batch)
        sent += batch
        agent.flush(timeout_s=30)
        status = _wait_for_json(api, url, done, timeout_s=3)
    return sent, status or _wait_for_json(api, url, done, timeout_s=10)


def _print_verdicts(console: Console, status: Any, *, window: bool) -> None:
    """Each drifting check as the API gives it, with the words (or shift) that moved."""
    for check in status["drifting"]:
        verdict = check["verdict"]
        effect = "unbounded" if verdict["effect"] is None else f"{verdict['effect']:.3g}"
        size = f", window of {verdict['current_size']} decisions" if window else ""
        console.print(
            f"[red]✗ drift detected[/] {check['feature']} ({check['test']}): adjusted p "
            f"{verdict['adjusted_p']:.2g}, {verdict['effect_name']} {effect}{size}"
        )
        for line in (verdict.get("evidence") or [])[:6]:
            console.print(f"    {line}")


def _drifts(status: Any) -> bool:
    return bool(status["state"] == "drifting")


def _text_drifts(status: Any) -> bool:
    return status["state"] == "drifting" and any(
        check["test"] == "domain-classifier" for check in status["drifting"]
    )


def _wait_for_json(
    api: httpx.Client,
    url: str,
    done: Callable[[Any], bool],
    timeout_s: float,
    params: dict[str, Any] | None = None,
) -> Any:
    """The JSON at ``url`` once it answers 200 and ``done`` holds; None at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = api.get(url, params=params)
        if response.status_code == 200 and done(body := response.json()):
            return body
        if time.monotonic() > deadline:
            return None
        time.sleep(0.25)


def _wait_until(check: Callable[[], bool], what: str, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise DemoFailed(f"{what}: not there after {timeout_s:g} s")
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


def _show_trail(console: Console, api: httpx.Client, decision_id: uuid.UUID) -> None:
    lineage = _json(api.get(f"/decisions/{decision_id}"), f"GET /decisions/{decision_id}")
    console.rule(f"GET /decisions/{decision_id}")
    console.print_json(json.dumps(lineage))

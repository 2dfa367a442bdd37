"""The HTTP sidecar: events from any language travel like SDK events, join the caller's trace,
and bad ones are answered with the field and reason; health, readiness and metrics."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from agent import Driftline
from agent.contract import DecisionEvent, ReviewEvent, decode
from agent.sidecar import create_sidecar
from collector.broker import EmbeddedBroker, free_port
from tests.topic_reader import read_topic

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
DECISION = {
    "type": "decision",
    "model": {"name": "credit-risk", "version": "3"},
    "payload": {
        "inputs": {"income": 52_000, "contact": "jane.doe@example.com"},
        "output": "approve",
        "confidence": 0.91,
        "latency_ms": 12.5,
        "automated": True,
    },
}


@pytest.fixture
def driftline(broker: EmbeddedBroker, topic: str) -> Iterator[Driftline]:
    agent = Driftline(
        service="java-service", kafka_bootstrap_servers=broker.bootstrap_servers, topic=topic
    )
    yield agent
    agent.close(timeout_s=5)


@pytest.fixture
def sidecar(driftline: Driftline) -> TestClient:
    return TestClient(create_sidecar(driftline))


def test_a_decision_joins_the_callers_trace_and_is_redacted(
    sidecar: TestClient, driftline: Driftline, broker: EmbeddedBroker, topic: str
) -> None:
    response = sidecar.post("/v1/events", json=DECISION, headers={"traceparent": TRACEPARENT})

    assert response.status_code == 202
    (ids,) = response.json()["accepted"]
    assert driftline.flush().delivered == 1
    event = decode(read_topic(broker.bootstrap_servers, topic, 1)[0].value)
    assert isinstance(event, DecisionEvent)
    assert str(event.decision_id) == ids["decision_id"]
    assert event.service == "java-service"
    assert event.trace_id == TRACE_ID
    assert event.payload.inputs["contact"] == "[email]"


def test_a_batch_keeps_its_order_per_decision(
    sidecar: TestClient, driftline: Driftline, broker: EmbeddedBroker, topic: str
) -> None:
    decision_id = "01a2013c-c392-7246-a8d7-dd63790c6e47"
    review = {
        "type": "review",
        "model": DECISION["model"],
        "decision_id": decision_id,
        "payload": {"reviewer": "a.kim", "action": "approve"},
    }
    response = sidecar.post("/v1/events", json=[DECISION | {"decision_id": decision_id}, review])

    assert response.status_code == 202 and len(response.json()["accepted"]) == 2
    assert driftline.flush().delivered == 2
    records = sorted(read_topic(broker.bootstrap_servers, topic, 2), key=lambda r: r.offset)
    assert [type(decode(r.value)) for r in records] == [DecisionEvent, ReviewEvent]
    assert len({r.partition for r in records}) == 1


def test_a_bad_event_is_answered_with_its_field_and_nothing_is_recorded(
    sidecar: TestClient, driftline: Driftline
) -> None:
    bad = DECISION | {"payload": DECISION["payload"] | {"confidence": 2}}
    response = sidecar.post("/v1/events", json=[DECISION, bad])

    assert response.status_code == 422
    assert response.json()["detail"] == [
        {
            "event": 1,
            "field": "payload.confidence",
            "reason": "Input should be less than or equal to 1",
        }
    ]
    assert driftline.flush().recorded == 0


def test_health_readiness_and_metrics(sidecar: TestClient, driftline: Driftline) -> None:
    sidecar.post("/v1/events", json=DECISION)
    driftline.flush()

    assert sidecar.get("/healthz").json() == {"status": "ok"}
    assert sidecar.get("/readyz").status_code == 200
    metrics = sidecar.get("/metrics").text
    assert "driftline_agent_events_delivered_total 1.0" in metrics
    assert "driftline_agent_redactions_total 1.0" in metrics
    assert "driftline_agent_spool_events 0.0" in metrics
    assert "driftline_agent_send_latency_seconds_count 1.0" in metrics


def test_a_misconfigured_sidecar_is_not_ready_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DRIFTLINE_SERVICE", raising=False)
    sidecar = TestClient(create_sidecar(Driftline()))

    response = sidecar.get("/readyz")

    assert response.status_code == 503
    assert "DRIFTLINE_SERVICE" in response.json()["reason"]


def test_driftline_agent_serves_over_http(broker: EmbeddedBroker, topic: str) -> None:
    port = free_port()
    env = os.environ | {
        "DRIFTLINE_SERVICE": "go-service",
        "DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "DRIFTLINE_TOPIC": topic,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "collector", "agent", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert httpx.post(f"{url}/v1/events", json=DECISION).status_code == 202
        event = decode(read_topic(broker.bootstrap_servers, topic, 1)[0].value)
        assert event.service == "go-service"
    finally:
        process.terminate()
        process.wait(timeout=15)

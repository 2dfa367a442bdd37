"""The HTTP sidecar: events from any language travel like SDK events, join the caller's trace,
and bad ones are answered with the field and reason; health, readiness and metrics."""

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from driftline.agent import Driftline
from driftline.agent.contract import MAX_EVENT_BYTES, DecisionEvent, ReviewEvent, decode
from driftline.agent.sidecar import MAX_BODY_BYTES, create_sidecar
from driftline.collector.runtime.broker import EmbeddedBroker, free_port
from tests.topic_reader import read_topic
from tests.waiting import wait_for

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
    return TestClient(create_sidecar(driftline), base_url="http://localhost:8686")


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
    labels = '{model="credit-risk",service="java-service"}'
    assert f"driftline_agent_events_delivered_total{labels} 1.0" in metrics
    assert f"driftline_agent_redactions_total{labels} 1.0" in metrics
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
        "DRIFTLINE_SIDECAR_PORT": str(port),  # a setting, as every other (--port overrides)
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "driftline", "agent"],
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


def test_an_oversize_event_or_body_is_refused_with_413_naming_the_limit(
    sidecar: TestClient, driftline: Driftline
) -> None:
    huge = DECISION | {"payload": DECISION["payload"] | {"inputs": {"p": "x" * MAX_EVENT_BYTES}}}
    response = sidecar.post("/v1/events", json=[DECISION, huge])
    assert response.status_code == 413
    assert f"{MAX_EVENT_BYTES:,} bytes" in response.json()["detail"]
    assert "event 1" in response.json()["detail"]

    body = b"[" + b",".join([json.dumps(DECISION).encode()] * 1) + b" " * MAX_BODY_BYTES + b"]"
    response = sidecar.post(
        "/v1/events", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert f"{MAX_BODY_BYTES:,} bytes" in response.json()["detail"]
    assert driftline.flush().recorded == 0


@pytest.mark.parametrize(
    ("inputs", "field", "reason"),
    [
        ({"note": "a\u0000b"}, "payload.inputs.note", "NUL"),
        ({"a\u0000b": 1}, "payload.inputs.'a\\x00b'", "NUL"),
        ({"v": json.loads("[" * 70 + "1" + "]" * 70)}, "payload.inputs.v", "deeper"),
    ],
)
def test_a_nul_or_deep_nesting_is_refused_with_the_field(
    sidecar: TestClient, driftline: Driftline, inputs: dict[str, object], field: str, reason: str
) -> None:
    bad = DECISION | {"payload": DECISION["payload"] | {"inputs": inputs}}
    response = sidecar.post("/v1/events", json=bad)
    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert problem["field"].startswith(field) and reason in problem["reason"], problem
    assert driftline.flush().recorded == 0


def test_json_nested_10000_deep_is_a_422_not_a_crash(sidecar: TestClient) -> None:
    body = b'{"type":"decision","x":' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    response = sidecar.post(
        "/v1/events", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert "recursion limit" in response.json()["detail"][0]["reason"]


SIDECAR_ACK_ON_DISK = {"DRIFTLINE_SIDECAR_ACK": "on_disk", "DRIFTLINE_DELIVERY_TIMEOUT_MS": "1000"}


def test_with_ack_on_disk_a_202_survives_a_kill(
    broker: EmbeddedBroker, topic: str, tmp_path: Path
) -> None:
    """DRIFTLINE_SIDECAR_ACK=on_disk: every event answered 202 is on disk. The sidecar, whose
    broker is unreachable, is killed with SIGKILL right after the last 202; an agent started
    on its spool with the broker back delivers every one of them."""
    spool = tmp_path / "sidecar-spool"
    port = free_port()
    env = (
        os.environ
        | SIDECAR_ACK_ON_DISK
        | {
            "DRIFTLINE_SERVICE": "go-service",
            "DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
            "DRIFTLINE_TOPIC": topic,
            "DRIFTLINE_SPOOL_DIR": str(spool),
        }
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "driftline", "agent", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    accepted: list[str] = []
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(f"{url}/healthz"), bool, 30, "the sidecar")
        with httpx.Client(base_url=url) as client:
            for _ in range(100):
                response = client.post("/v1/events", json=[DECISION] * 10)
                assert response.status_code == 202
                accepted += [ids["event_id"] for ids in response.json()["accepted"]]
    finally:
        process.kill()
        process.wait(timeout=15)
    assert len(accepted) == 1_000

    with Driftline(
        service="go-service", kafka_bootstrap_servers=broker.bootstrap_servers, topic=topic,
        spool_dir=spool,
    ) as restarted:  # fmt: skip
        report = restarted.flush(timeout_s=60)
    assert report.delivered == 1_000, report
    delivered = {
        str(decode(r.value).event_id) for r in read_topic(broker.bootstrap_servers, topic, 1_000)
    }
    assert delivered == set(accepted)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url).status_code == 200
    except httpx.TransportError:
        return False


@pytest.mark.parametrize(
    "kind",
    ["model_deployed", "baseline_set", "drift_detected", "drift_resolved", "readiness_evaluated",
     "load_tested", "drill_completed", "alert_notified", "evaluation_set_registered",
     "evaluation_case_scored", "evaluation_completed", "thresholds_agreed"],
)  # fmt: skip
def test_governance_events_are_refused_whatever_their_payload(
    sidecar: TestClient, driftline: Driftline, kind: str
) -> None:
    """Whoever reaches the sidecar cannot post what only Driftline's components write: a
    go-live verdict, a deployment naming any owner, a passing load test, a baseline..."""
    forged = {"type": kind, "model": DECISION["model"], "payload": {"version": "3"}}
    response = sidecar.post("/v1/events", json=[DECISION, forged])
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {"event": 1, "field": "type", "reason": f"{kind} events are written by Driftline only"}
    ]
    assert driftline.flush().recorded == 0


@pytest.mark.parametrize("kind", [["model_deployed"], {"decision": 1}, 7, None])
def test_a_type_that_is_not_a_name_is_a_422_naming_it_not_a_crash(
    sidecar: TestClient, driftline: Driftline, kind: object
) -> None:
    response = sidecar.post("/v1/events", json=DECISION | {"type": kind})
    assert response.status_code == 422
    assert [problem["field"] for problem in response.json()["detail"]] == ["type"]
    assert driftline.flush().recorded == 0


def test_the_sidecar_records_for_its_own_service_only(
    sidecar: TestClient, driftline: Driftline
) -> None:
    response = sidecar.post("/v1/events", json=DECISION | {"service": "payments"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "service"
    assert "'java-service' only, not 'payments'" in response.json()["detail"][0]["reason"]
    assert (
        sidecar.post("/v1/events", json=DECISION | {"service": "java-service"}).status_code == 202
    )


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"host": "evil.example:8686"}, 403),  # DNS rebinding: the page's name, our address
        ({"origin": "https://evil.example"}, 403),  # a browser, whatever the host
        ({"content-type": "text/plain"}, 415),  # a "simple" cross-site POST needs no preflight
    ],
)
def test_a_browser_or_a_rebound_name_cannot_post_events(
    sidecar: TestClient, driftline: Driftline, headers: dict[str, str], status: int
) -> None:
    response = sidecar.post(
        "/v1/events",
        content=json.dumps(DECISION),
        headers={"content-type": "application/json"} | headers,
    )
    assert response.status_code == status
    assert driftline.flush().recorded == 0


def test_an_allowed_host_may_post(driftline: Driftline) -> None:
    sidecar = TestClient(
        create_sidecar(driftline, allowed_hosts=["loan-desk.pod"]), base_url="http://loan-desk.pod"
    )
    assert sidecar.post("/v1/events", json=DECISION).status_code == 202
    assert sidecar.get("/readyz").status_code == 200  # probes come by the pod's address


def test_with_ack_on_disk_only_what_reached_the_disk_is_acknowledged(tmp_path: Path) -> None:
    """A spool with room for part of a request: the answer is 503, and the ids it lists are
    exactly the events on disk."""
    agent = Driftline(
        service="java-service",
        kafka_bootstrap_servers=f"127.0.0.1:{free_port()}",
        spool_dir=tmp_path / "small-spool",
        spool_max_bytes=100_000,
        sidecar_ack="on_disk",
    )
    try:
        sidecar = TestClient(create_sidecar(agent), base_url="http://localhost")
        response = sidecar.post("/v1/events", json=[DECISION] * 400)
        report = agent.flush(timeout_s=0.1)
    finally:
        agent.close(timeout_s=1)
    assert response.status_code == 503
    assert 0 < len(response.json()["accepted"]) == report.spooled < 400

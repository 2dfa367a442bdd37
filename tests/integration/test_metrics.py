"""Each component's own metrics: every name passes `promtool check metrics` (Debian's
prometheus package, which .ci/run installs), and each moves when its cause happens, through
the real broker, store and an HTTP server on loopback standing in for a receiver. Health says
what is wrong: a database that fails is named in /healthz and /readyz."""

import json
import shutil
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from kafka import KafkaProducer
from prometheus_client import REGISTRY
from sqlalchemy import Engine
from sqlmodel import Session

from driftline.agent import Driftline
from driftline.agent.contract import encode
from driftline.agent.sidecar import create_sidecar
from driftline.collector.alerting.alerts import Alert
from driftline.collector.alerting.config import Receiver, WebhookConfig
from driftline.collector.alerting.grouping import Notification
from driftline.collector.alerting.outbox import OutboxSender, enqueue
from driftline.collector.consume.consumer import Collector
from driftline.collector.core.health import Heartbeat, serve_health
from driftline.collector.core.settings import CollectorSettings
from driftline.collector.drift.worker import DetectorWorker
from driftline.collector.runtime.broker import EmbeddedBroker, free_port
from tests import events
from tests.api_client import api_client
from tests.collector.test_drift_worker import shifted_decisions
from tests.http_recorder import recording_server
from tests.waiting import wait_for

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (.ci/run installs Debian's prometheus)"
)


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def promtool_check(exposition: str) -> None:
    assert PROMTOOL is not None
    checked = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=exposition, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


@needs_promtool
def test_every_component_s_metrics_pass_promtool(engine: Engine, tmp_path: Path) -> None:
    """One process holds the collector's, the detector's, the router's and the API's metrics
    (as `driftline up` does); the sidecar agent serves its own."""
    api = api_client(engine, "auditor")
    assert api.get("/decisions").status_code == 200
    served = api.get("/metrics")
    assert served.status_code == 200  # open, as /healthz is: counts and route templates only
    for name in (
        "driftline_collector_events_stored_total", "driftline_collector_consumer_lag_messages",
        "driftline_collector_dead_letters_total", "driftline_collector_batch_seconds",
        "driftline_collector_commit_seconds", "driftline_detector_checks_total",
        "driftline_detector_verdicts_total", "driftline_detector_check_seconds",
        "driftline_router_outbox_pending_messages", "driftline_router_sends_total",
        "driftline_router_delivery_seconds", "driftline_api_requests_total",
        "driftline_api_request_seconds",
    ):  # fmt: skip
        assert f"# TYPE {name} " in served.text, name
    promtool_check(served.text)
    with Driftline(service="s", kafka_bootstrap_servers="127.0.0.1:1", spool_dir=tmp_path) as a:
        promtool_check(TestClient(create_sidecar(a)).get("/metrics").text)


def test_api_requests_are_counted_by_route_template_and_status(engine: Engine) -> None:
    api = api_client(engine, "auditor")
    route = {"route": "/decisions/{decision_id}", "status": "404"}
    before = value("driftline_api_requests_total", **route)
    unmatched = value("driftline_api_requests_total", route="(unmatched)", status="404")
    assert api.get(f"/decisions/{events.new_event_id()}").status_code == 404
    assert api.get("/no/such/path").status_code == 404
    assert value("driftline_api_requests_total", **route) == before + 1
    assert value("driftline_api_requests_total", route="(unmatched)", status="404") == (
        unmatched + 1
    )


def test_the_collector_counts_what_it_stores_and_keeps_and_its_lag(
    broker: EmbeddedBroker, topic: str, engine: Engine
) -> None:
    stored = value("driftline_collector_events_stored_total")
    undecodable = value("driftline_collector_dead_letters_total", reason="undecodable")
    batches = value("driftline_collector_batch_seconds_count")
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers)
    for raw in (encode(events.decision()), b"not json", encode(events.decision())):
        producer.send(topic, value=raw, partition=0).get(timeout=10)
    producer.close()
    stop, heartbeat = threading.Event(), Heartbeat(stale_after_s=60)
    collector = Collector(
        engine=engine, bootstrap_servers=broker.bootstrap_servers, topic=topic,
        group_id=f"collector-{topic}",
    )  # fmt: skip
    thread = threading.Thread(target=collector.run, args=(stop, heartbeat), daemon=True)
    thread.start()
    try:
        wait_for(
            lambda: value("driftline_collector_events_stored_total"), lambda v: v >= stored + 2
        )
        assert value("driftline_collector_dead_letters_total", reason="undecodable") == (
            undecodable + 1
        )
        assert value("driftline_collector_batch_seconds_count") > batches
        lag = {"topic": topic, "partition": "0"}
        lag_now = REGISTRY.get_sample_value
        wait_for(lambda: lag_now("driftline_collector_consumer_lag_messages", lag),
                 lambda v: v == 0, what="the lag at the end of the partition")  # fmt: skip
        assert heartbeat.faults == {}
    finally:
        stop.set()
        thread.join(timeout=15)


def test_the_detector_counts_its_checks_and_verdicts(
    broker: EmbeddedBroker, topic: str, engine: Engine, tmp_path: Path
) -> None:
    shifted_decisions(engine)
    checks, detected = (
        value("driftline_detector_checks_total"),
        value("driftline_detector_verdicts_total", state="detected"),
    )
    settings = CollectorSettings(
        topic=topic, detect_min_decisions=100, detect_window_decisions=500, detect_stream_arl=0
    )
    with Driftline(
        service="driftline-detector", kafka_bootstrap_servers=broker.bootstrap_servers,
        topic=topic, spool_dir=tmp_path,
    ) as agent:  # fmt: skip
        assert len(DetectorWorker(engine, agent, settings).check_all()) == 1
    assert value("driftline_detector_checks_total") == checks + 1
    assert value("driftline_detector_verdicts_total", state="detected") == detected + 1


def test_the_router_counts_sends_by_result_and_what_waits(engine: Engine) -> None:
    now = datetime.now(UTC)
    alert = Alert({"alertname": "DriftDetected", "feature": "age"}, {"summary": "s"}, now)
    with recording_server([(503, {})]) as hook, httpx.Client(timeout=5) as client:
        receiver = Receiver(name="team", webhook_configs=[WebhookConfig(url=hook.url)])
        labels = {"receiver": "team", "integration": "webhook[0]"}
        retried, sent = (
            value("driftline_router_sends_total", **labels, result="retry"),
            value("driftline_router_sends_total", **labels, result="sent"),
        )
        with Session(engine) as session:
            enqueue(session, Notification("team", "{}", {}, (alert,)), receiver, "", now)
            session.commit()
        sender = OutboxSender(engine, client)
        assert sender.send_due(now) == []  # 503: to be tried again
        assert value("driftline_router_outbox_pending_messages") == 1
        assert len(sender.send_due(now + timedelta(minutes=10))) == 1  # past its backoff
    assert value("driftline_router_sends_total", **labels, result="retry") == retried + 1
    assert value("driftline_router_sends_total", **labels, result="sent") == sent + 1
    assert value("driftline_router_outbox_pending_messages") == 0


def test_health_names_a_neighbour_that_fails() -> None:
    """Alive (a restart mends no database) but not ready, saying what is wrong."""
    heartbeat, port = Heartbeat(stale_after_s=60), free_port()
    server = serve_health(heartbeat, "127.0.0.1", port)
    try:
        url = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{url}/readyz").status_code == 200
        heartbeat.fault("database", "failed the last batch: connection refused")
        live, ready = httpx.get(f"{url}/healthz"), httpx.get(f"{url}/readyz")
        assert live.status_code == 200 and ready.status_code == 503
        for answer in (live, ready):
            body = json.loads(answer.text)
            assert body["status"] == "degraded"
            assert body["faults"] == {"database": "failed the last batch: connection refused"}
        heartbeat.clear("database")
        assert httpx.get(f"{url}/readyz").json()["status"] == "ok"
    finally:
        server.shutdown()

"""Handing alerts to a real Prometheus Alertmanager (Debian's prometheus-alertmanager, started
here on a loopback port): Driftline pushes alerts to its /api/v2/alerts, Alertmanager routes them
to a webhook this test runs, and the test reads them back there and in Alertmanager's API."""

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from driftline.agent import Driftline
from driftline.agent.contract import DriftDetectedEvent, DriftPayload, DriftResolvedEvent
from driftline.agent.provenance import TrustedProducers
from driftline.collector.alerting.alerts import Alert
from driftline.collector.alerting.config import AlertmanagerConfig, Receiver, load_alerting
from driftline.collector.alerting.grouping import Notification
from driftline.collector.alerting.outbox import OutboxSender, enqueue
from driftline.collector.alerting.router import ROUTER_SERVICE, AlertRouter
from driftline.collector.runtime.broker import EmbeddedBroker
from tests.events import MODEL, drift_payload
from tests.http_recorder import Recorder, recording_server
from tests.waiting import wait_for

BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
pytestmark = pytest.mark.skipif(
    BINARY is None, reason="prometheus-alertmanager is not installed (.ci/run installs it)"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def running_alertmanager(
    tmp_path: Path, resolve_timeout: str = "5m"
) -> Iterator[tuple[str, Recorder]]:
    """Alertmanager on a free loopback port, routing everything at once to a webhook here."""
    with recording_server() as webhook:
        config = tmp_path / "alertmanager.yml"
        config.write_text(
            f"global: {{resolve_timeout: {resolve_timeout}}}\n"
            "route:\n"
            "  receiver: test\n"
            "  group_by: [model]\n"
            "  group_wait: 0s\n"
            "  group_interval: 1s\n"
            "receivers:\n"
            "  - name: test\n"
            f"    webhook_configs: [{{url: '{webhook.url}/from-alertmanager'}}]\n"
        )
        port = free_port()
        assert BINARY is not None
        process = subprocess.Popen(
            [
                BINARY,
                f"--config.file={config}",
                f"--storage.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",  # one instance, no gossip
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            try:
                return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            wait_for(ready, bool, timeout_s=30, what="Alertmanager to be ready")
            yield url, webhook
        finally:
            process.terminate()
            process.wait(timeout=10)


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[tuple[str, Recorder]]:
    with running_alertmanager(tmp_path) as running:
        yield running


def test_alerts_pushed_to_alertmanager_reach_its_receiver(
    alertmanager: tuple[str, Recorder], engine: Engine
) -> None:
    url, webhook = alertmanager
    now = datetime.now(UTC)
    alert = Alert(
        {"alertname": "DriftDetected", "model": "credit-risk", "feature": "debt_ratio"},
        {"summary": "credit-risk 3: debt_ratio drifted (ks)"},
        now,
        generator_url="http://driftline.example/drift/credit-risk/3",
    )
    receiver = Receiver(name="am", alertmanager_configs=[AlertmanagerConfig(url=url)])
    notification = Notification(
        "am", '{}:{model="credit-risk"}', {"model": "credit-risk"}, (alert,)
    )
    with Session(engine) as session:
        enqueue(session, notification, receiver, "http://driftline.example", now)
        session.commit()
    with httpx.Client(timeout=5) as client:
        assert len(OutboxSender(engine, client).send_due(now)) == 1

    (body,) = wait_for(webhook.accepted, lambda got: len(got) >= 1, what="Alertmanager's webhook")
    assert body["version"] == "4" and body["status"] == "firing"
    (received,) = body["alerts"]
    assert received["labels"]["feature"] == "debt_ratio"
    assert received["annotations"]["summary"] == "credit-risk 3: debt_ratio drifted (ks)"
    assert received["generatorURL"] == "http://driftline.example/drift/credit-risk/3"
    held = httpx.get(f"{url}/api/v2/alerts", timeout=5).json()
    assert [a["labels"]["model"] for a in held] == ["credit-risk"]


RESOLVE_TIMEOUT_S = 2.0
ROUTING = """\
route: {{receiver: am, group_by: [model], group_wait: 0s, group_interval: 1s,
        repeat_interval: 1h}}
receivers:
  - name: am
    alertmanager_configs: [{{url: "{url}", resend_interval: {resend}}}]
"""


def _active(url: str) -> list[str]:
    """The features of the alerts Alertmanager holds active (its API leaves ended ones out)."""
    held = httpx.get(f"{url}/api/v2/alerts", timeout=5).json()
    return [a["labels"]["feature"] for a in held if a["status"]["state"] == "active"]


def test_a_drift_stays_active_in_alertmanager_while_it_lasts_and_resolves_within_an_interval(
    broker: EmbeddedBroker, topic: str, engine: Engine, tmp_path: Path
) -> None:
    """Three times Alertmanager's resolve_timeout of open drift: an alert posted again every
    resend_interval stays active throughout, and ends within one interval of its resolve."""
    with running_alertmanager(tmp_path, resolve_timeout=f"{RESOLVE_TIMEOUT_S:g}s") as (url, _):
        path = tmp_path / "alerting.yaml"
        path.write_text(ROUTING.format(url=url, resend="500ms"))
        with (
            Driftline(
                service=ROUTER_SERVICE, kafka_bootstrap_servers=broker.bootstrap_servers,
                topic=topic, spool_dir=tmp_path / "spool",
            ) as agent,
            httpx.Client(timeout=5) as client,
        ):  # fmt: skip
            router = AlertRouter(
                engine=engine, config=load_alerting(path), agent=agent, client=client,
                external_url="http://driftline.example", producers=TrustedProducers(),
            )  # fmt: skip
            payload = DriftPayload(**drift_payload("debt_ratio"))
            router.take(DriftDetectedEvent(service="detector", model=MODEL, payload=payload))
            started = time.monotonic()
            seen: list[tuple[float, bool]] = []
            while time.monotonic() - started < 3 * RESOLVE_TIMEOUT_S:
                router.tick()
                seen.append((time.monotonic() - started, "debt_ratio" in _active(url)))
                time.sleep(0.1)
            first = next(at for at, active in seen if active)
            assert all(active for at, active in seen if at >= first), seen

            router.take(DriftResolvedEvent(service="detector", model=MODEL, payload=payload))
            resolved = time.monotonic()
            while "debt_ratio" in _active(url):
                assert time.monotonic() - resolved < 0.5 + 0.5, "not ended within an interval"
                router.tick()
                time.sleep(0.05)
            router.close()


def test_an_alert_posted_once_ends_after_resolve_timeout_though_its_drift_lasts(
    engine: Engine, tmp_path: Path
) -> None:
    """Why refreshes are needed: posted once, as before them, Alertmanager ends the alert of
    an open drift after its resolve_timeout."""
    with running_alertmanager(tmp_path, resolve_timeout=f"{RESOLVE_TIMEOUT_S:g}s") as (url, _):
        now = datetime.now(UTC)
        alert = Alert({"alertname": "DriftDetected", "feature": "debt_ratio"}, {}, now)
        receiver = Receiver(name="am", alertmanager_configs=[AlertmanagerConfig(url=url)])
        with Session(engine) as session:
            enqueue(session, Notification("am", "{}", {}, (alert,)), receiver, "", now)
            session.commit()
        with httpx.Client(timeout=5) as client:
            assert len(OutboxSender(engine, client).send_due(now)) == 1
        assert _active(url) == ["debt_ratio"]
        wait_for(lambda: _active(url), lambda held: held == [], timeout_s=3 * RESOLVE_TIMEOUT_S)

"""Handing alerts to a real Prometheus Alertmanager (Debian's prometheus-alertmanager, started
here on a loopback port): Driftline pushes alerts to its /api/v2/alerts, Alertmanager routes them
to a webhook this test runs, and the test reads them back there and in Alertmanager's API."""

import shutil
import socket
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from driftline.collector.alerting.alerts import Alert
from driftline.collector.alerting.config import AlertmanagerConfig, Receiver
from driftline.collector.alerting.grouping import Notification
from driftline.collector.alerting.outbox import OutboxSender, enqueue
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


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[tuple[str, Recorder]]:
    with recording_server() as webhook:
        config = tmp_path / "alertmanager.yml"
        config.write_text(
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

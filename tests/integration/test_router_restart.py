"""A receiver that is down for a while gets its notification exactly once after it comes back,
also when the router process is killed meanwhile and started again; the restarted router then
resolves the alert without notifying its firing again (the notification log)."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from driftline.agent import Driftline
from driftline.collector.runtime.broker import EmbeddedBroker
from driftline.collector.store.models import AlertNotification, OutboxMessage
from tests.events import MODEL, drift_payload
from tests.http_recorder import Recorder, recording_server
from tests.waiting import wait_for

CONFIG = """\
route:
  receiver: team
  group_by: [model]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: team
    webhook_configs: [{{url: "{url}/hook"}}]
"""
# Down, down, then "come back in 3 s", then up.
SCRIPT = [(503, {}), (503, {}), (429, {"Retry-After": "3"})]


class RouterProcess:
    """``driftline route`` in a process of its own, its log in a file the test reads."""

    def __init__(self, environment: dict[str, str], log_path: Path) -> None:
        self._log_path = log_path
        self._log = log_path.open("ab")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "driftline", "route"],
            env=environment,
            stdout=self._log,
            stderr=self._log,
        )

    def wait_until_assigned(self) -> None:
        wait_for(
            lambda: self._log_path.read_text().count("alert router assigned its partitions"),
            lambda count: count > 0 and self._process.poll() is None,
            what="the router to join its consumer group",
        )

    def kill(self) -> None:
        self._process.send_signal(signal.SIGKILL)
        self._process.wait(timeout=10)
        self._log.close()

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=15)
        self._log.close()


@pytest.fixture
def receiver() -> Iterator[Recorder]:
    with recording_server(SCRIPT) as recorder:
        yield recorder


def test_a_receiver_down_across_a_router_kill_hears_once_then_the_resolve(
    broker: EmbeddedBroker,
    topic: str,
    database_url: str,
    engine: Engine,
    receiver: Recorder,
    run_collector: Callable[[], None],
    tmp_path: Path,
) -> None:
    run_collector()  # verdicts reach the ledger, from which a restarted router restores
    config = tmp_path / "alerting.yaml"
    config.write_text(CONFIG.format(url=receiver.url))
    environment = os.environ | {
        "DRIFTLINE_DATABASE_URL": database_url,
        "DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "DRIFTLINE_TOPIC": topic,
        "DRIFTLINE_ALERTING_CONFIG": str(config),
        "DRIFTLINE_ROUTER_GROUP": f"router-{topic}",
        "DRIFTLINE_ROUTER_SPOOL_DIR": str(tmp_path / "router-spool"),
    }
    log_path = tmp_path / "router.log"
    with Driftline(
        service="driftline-detector", kafka_bootstrap_servers=broker.bootstrap_servers, topic=topic
    ) as detector:

        def verdict(state: str) -> None:
            document = {
                "type": f"drift_{state}",
                "model": {"name": MODEL.name, "version": MODEL.version},
                "payload": drift_payload("debt_ratio"),
            }
            detector.record_signed(detector.complete_event(document))
            assert detector.flush(timeout_s=10).ok

        first = RouterProcess(environment, log_path)
        try:
            first.wait_until_assigned()
            verdict("detected")
            wait_for(lambda: len(receiver.requests), lambda n: n >= 1, what="a first attempt")
        finally:
            first.kill()
        assert receiver.accepted() == []
        with Session(engine) as session:
            (pending,) = session.exec(select(OutboxMessage)).all()
            assert pending.state == "pending"

        second = RouterProcess(environment, log_path)
        try:
            second.wait_until_assigned()
            (firing,) = wait_for(receiver.accepted, lambda got: len(got) >= 1, what="delivery")
            assert firing["status"] == "firing"
            time.sleep(4)  # several group intervals: a restored alert must not go out again
            assert len(receiver.accepted()) == 1
            assert [status for _, _, status in receiver.requests] == [503, 503, 429, 200]

            verdict("resolved")
            wait_for(receiver.accepted, lambda got: len(got) >= 2, what="the resolve")
            time.sleep(3)
        finally:
            second.stop()

    bodies = receiver.accepted()
    assert [body["status"] for body in bodies] == ["firing", "resolved"]
    assert bodies[0]["groupKey"] == bodies[1]["groupKey"]

    def notified() -> list[str]:
        with Session(engine) as session:
            return [n.status for n in session.exec(select(AlertNotification)).all()]

    statuses = wait_for(notified, lambda got: len(got) >= 2, what="alert_notified events")
    assert sorted(statuses) == ["firing", "resolved"]

"""The evidence the gate's load and drill criteria ask for, produced through the real pipeline
(embedded broker, collector, detector worker, alert router, a loopback receiver): a load test
that loses nothing and counts for the gate, a drill whose alert reaches the receiver, and a
drill that fails, saying why, when the receiver is down. Their decisions are synthetic: a
search does not see them unless asked."""

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from driftline.agent import Driftline
from driftline.collector.alerting.config import load_alerting
from driftline.collector.alerting.router import AlertRouter
from driftline.collector.cli.common import publish
from driftline.collector.core.producer_keys import trusted_producers
from driftline.collector.core.settings import CollectorSettings
from driftline.collector.drift.worker import DetectorWorker
from driftline.collector.golive.drill import run_drill
from driftline.collector.golive.gate import evaluate
from driftline.collector.golive.loadtest import run_load_test
from driftline.collector.golive.thresholds import Technical, Threshold
from driftline.collector.runtime.broker import EmbeddedBroker
from driftline.collector.store.models import LoadTest
from driftline.collector.store.queries import latest_version
from driftline.collector.store.search import DecisionFilter, count
from tests.http_recorder import Recorder, recording_server
from tests.waiting import wait_for

ALERTING = """\
route: {{receiver: team, group_by: [model, version], group_wait: 1s, group_interval: 1s}}
receivers:
  - name: team
    webhook_configs: [{{url: "{url}/hook"}}]
owners:
  - matchers: ['model="credit-risk"']
    owner: risk-ml-team
    escalation: [a.kim]
"""


@pytest.fixture
def agent(broker: EmbeddedBroker, topic: str, tmp_path: Path) -> Iterator[Driftline]:
    with Driftline(
        service="driftline-drill", kafka_bootstrap_servers=broker.bootstrap_servers, topic=topic,
        queue_size=20_000, spool_dir=tmp_path / "drill-spool",
    ) as running:  # fmt: skip
        yield running


@pytest.fixture
def pipeline(
    broker: EmbeddedBroker, topic: str, engine: Engine, run_collector: Callable[[], None],
    tmp_path: Path,
) -> Iterator[Callable[[Recorder], None]]:  # fmt: skip
    """Starts the collector, a fast detector worker and the router notifying a receiver."""
    stop = threading.Event()
    threads: list[threading.Thread] = []
    closing: list[Driftline | httpx.Client] = []

    def start(receiver: Recorder) -> None:
        run_collector()
        settings = CollectorSettings(
            topic=topic, router_group=f"router-{topic}", detect_interval_s=1,
            detect_window_decisions=500, detect_min_decisions=200,
        )  # fmt: skip
        worker_agent = Driftline(service="driftline-detector",
                                 kafka_bootstrap_servers=broker.bootstrap_servers, topic=topic,
                                 spool_dir=tmp_path / "detector-spool")  # fmt: skip
        router_agent = Driftline(service="driftline-router",
                                 kafka_bootstrap_servers=broker.bootstrap_servers, topic=topic,
                                 spool_dir=tmp_path / "router-spool")  # fmt: skip
        client = httpx.Client(timeout=5)
        closing.extend([worker_agent, router_agent, client])
        path = tmp_path / "alerting.yaml"
        path.write_text(ALERTING.format(url=receiver.url))
        router = AlertRouter(
            engine=engine, config=load_alerting(path), agent=router_agent, client=client,
            external_url="http://driftline.example", producers=trusted_producers(settings),
        )  # fmt: skip
        worker = DetectorWorker(engine, worker_agent, settings)
        for target, arguments in (
            (worker.run, (stop,)),
            (router.run, (stop, settings, broker.bootstrap_servers)),
        ):
            thread = threading.Thread(target=target, args=arguments, daemon=True)
            thread.start()
            threads.append(thread)
        assert router.consuming.wait(30), "the router never joined its consumer group"

    yield start
    stop.set()
    for thread in threads:
        thread.join(timeout=15)
    for resource in closing:
        resource.close()


def test_a_load_test_loses_nothing_and_counts_for_the_gate(
    agent: Driftline, engine: Engine, run_collector: Callable[[], None]
) -> None:
    run_collector()
    result = run_load_test(
        agent, engine, model="credit-risk", version="3", rate_per_s=400, duration_s=3,
        peak_per_s=100, settle_s=60,
    )  # fmt: skip
    assert (result.sent, result.lost, result.error_rate) == (1_200, 0, 0.0)
    assert result.recovery_s is not None and result.delay_p99_ms is not None
    assert result.passed, result
    assert "recorded" in publish(agent, [("load_tested", result.payload(), "credit-risk")])

    def stored() -> list[LoadTest]:
        with Session(engine) as session:
            return list(session.exec(select(LoadTest)).all())

    wait_for(stored, lambda rows: len(rows) == 1, what="the load_tested event in the store")
    with Session(engine) as session:
        assert count(session, DecisionFilter()) == 0  # synthetic: not in real searches
        assert count(session, DecisionFilter(include_synthetic=True)) == 1_200
        for peak, status in ((100.0, "pass"), (1_000.0, "fail")):
            threshold = Threshold(
                model="credit-risk", min_decisions=1,
                technical=Technical(load_peak_per_s=peak, max_error_rate=0.0),
            )  # fmt: skip
            criteria = evaluate(
                session, threshold, model="credit-risk", version="3", now=datetime.now(UTC),
                alerting=None, ledger_intact=lambda: True,
            ).criteria  # fmt: skip
            found = {c.name: c for c in criteria}
            assert found["load test"].status == status
            assert found["error rate"].status == "pass"


def test_a_drill_reaches_the_receiver_and_passes(
    agent: Driftline, engine: Engine, pipeline: Callable[[Recorder], None]
) -> None:
    with recording_server() as receiver:
        pipeline(receiver)
        result = run_drill(agent, engine, model="credit-risk", version="3", timeout_s=120)
    assert result.passed, result.reason
    assert result.receivers == ["team"]
    assert result.seconds_to_notification is not None and result.seconds_to_notification > 0
    (body, *_) = receiver.accepted()
    assert body["commonLabels"]["version"] == result.synthetic_version
    assert "~drill-" in result.synthetic_version


def test_a_drill_fails_with_the_reason_when_the_receiver_is_down(
    agent: Driftline, engine: Engine, pipeline: Callable[[Recorder], None]
) -> None:
    with recording_server([(503, {})] * 1_000) as receiver:
        pipeline(receiver)
        result = run_drill(agent, engine, model="credit-risk", version="3", timeout_s=40)
    assert not result.passed
    assert "no receiver accepted the alert" in result.reason
    assert "HTTP 503" in result.reason
    assert receiver.requests, "the router did try the receiver"


def test_the_loadtest_command_reports_and_records_its_figures(
    broker: EmbeddedBroker,
    topic: str,
    database_url: str,
    engine: Engine,
    run_collector: Callable[[], None],
) -> None:
    run_collector()
    ran = subprocess.run(
        [sys.executable, "-m", "driftline", "loadtest", "--model", "credit-risk",
         "--version", "3", "--peak", "100", "--duration", "2s", "--json",
         "--database-url", database_url, "--kafka-bootstrap-servers", broker.bootstrap_servers],
        env=os.environ | {"DRIFTLINE_TOPIC": topic}, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    figures = json.loads(ran.stdout[ran.stdout.index("{") :])
    assert (figures["rate_per_s"], figures["sent"], figures["lost"]) == (300.0, 600, 0)
    assert figures["recorded"] == "recorded as a load_tested event"
    with Session(engine) as session:
        assert latest_version(session, "credit-risk") is None  # synthetic versions do not count

"""The alert router outlives its database: stopped under it (a private PostgreSQL server), the
router keeps running, names the database in its health, and once the server is back it clears
the fault and notifies again, from the store; a verdict it had taken, whose offset it had
committed but that no collector had stored yet, still fires."""

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from driftline.agent import Driftline
from driftline.collector.alerting.config import load_alerting
from driftline.collector.alerting.router import ROUTER_SERVICE, AlertRouter
from driftline.collector.core.health import Heartbeat
from driftline.collector.core.producer_keys import trusted_producers
from driftline.collector.core.settings import CollectorSettings
from driftline.collector.runtime.broker import EmbeddedBroker
from driftline.collector.store.database import make_engine, migrate
from tests.events import MODEL, drift_payload
from tests.faults.private_postgres import PrivatePostgres
from tests.http_recorder import recording_server
from tests.waiting import wait_for

CONFIG = """\
route: {{receiver: team, group_by: [model, version], group_wait: 4s, group_interval: 1s}}
receivers:
  - name: team
    webhook_configs: [{{url: "{url}/hook"}}]
"""


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    with PrivatePostgres() as server:
        yield server


def test_a_stopped_database_is_named_in_health_and_the_router_goes_on_after(
    postgres: PrivatePostgres, broker: EmbeddedBroker, topic: str, tmp_path: Path
) -> None:
    engine = make_engine(postgres.url)
    migrate(engine)
    stop, heartbeat = threading.Event(), Heartbeat(stale_after_s=60)
    with (
        recording_server() as webhook,
        Driftline(
            service=ROUTER_SERVICE, kafka_bootstrap_servers=broker.bootstrap_servers, topic=topic,
            spool_dir=tmp_path / "router-spool",
        ) as agent,
        Driftline(
            service="driftline-detector", kafka_bootstrap_servers=broker.bootstrap_servers,
            topic=topic, spool_dir=tmp_path / "detector-spool",
        ) as detector,
        httpx.Client(timeout=5) as client,
    ):  # fmt: skip
        (tmp_path / "alerting.yaml").write_text(CONFIG.format(url=webhook.url))
        router = AlertRouter(
            engine=engine, config=load_alerting(tmp_path / "alerting.yaml"), agent=agent,
            client=client, external_url="http://driftline.example",
            producers=trusted_producers(CollectorSettings()),
        )  # fmt: skip
        settings = CollectorSettings(topic=topic, router_group=f"router-{topic}")
        thread = threading.Thread(
            target=router.run, args=(stop, settings, broker.bootstrap_servers, heartbeat),
            daemon=True,
        )  # fmt: skip
        thread.start()
        try:
            assert router.consuming.wait(30), "the router never joined its consumer group"
            # Taken and committed, waiting out group_wait; no collector runs, so the ledger
            # does not hold it when the database goes.
            verdict(detector, "detected", "income")
            time.sleep(1.5)  # the router polls every 0.25 s: it has taken and committed it
            postgres.stop()
            wait_for(lambda: heartbeat.faults, lambda f: "database" in f, what="the fault")
            time.sleep(3)  # a few of its loops with the database away
            assert thread.is_alive(), "the router died with its database"
            postgres.start()
            wait_for(
                lambda: heartbeat.faults, lambda f: "database" not in f, what="the fault cleared"
            )
            (body,) = wait_for(webhook.accepted, lambda got: len(got) >= 1, what="a notification")
            assert body["status"] == "firing"
            assert [a["labels"]["feature"] for a in body["alerts"]] == ["income"]
            verdict(detector, "detected", "debt_ratio")
            wait_for(webhook.accepted, lambda got: len(got) >= 2, what="the next notification")
        finally:
            stop.set()
            thread.join(timeout=20)
            engine.dispose()


def verdict(agent: Driftline, state: str, feature: str) -> None:
    agent.record_signed(
        agent.complete_event(
            {
                "type": f"drift_{state}",
                "model": {"name": MODEL.name, "version": MODEL.version},
                "payload": drift_payload(feature),
            }
        )
    )
    assert agent.flush(timeout_s=10).ok

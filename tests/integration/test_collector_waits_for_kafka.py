"""A collector started while Kafka is away (restarted during an outage) waits for it and then
stores what arrives, instead of exiting."""

import threading
import time

from sqlalchemy import Engine, func
from sqlmodel import Session, select

from driftline.agent import Driftline
from driftline.collector.consume.consumer import Collector
from driftline.collector.consume.kafka import ensure_topic
from driftline.collector.runtime.broker import EmbeddedBroker, free_port
from driftline.collector.store.models import LedgerEntry
from tests.waiting import wait_for


def test_a_collector_started_before_its_broker_waits_and_then_stores(engine: Engine) -> None:
    port = free_port()
    collector = Collector(
        engine=engine, bootstrap_servers=f"127.0.0.1:{port}", topic="events", group_id="late"
    )
    stop = threading.Event()
    thread = threading.Thread(target=collector.run, args=(stop,), daemon=True)
    thread.start()
    try:
        time.sleep(4)  # several failed attempts to reach the broker
        assert thread.is_alive(), "the collector gave up while Kafka was away"
        with EmbeddedBroker(port=port) as broker:
            ensure_topic(broker.bootstrap_servers, "events", partitions=3)
            with Driftline(
                service="s", kafka_bootstrap_servers=broker.bootstrap_servers, topic="events"
            ) as agent:
                for n in range(20):
                    agent.record_decision(
                        model="m", version="1", inputs={"n": n}, output=n, confidence=0.5,
                        latency_ms=1,
                    )  # fmt: skip
                assert agent.flush(timeout_s=30).ok

            def stored() -> int:
                with Session(engine) as session:
                    return session.exec(select(func.count()).select_from(LedgerEntry)).one()

            wait_for(stored, lambda n: n == 20, timeout_s=90, what="the 20 decisions stored")
    finally:
        stop.set()
        thread.join(timeout=30)

"""A collector killed with SIGKILL in the middle of a stream and started again stores every
event exactly once, and the hash chains stay intact."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import Engine, func
from sqlmodel import Session, select

from driftline.agent import Driftline
from driftline.collector.runtime.broker import EmbeddedBroker
from driftline.collector.store import ledger
from driftline.collector.store.models import Decision, LedgerEntry
from tests.waiting import wait_for

DECISIONS = 4_000
KILL_AT = (600, 2_000)  # ledger sizes at which the running collector is killed


def start_collector(
    broker: EmbeddedBroker, topic: str, database_url: str, log: Path
) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "DRIFTLINE_DATABASE_URL": database_url,
        "DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "DRIFTLINE_TOPIC": topic,
        "DRIFTLINE_CONSUMER_GROUP": f"crash-{topic}",
        "DRIFTLINE_BATCH_SIZE": "100",
    }
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "driftline", "collect"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def test_killed_collector_restarts_without_loss_or_duplicates(
    broker: EmbeddedBroker, topic: str, database_url: str, engine: Engine, tmp_path: Path
) -> None:
    def ledger_size() -> int:
        if collector.poll() is not None:  # it died by itself: say why instead of waiting
            raise AssertionError(f"collector exited: {log.read_text()[-3000:]}")
        with Session(engine) as session:
            return session.exec(select(func.count()).select_from(LedgerEntry)).one()

    log = tmp_path / "collector.log"
    agent = Driftline(service="s", kafka_bootstrap_servers=broker.bootstrap_servers, topic=topic)
    stream_done = threading.Event()

    def stream() -> None:  # a steady stream, still flowing while the collector dies
        for n in range(DECISIONS):
            decision_id = agent.record_decision(
                model="m", version="1", inputs={"n": n}, output=n, confidence=0.5, latency_ms=1
            )
            if n % 4 == 0:
                agent.record_feedback(
                    decision_id, model="m", version="1", reporter="r", correct=True
                )
            time.sleep(0.008)  # about 32 s of stream, so both kills land in the middle of it,
            # also when a restarted collector waits out the dead one's session to rejoin
        stream_done.set()

    collector = start_collector(broker, topic, database_url, log)
    producer = threading.Thread(target=stream, daemon=True)
    producer.start()
    killed_mid_stream = []
    try:
        for threshold in KILL_AT:
            wait_for(ledger_size, lambda n, t=threshold: n >= t, what=f"{threshold} stored")
            collector.send_signal(signal.SIGKILL)
            collector.wait()
            killed_mid_stream.append(not stream_done.is_set())
            collector = start_collector(broker, topic, database_url, log)
        producer.join()
        report = agent.close(timeout_s=30)
        assert report.ok, report
        expected = DECISIONS + DECISIONS // 4
        wait_for(ledger_size, lambda n: n >= expected, timeout_s=120, what="every event stored")
    finally:
        collector.terminate()
        collector.wait(timeout=15)

    assert killed_mid_stream == [True] * len(KILL_AT), log.read_text()[-3000:]
    assert report.delivered == expected
    with Session(engine) as session:
        event_ids = session.exec(select(LedgerEntry.event_id)).all()
        decisions = session.exec(select(func.count()).select_from(Decision)).one()
        verification = ledger.verify(session)
    assert len(event_ids) == expected
    assert len(set(event_ids)) == expected
    assert decisions == DECISIONS
    assert verification.intact, verification.breaks

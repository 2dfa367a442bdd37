"""A large spool drains while decisions keep coming: the in-memory queue never fills.

A broker back after a long outage meets an agent with a spool of many seconds' worth of events
and new ones arriving. Draining it in one go held the worker for all of those seconds, the
queue filled, and new decisions were dropped (the reliability run's broker cut found 2,914).
"""

import time
from collections import defaultdict
from pathlib import Path

from driftline.agent import Driftline
from driftline.agent.contract import new_event_id, wire_bytes
from driftline.agent.publisher import Outgoing
from driftline.agent.spool import Spool
from driftline.collector.runtime.broker import EmbeddedBroker
from tests import events
from tests.topic_reader import read_topic

SPOOLED = 300_000
RATE_PER_S = 1_000
SECONDS = 6
QUEUE = 2_000  # two seconds of decisions: far less than the spool takes to drain


def test_new_decisions_wait_in_the_spool_behind_the_backlog_not_in_the_queue(
    broker: EmbeddedBroker, topic: str, tmp_path: Path
) -> None:
    directory = tmp_path / "spool"
    spool = Spool(directory, max_bytes=1024**3, fsync="never")
    # Only keys and order are looked at here, so the backlog carries one event's bytes.
    value = wire_bytes(events.decision())
    backlog = [
        Outgoing(new_event_id(), str(new_event_id()).encode(), value, "decision")
        for _ in range(SPOOLED)
    ]
    spool.append(backlog)
    spool.close()

    with Driftline(
        service="s",
        kafka_bootstrap_servers=broker.bootstrap_servers,
        topic=topic,
        spool_dir=directory,
        queue_size=QUEUE,
    ) as agent:
        started = time.monotonic()
        for n in range(RATE_PER_S * SECONDS):
            agent.record_decision(
                model="m", version="1", inputs={"n": n}, output=n, confidence=0.5, latency_ms=1
            )
            time.sleep(max(0.0, started + (n + 1) / RATE_PER_S - time.monotonic()))
        report = agent.flush(timeout_s=120)

    total = SPOOLED + RATE_PER_S * SECONDS
    assert report.dropped == 0, report
    assert (report.recorded, report.delivered) == (total, total)
    spooled_keys = {item.key for item in backlog}
    by_partition: dict[int, list[bool]] = defaultdict(list)
    for record in read_topic(broker.bootstrap_servers, topic, total, timeout_s=120):
        by_partition[record.partition].append(record.key in spooled_keys)
    assert sum(len(flags) for flags in by_partition.values()) == total
    for flags in by_partition.values():  # on every partition, the backlog before the new
        assert flags == sorted(flags, reverse=True)

"""Delivery under hostile conditions, against the real embedded broker behind a TCP proxy:

- an outage never makes the worker wait, so a small queue does not overflow;
- a spool whose disk fills loses nothing unaccounted, says so in /readyz, and delivery resumes;
- an event Kafka refuses for good fails alone, and the spool moves past it;
- a dropped event is visible to the caller;
- ``close`` never raises, whatever the disk and the broker do.

The full disk is a real one: a tmpfs of a few hundred KiB, mounted by the test (as root).
"""

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from driftline.agent import Driftline, Recorded
from driftline.agent.contract import decode
from driftline.agent.publisher import Outgoing
from driftline.agent.spool import Spool
from driftline.collector.consume.kafka import ensure_topic
from driftline.collector.runtime.broker import EmbeddedBroker, free_port
from tests.tcp_proxy import TcpProxy
from tests.topic_reader import read_topic
from tests.waiting import wait_for

MODEL = {"model": "m", "version": "1"}


def record(agent: Driftline, n: int) -> Recorded:
    return agent.record_decision(**MODEL, inputs={"n": n}, output=n, confidence=0.5, latency_ms=1)


@pytest.fixture
def proxied() -> Iterator[tuple[EmbeddedBroker, TcpProxy, str]]:
    """A broker of the test's own, advertised through a proxy the test can cut."""
    port = free_port()
    proxy = TcpProxy(port)
    with EmbeddedBroker(port=port, advertised_port=proxy.port) as own:
        topic = f"events-{uuid.uuid4().hex[:12]}"
        ensure_topic(own.bootstrap_servers, topic, partitions=3)
        yield own, proxy, topic
    proxy.close()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real file system of 256 KiB: writes past it fail with ENOSPC."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def delivered_decisions(broker: EmbeddedBroker, topic: str, count: int) -> set[uuid.UUID | None]:
    records = read_topic(broker.bootstrap_servers, topic, count)
    return {decode(record.value).decision_id for record in records}


def test_an_outage_never_holds_the_worker_so_a_small_queue_drops_nothing(
    proxied: tuple[EmbeddedBroker, TcpProxy, str],
) -> None:
    """With the network silent, 5,000 decisions recorded as fast as possible into a queue of
    500 are all spooled: the worker never waits out a delivery timeout (before, it blocked for
    the timeout plus 2 s per attempt, and the queue overflowed)."""
    broker, proxy, topic = proxied
    proxy.cut()
    agent = Driftline(
        service="s",
        kafka_bootstrap_servers=broker.bootstrap_servers,
        topic=topic,
        queue_size=500,
        delivery_timeout_ms=2_000,
    )
    try:
        ids = []
        for n in range(5_000):
            ids.append(record(agent, n))
            if n % 100 == 99:
                time.sleep(0.02)  # about 4,000 a second
        assert all(recorded.queued for recorded in ids)
        report = agent.flush(timeout_s=3)
        assert report.dropped == 0, report
        assert report.failed == 0, report
        proxy.restore()
        report = agent.flush(timeout_s=60)
        assert report.ok, report
    finally:
        report = agent.close(timeout_s=10)
    assert (report.delivered, report.dropped, report.failed) == (5_000, 0, 0)
    assert delivered_decisions(broker, topic, 5_000) >= set(ids)


def test_a_spool_on_a_full_disk_accounts_for_every_event_and_recovers(
    proxied: tuple[EmbeddedBroker, TcpProxy, str], small_disk: Path
) -> None:
    """The spool's disk fills long before its cap. Each event is then delivered, on disk, or
    failed with the disk's reason; nothing goes negative or unaccounted; /readyz says the disk
    is full; once the broker is back, the spool drains and new events are delivered."""
    broker, proxy, topic = proxied
    proxy.cut()
    agent = Driftline(
        service="s",
        kafka_bootstrap_servers=broker.bootstrap_servers,
        topic=topic,
        spool_dir=small_disk / "spool",
        queue_size=500,  # waiting for room that cannot come (the broker is away) would drop
        delivery_timeout_ms=1_000,
    )
    try:
        for n in range(3_000):  # about 300 bytes each on disk: the 256 KiB fill at ~850
            record(agent, n)
            if n % 100 == 99:
                time.sleep(0.02)
        report = wait_for(
            lambda: agent.flush(timeout_s=0.5),
            lambda r: r.failed > 0 and r.pending == r.spooled,
            30,
            "the disk to fill",
        )
        assert report.recorded == 3_000
        assert report.dropped == 0
        assert report.spooled > 0
        assert report.delivered + report.failed + report.spooled == 3_000, report
        assert all("No space left on device" in f.reason for f in report.failures)
        ready, reason = agent.readiness()
        assert not ready
        assert "No space left on device" in reason

        proxy.restore()
        on_disk = report.spooled
        report = wait_for(lambda: agent.flush(timeout_s=1), lambda r: r.spooled == 0, 60, "drain")
        assert report.delivered == on_disk
        after = [record(agent, n) for n in range(3_000, 3_100)]
        report = agent.flush(timeout_s=30)
        assert report.delivered == on_disk + 100, report
        assert agent.readiness()[0]
    finally:
        final = agent.close(timeout_s=5)  # must not raise
    assert final.delivered + final.failed == 3_100, final
    assert set(after) <= delivered_decisions(broker, topic, final.delivered)


def test_close_does_not_raise_when_the_disk_and_the_broker_are_gone(
    small_disk: Path,
) -> None:
    agent = Driftline(
        service="s",
        kafka_bootstrap_servers=f"127.0.0.1:{free_port()}",
        spool_dir=small_disk / "spool",
        spool_block_ms=0,
        delivery_timeout_ms=1_000,
    )
    for n in range(2_000):
        record(agent, n)
    report = agent.close(timeout_s=3)
    assert report.recorded == 2_000
    assert report.delivered + report.failed + report.spooled == 2_000, report
    assert report.failed > 0


def test_an_event_kafka_refuses_for_good_fails_alone_and_the_spool_moves_on(
    broker: EmbeddedBroker, topic: str, tmp_path: Path
) -> None:
    """A spooled event larger than Kafka takes (written by an older agent, say) sits between
    two good ones. It fails with Kafka's reason; the two are delivered once each; /readyz says
    Kafka is reachable; the spool is empty."""
    spool_dir = tmp_path / "old-spool"
    before, after = (
        Outgoing(uuid.uuid4(), b"k", b'{"n":1}', "decision"),
        Outgoing(uuid.uuid4(), b"k", b'{"n":2}', "decision"),
    )
    oversize = Outgoing(uuid.uuid4(), b"k", b"x" * 2_000_000, "decision")
    spool = Spool(spool_dir, max_bytes=10**8)
    spool.append([before, oversize, after])
    spool.close()

    agent = Driftline(
        service="s", kafka_bootstrap_servers=broker.bootstrap_servers, topic=topic,
        spool_dir=spool_dir,
    )  # fmt: skip
    try:
        report = wait_for(lambda: agent.flush(timeout_s=1), lambda r: r.spooled == 0, 30, "drain")
        assert (report.delivered, report.failed) == (2, 1), report
        assert "too large" in report.failures[0].reason.lower(), report.failures
        assert agent.readiness() == (True, "Kafka reachable")
    finally:
        agent.close(timeout_s=5)
    values = [r.value for r in read_topic(broker.bootstrap_servers, topic, 2)]
    assert sorted(values) == [b'{"n":1}', b'{"n":2}']


def test_a_dropped_event_is_visible_to_the_caller() -> None:
    """The id a record call returns says whether the agent took the event."""
    agent = Driftline(service="s", kafka_bootstrap_servers=f"127.0.0.1:{free_port()}", queue_size=1)
    try:
        recorded = [record(agent, n) for n in range(2_000)]
    finally:
        report = agent.close(timeout_s=1)
    dropped = [r for r in recorded if not r.queued]
    assert dropped, "a queue of one took 2,000 events at once"
    assert len(dropped) == report.dropped
    misconfigured = Driftline(service="")
    assert not misconfigured.record_decision(
        **MODEL, inputs={}, output=1, confidence=0.5, latency_ms=1
    ).queued


def test_a_kafka_setting_librdkafka_refuses_loses_nothing_unseen(tmp_path: Path) -> None:
    """A producer that cannot even be made (a CA file that is not there) leaves every event in
    the spool, counted, instead of lost with no report."""
    agent = Driftline(
        service="s",
        kafka_bootstrap_servers=f"127.0.0.1:{free_port()}",
        kafka_security_protocol="SSL",
        kafka_ssl_ca_file=tmp_path / "no-such-ca.pem",
    )
    try:
        for n in range(50):
            record(agent, n)
        report = wait_for(
            lambda: agent.flush(timeout_s=0.2), lambda r: r.spooled == 50, 10, "spool"
        )
        assert not agent.readiness()[1].startswith("Kafka reachable")
    finally:
        report = agent.close(timeout_s=1)
    assert (report.recorded, report.pending, report.spooled) == (50, 50, 50), report

"""During an outage the worker asks the broker for metadata before it drains the spool, so a
drain attempt holds the worker (and the service's queue behind it) for about a second instead
of the whole delivery timeout. At 2,000 decisions/s the longer hold filled a 20,000-event queue
during a 60 s cut and events were dropped."""

import time
import uuid
from pathlib import Path

from agent.publisher import KafkaPublisher, Outgoing
from agent.spool import Spool
from agent.spooling import PROBE_S, SpoolingPublisher
from collector.broker import free_port
from tests.tcp_proxy import TcpProxy

DELIVERY_TIMEOUT_MS = 4_000


def test_a_drain_during_an_outage_costs_a_probe_not_a_delivery_timeout(tmp_path: Path) -> None:
    proxy = TcpProxy(free_port())  # nothing listens behind it
    proxy.cut()  # and cut, it answers nothing: a silent network
    publisher = SpoolingPublisher(
        KafkaPublisher(
            bootstrap_servers=f"127.0.0.1:{proxy.port}",
            topic="events",
            delivery_timeout_ms=DELIVERY_TIMEOUT_MS,
        ),
        Spool(tmp_path, max_bytes=1_000_000),
        full_policy="block",
        block_ms=0,
    )
    try:
        event = Outgoing(event_id=uuid.uuid4(), key=b"k", value=b"{}")
        first = publisher.publish([event])  # the outage is found the hard way
        assert (first.delivered, first.spooled) == (0, 1)
        time.sleep(0.3)  # past the first back-off
        began = time.monotonic()
        drained = publisher.drain()
        took_s = time.monotonic() - began
        assert (drained, publisher.backlog) == (0, 1)
        assert took_s < PROBE_S + 1.0 < DELIVERY_TIMEOUT_MS / 1000, took_s
    finally:
        publisher.shutdown(timeout_s=0)
        proxy.close()

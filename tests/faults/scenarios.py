"""The fault scenarios. Each runs the embedded stack (the Tansu broker, ``driftline
collect`` and, where it matters, ``driftline route`` in processes of their own, SQLite or a
private PostgreSQL) at a steady load, breaks one part, and returns a row of the reliability
table: what was sent, stored, lost or stored twice, and whether the ledger verifies.

Every scenario takes its scale as arguments; ``FULL`` is the table's, ``SMALL`` the test suite's.
The agent runs at the README's default settings, except where a scenario says which setting it
changes and why (the row's note says it too).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from bench.stores import stored_events
from driftline.agent import Driftline
from driftline.agent.contract import (
    MAX_EVENT_BYTES,
    SCHEMA_VERSION,
    DecisionEvent,
    DecisionPayload,
    ModelRef,
    encode,
    new_event_id,
)
from driftline.agent.provenance import ProducerKey
from driftline.collector.consume.kafka import ensure_topic
from driftline.collector.runtime.broker import EmbeddedBroker, free_port
from driftline.collector.store.database import make_engine, migrate
from tests.events import MODEL, drift_payload
from tests.faults.harness import (
    CollectorProcess,
    Row,
    Stream,
    Tally,
    dead_letter_count,
    tally,
    wait_until,
)
from tests.faults.private_postgres import PrivatePostgres
from tests.http_recorder import recording_server
from tests.tcp_proxy import TcpProxy

TOPIC = "driftline.events"
SETTLE_S = 600  # longest wait for the stack to catch up once a fault is over


def broker_cut(workdir: Path, *, rate: int, cut_s: float, around_s: float = 10) -> Row:
    """The network between the stack and the broker is silent for ``cut_s`` mid-stream."""
    began = time.monotonic()
    broker_port = free_port()
    proxy = TcpProxy(broker_port)
    with EmbeddedBroker(port=broker_port, advertised_port=proxy.port) as broker:
        ensure_topic(broker.bootstrap_servers, TOPIC, partitions=3)
        engine = _sqlite(workdir)
        collector = _collector(workdir, engine.url.render_as_string(), broker)
        agent = _agent(workdir, broker)
        try:
            stream = Stream(agent, rate).start()
            _wait_until_storing(engine, collector)
            time.sleep(around_s)
            proxy.cut()
            time.sleep(cut_s)
            proxy.restore()
            time.sleep(around_s)
            calls = stream.stop()
            report = agent.close(timeout_s=SETTLE_S)
            wait_until(
                lambda: _caught_up(engine, report.delivered, collector), SETTLE_S, "every event"
            )
        finally:
            collector.stop()
            proxy.close()
    return _row(
        tally(engine),
        began,
        scenario="broker cut off",
        load=f"{rate:,} decisions/s",
        fault=f"network to the broker silent for {cut_s:.0f} s",
        sent=calls.calls,
        note=f"agent at its defaults: {report.dropped:,} dropped (queue full), "
        f"{report.failed:,} failed; record_decision p99 {calls.p99_call_ms} ms, "
        f"slowest {calls.slowest_call_ms} ms",
    )


def collector_kills(workdir: Path, *, rate: int, kills: int) -> Row:
    """The collector is killed with SIGKILL ``kills`` times while decisions stream in."""
    began = time.monotonic()
    with EmbeddedBroker() as broker:
        ensure_topic(broker.bootstrap_servers, TOPIC, partitions=3)
        engine = _sqlite(workdir)
        collector = _collector(workdir, engine.url.render_as_string(), broker)
        agent = _agent(workdir, broker)
        try:
            stream = Stream(agent, rate).start()
            for _ in range(kills):
                # Killed only once it has stored something since it started, so every kill
                # lands while a batch can be in flight.
                target = stored_events(engine) + max(100, rate // 2)
                wait_until(lambda t=target: _caught_up(engine, t, collector), 120, "progress")
                collector.kill_and_restart()
            calls = stream.stop()
            report = agent.close(timeout_s=60)
            wait_until(
                lambda: _caught_up(engine, report.delivered, collector), SETTLE_S, "every event"
            )
        finally:
            collector.stop()
    return _row(
        tally(engine),
        began,
        scenario="collector killed",
        load=f"{rate:,} decisions/s",
        fault=f"SIGKILL {kills} times mid-stream",
        sent=calls.calls,
        note=f"agent: {report.dropped} dropped, {report.failed} failed",
    )


def database_stopped(workdir: Path, *, rate: int, down_s: float, around_s: float = 5) -> Row:
    """PostgreSQL (a private server) is stopped for ``down_s`` while decisions stream in."""
    began = time.monotonic()
    with PrivatePostgres() as postgres, EmbeddedBroker() as broker:
        ensure_topic(broker.bootstrap_servers, TOPIC, partitions=3)
        engine = make_engine(postgres.url)
        migrate(engine)
        collector = _collector(workdir, postgres.url, broker)
        agent = _agent(workdir, broker)
        try:
            stream = Stream(agent, rate).start()
            _wait_until_storing(engine, collector)
            time.sleep(around_s)
            postgres.stop()
            time.sleep(down_s)
            postgres.start()
            time.sleep(around_s)
            calls = stream.stop()
            report = agent.close(timeout_s=60)
            caught_up_s = wait_until(
                lambda: _caught_up(engine, report.delivered, collector), SETTLE_S, "every event"
            )
        finally:
            collector.stop()
        counted = tally(engine)
        engine.dispose()
    return _row(
        counted,
        began,
        scenario="database stopped",
        load=f"{rate:,} decisions/s",
        fault=f"PostgreSQL stopped for {down_s:.0f} s",
        sent=calls.calls,
        note=f"all stored {caught_up_s:.0f} s after the stream ended",
    )


def malformed_messages(workdir: Path, *, malformed: int, valid: int) -> Row:
    """``malformed`` undecodable messages of eleven kinds, mixed among ``valid`` events."""
    began = time.monotonic()
    with EmbeddedBroker() as broker:
        ensure_topic(broker.bootstrap_servers, TOPIC, partitions=3)
        engine = _sqlite(workdir)
        producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
        kinds = _malformed_kinds()
        for n in range(max(malformed, valid)):
            if n < valid:
                event = _decision(n)
                producer.produce(TOPIC, encode(event), event.kafka_key())
            if n < malformed:
                producer.produce(TOPIC, kinds[n % len(kinds)], f"bad-{n}".encode())
            producer.poll(0)
        assert producer.flush(60) == 0, "the broker did not take every message"
        collector = _collector(workdir, engine.url.render_as_string(), broker)
        try:
            wait_until(
                lambda: (
                    _caught_up(engine, valid, collector) and dead_letter_count(engine) >= malformed
                ),
                SETTLE_S,
                "every message read",
            )
        finally:
            collector.stop()
    counted = tally(engine)
    return _row(
        counted,
        began,
        scenario="malformed messages",
        load=f"{valid:,} valid events",
        fault=f"{malformed:,} malformed messages of {len(kinds)} kinds mixed in",
        sent=valid,
        note=f"{counted.dead_letters:,} kept as dead letters with their reason",
    )


ALERTING = """\
route:
  receiver: on-call
  group_by: [model]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: on-call
    webhook_configs: [{{url: "{url}/hook"}}]
"""


def receiver_down(workdir: Path, *, down_s: float, models: int = 3) -> Row:
    """Drift in ``models`` models is detected while the webhook receiver is down (nothing
    listens on its port) for ``down_s``; then it comes back."""
    began = time.monotonic()
    port = free_port()
    config = workdir / "alerting.yaml"
    config.write_text(ALERTING.format(url=f"http://127.0.0.1:{port}"))
    with EmbeddedBroker() as broker:
        ensure_topic(broker.bootstrap_servers, TOPIC, partitions=3)
        engine = _sqlite(workdir)
        url = engine.url.render_as_string()
        collector = _collector(workdir, url, broker)
        router = _router(workdir, url, broker, config)
        try:
            # A new router group starts at the end of the log: verdicts wait until it is in.
            wait_until(
                lambda: "assigned its partitions" in (workdir / "router.log").read_text(),
                60,
                "the router to join its group",
            )
            with _agent(
                workdir, broker, service="driftline-detector",
                producer_key_file=_producer_key_file(workdir),
            ) as detector:  # fmt: skip
                for n in range(models):
                    document = {
                        "type": "drift_detected",
                        "model": {"name": f"model-{n}", "version": MODEL.version},
                        "payload": drift_payload("debt_ratio"),
                    }
                    detector.record_signed(detector.complete_event(document))
                assert detector.flush(timeout_s=30).ok
            time.sleep(down_s)
            with recording_server(port=port) as receiver:
                came_back = time.monotonic()
                wait_until(
                    lambda: len(receiver.accepted()) >= models, SETTLE_S, "every notification"
                )
                delivered_after_s = time.monotonic() - came_back
                time.sleep(5)  # long enough for a second copy to arrive, if one were sent
                accepted = receiver.accepted()
        finally:
            router.send_signal(signal.SIGTERM)
            router.wait(timeout=30)
            collector.stop()
    groups = {body["groupKey"] for body in accepted}
    return Row(
        scenario="alert receiver down",
        load=f"drift in {models} models",
        fault=f"webhook receiver down for {down_s / 60:.0f} min"
        if down_s >= 60
        else f"webhook receiver down for {down_s:.0f} s",
        sent=models,
        stored=len(accepted),
        distinct=len(groups),
        intact=tally(engine).intact,
        seconds=time.monotonic() - began,
        note=f"delivered {delivered_after_s:.0f} s after it came back",
    )


# The first agent cannot reach any broker: what it records goes to its spool until the spool
# is at its cap. It prints its report, then waits to be killed.
FILLING_AGENT = textwrap.dedent(
    """
    import json, sys, time
    from driftline.agent import Driftline
    spool, nowhere, cap, events = sys.argv[1:5]
    agent = Driftline(service="reliability", kafka_bootstrap_servers=nowhere, spool_dir=spool,
                      delivery_timeout_ms=1000, spool_max_bytes=int(cap), spool_block_ms=0,
                      queue_size=int(events))
    for n in range(int(events)):
        agent.record_decision(model="reliability", version="1", inputs={"n": n}, output=n,
                              confidence=0.5, latency_ms=1)
    while True:
        report = agent.flush(timeout_s=0.5)
        if report.spooled + report.failed + report.dropped >= report.recorded:
            break
    print(json.dumps({"recorded": report.recorded, "spooled": report.spooled,
                      "refused": report.failed + report.dropped,
                      "why": sorted({f.reason for f in report.failures})}), flush=True)
    time.sleep(3600)
    """
)


def agent_killed_with_full_spool(workdir: Path, *, spool_bytes: int) -> Row:
    """An agent whose broker is unreachable fills its spool to the cap and is killed with
    SIGKILL; started again with the broker back, it delivers what it had spooled."""
    began = time.monotonic()
    spool = workdir / "agent-spool"
    events = spool_bytes // 200  # more than the spool holds: each event takes ~400 bytes there
    first = subprocess.Popen(
        [sys.executable, "-c", FILLING_AGENT, str(spool), f"127.0.0.1:{free_port()}",
         str(spool_bytes), str(events)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip
    try:
        assert first.stdout is not None
        filled = json.loads(next(line for line in first.stdout if line.startswith("{")))
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    spooled_bytes = sum(path.stat().st_size for path in spool.glob("*.seg"))
    with EmbeddedBroker() as broker:
        ensure_topic(broker.bootstrap_servers, TOPIC, partitions=3)
        engine = _sqlite(workdir)
        collector = _collector(workdir, engine.url.render_as_string(), broker)
        try:
            with Driftline(
                service="reliability",
                kafka_bootstrap_servers=broker.bootstrap_servers,
                topic=TOPIC,
                spool_dir=spool,
            ) as restarted:
                restarted.flush(timeout_s=120)
            wait_until(
                lambda: _caught_up(engine, filled["spooled"], collector), SETTLE_S, "the spool"
            )
        finally:
            collector.stop()
    return _row(
        tally(engine),
        began,
        scenario="agent killed, spool full",
        load=f"{filled['recorded']:,} decisions, broker unreachable",
        fault=f"SIGKILL with the spool at its {spool_bytes / 1024**2:g} MiB cap",
        sent=filled["spooled"],
        note=f"spool held {spooled_bytes / 1024**2:.2f} MiB; {filled['refused']:,} refused "
        f"({'; '.join(filled['why'])}), counted and logged by the agent, not sent; changes "
        "SPOOL_MAX_BYTES, "
        "DELIVERY_TIMEOUT_MS 1000 and SPOOL_BLOCK_MS 0, to reach the cap in seconds",
    )


def disk_full(workdir: Path, *, rate: int, cut_s: float, disk_kib: int, around_s: float = 5) -> Row:
    """The broker is cut off while the agent's spool sits on a real file system of
    ``disk_kib`` KiB (a tmpfs), far below the spool's cap: the disk fills mid-outage. Every
    event must be stored or counted as refused by the agent, and delivery must resume."""
    began = time.monotonic()
    disk = workdir / "small-disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={disk_kib}k", "tmpfs", str(disk)],
                   check=True)  # fmt: skip
    broker_port = free_port()
    proxy = TcpProxy(broker_port)
    try:
        with EmbeddedBroker(port=broker_port, advertised_port=proxy.port) as broker:
            ensure_topic(broker.bootstrap_servers, TOPIC, partitions=3)
            engine = _sqlite(workdir)
            collector = _collector(workdir, engine.url.render_as_string(), broker)
            agent = _agent(workdir, broker, spool_dir=disk / "spool")
            try:
                stream = Stream(agent, rate).start()
                _wait_until_storing(engine, collector)
                time.sleep(around_s)
                proxy.cut()
                time.sleep(cut_s)
                unready = agent.readiness()
                proxy.restore()
                time.sleep(around_s)
                calls = stream.stop()
                report = agent.close(timeout_s=SETTLE_S)
                wait_until(
                    lambda: _caught_up(engine, report.delivered, collector), SETTLE_S, "every event"
                )
            finally:
                collector.stop()
                proxy.close()
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)
    reasons = {failure.reason.rsplit(": ", 1)[-1] for failure in report.failures}
    return _row(
        tally(engine),
        began,
        scenario="spool disk full",
        load=f"{rate:,} decisions/s",
        fault=f"broker cut {cut_s:.0f} s, spool on a {disk_kib:,} KiB disk",
        sent=calls.calls - report.failed,  # a drop at a full queue counts as lost
        note=f"{report.failed:,} refused when the disk was full ({', '.join(sorted(reasons))}), "
        f"counted; /readyz during the cut: {'ready' if unready[0] else 'not ready'}; "
        "agent at its defaults",
    )


def poison_events(workdir: Path, *, rate: int, seconds: float, every_s: float = 0.05) -> Row:
    """Valid decisions stream through the agent into a collector on PostgreSQL, while poison
    goes straight onto the topic: oversize, NUL-bearing and deeply nested events, conflicting
    duplicates of valid events and invalid records. Every valid event must be stored once and
    every bad one be a dead letter; more poison is also recorded through the agent itself,
    which must refuse it."""
    began = time.monotonic()
    with PrivatePostgres() as postgres, EmbeddedBroker() as broker:
        ensure_topic(broker.bootstrap_servers, TOPIC, partitions=3)
        engine = make_engine(postgres.url)
        migrate(engine)
        collector = _collector(workdir, postgres.url, broker)
        agent = _agent(workdir, broker)
        producer = Producer({"bootstrap.servers": broker.bootstrap_servers,
                             "message.max.bytes": 4 * 1024**2})  # fmt: skip
        valid_injected = poison = via_agent = 0
        try:
            stream = Stream(agent, rate).start()
            _wait_until_storing(engine, collector)
            deadline = time.monotonic() + seconds
            kinds = _poison_kinds()
            n = 0
            while time.monotonic() < deadline:
                original = _decision(1_000_000 + n)
                producer.produce(TOPIC, encode(original), original.kafka_key())
                valid_injected += 1
                for raw in kinds[n % len(kinds)](original):
                    producer.produce(TOPIC, raw, original.kafka_key())
                    poison += 1
                agent.record_decision(model="reliability", version="1",
                                      inputs={"note": "a\x00b", "n": n}, output=n,
                                      confidence=0.5, latency_ms=1)  # fmt: skip
                via_agent += 1
                producer.poll(0)
                n += 1
                time.sleep(every_s)
            assert producer.flush(60) == 0, "the broker did not take every message"
            calls = stream.stop()
            report = agent.close(timeout_s=60)
            valid = calls.calls + valid_injected
            caught_up_s = wait_until(
                lambda: (
                    _caught_up(engine, valid, collector) and dead_letter_count(engine) >= poison
                ),
                SETTLE_S,
                "every message read",
            )
        finally:
            collector.stop()
        counted = tally(engine)
        engine.dispose()
    return _row(
        counted,
        began,
        scenario="poison events",
        load=f"{rate:,} decisions/s on PostgreSQL",
        fault=f"{poison:,} poison messages of {len(kinds)} kinds on the topic, "
        f"{via_agent:,} NUL-bearing decisions via the agent",
        sent=valid,
        note=f"{counted.dead_letters:,} dead letters for {poison:,} poison; the agent refused "
        f"{report.failed:,} of {via_agent:,} with the reason; caught up {caught_up_s:.0f} s after",
    )


def _poison_kinds() -> list[Callable[[DecisionEvent], list[bytes]]]:
    """Each makes the poison for one valid event already on the topic."""

    def with_inputs(event: DecisionEvent, inputs: bytes) -> bytes:
        return encode(event).replace(b'"inputs":{', b'"inputs":{"x":' + inputs + b",", 1)

    def renamed(event: DecisionEvent) -> DecisionEvent:
        return event.model_copy(update={"event_id": new_event_id()})

    return [
        lambda e: [with_inputs(renamed(e), b'"' + b"x" * (MAX_EVENT_BYTES + 1) + b'"')],
        lambda e: [with_inputs(renamed(e), b'"a\\u0000b"')],
        lambda e: [with_inputs(renamed(e), b"[" * 10_000 + b"]" * 10_000)],
        lambda e: [with_inputs(e, b'"forged"')],  # same event id, other content
        lambda e: [b'{"schema":1,"type":"decision"}', b"\x00\x01 not json"],
    ]


Scenario = Callable[..., Row]
SCENARIOS: dict[str, Scenario] = {
    "broker_cut": broker_cut,
    "collector_kills": collector_kills,
    "database_stopped": database_stopped,
    "malformed": malformed_messages,
    "receiver_down": receiver_down,
    "agent_spool": agent_killed_with_full_spool,
    "disk_full": disk_full,
    "poison": poison_events,
}
FULL: dict[str, dict[str, Any]] = {
    "broker_cut": {"rate": 2_000, "cut_s": 60},
    "collector_kills": {"rate": 500, "kills": 20},
    "database_stopped": {"rate": 500, "down_s": 30},
    "malformed": {"malformed": 10_000, "valid": 10_000},
    "receiver_down": {"down_s": 300},
    "agent_spool": {"spool_bytes": 16 * 1024**2},
    "disk_full": {"rate": 2_000, "cut_s": 60, "disk_kib": 8 * 1024},
    "poison": {"rate": 1_000, "seconds": 60},
}
SMALL: dict[str, dict[str, Any]] = {
    "broker_cut": {"rate": 200, "cut_s": 5, "around_s": 3},
    "collector_kills": {"rate": 200, "kills": 2},
    "database_stopped": {"rate": 200, "down_s": 5, "around_s": 3},
    "malformed": {"malformed": 330, "valid": 300},
    "receiver_down": {"down_s": 5},
    "agent_spool": {"spool_bytes": 512 * 1024},  # a whole batch of 500 fits, however batched
    "disk_full": {"rate": 200, "cut_s": 8, "disk_kib": 256, "around_s": 3},
    "poison": {"rate": 200, "seconds": 5},
}


def _row(counted: Tally, began: float, **fields: Any) -> Row:
    """A row for a scenario that began at ``began``, from what its store holds."""
    return Row(
        stored=counted.stored,
        distinct=counted.distinct,
        intact=counted.intact,
        seconds=time.monotonic() - began,
        **fields,
    )


def _sqlite(workdir: Path) -> Any:
    engine = make_engine(f"sqlite:///{workdir / 'driftline.db'}")
    migrate(engine)
    return engine


def _collector(workdir: Path, database_url: str, broker: EmbeddedBroker) -> CollectorProcess:
    return CollectorProcess(
        database_url=database_url,
        bootstrap_servers=broker.bootstrap_servers,
        topic=TOPIC,
        group="reliability",
        log=workdir / "collector.log",
        producer_key_file=_producer_key_file(workdir),
    )


def _producer_key_file(workdir: Path) -> Path:
    """The scenario's producer key, made once: its components sign with it, its collector
    trusts it."""
    path = workdir / "producer-key.pem"
    ProducerKey.load(path, create=True)
    return path


def _router(
    workdir: Path, database_url: str, broker: EmbeddedBroker, config: Path
) -> subprocess.Popen[bytes]:
    environment = os.environ | {
        "DRIFTLINE_DATABASE_URL": database_url,
        "DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "DRIFTLINE_TOPIC": TOPIC,
        "DRIFTLINE_ALERTING_CONFIG": str(config),
        "DRIFTLINE_ROUTER_SPOOL_DIR": str(workdir / "router-spool"),
        "DRIFTLINE_MIGRATE_ON_START": "false",
        "DRIFTLINE_PRODUCER_KEY_FILE": str(_producer_key_file(workdir)),
    }
    with (workdir / "router.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "driftline", "route"],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _agent(workdir: Path, broker: EmbeddedBroker, **settings: Any) -> Driftline:
    """An agent at the README's defaults but for ``settings``, spooling in ``workdir``."""
    return Driftline(
        **({"service": "reliability", "spool_dir": workdir / f"spool-{uuid.uuid4().hex[:8]}"}
           | settings),
        kafka_bootstrap_servers=broker.bootstrap_servers,
        topic=TOPIC,
    )  # fmt: skip


def _wait_until_storing(engine: Any, collector: CollectorProcess) -> None:
    """The fault comes to a running system: the collector has joined and stored."""
    wait_until(lambda: _caught_up(engine, 1, collector), 120, "the collector to store")


def _caught_up(engine: Any, expected: int, collector: CollectorProcess) -> bool:
    collector.check_alive()
    return stored_events(engine) >= expected


def _decision(n: int) -> DecisionEvent:
    return DecisionEvent(
        service="reliability",
        model=ModelRef(name="reliability", version="1"),
        decision_id=uuid.uuid4(),
        payload=DecisionPayload(
            inputs={"n": n}, output="approve", confidence=0.9, latency_ms=1.0, automated=True
        ),
    )


def _malformed_kinds() -> list[bytes | None]:
    valid = encode(_decision(0))
    return [
        b"not json at all",
        b"",
        b"\xff\xfe\x00garbage",
        b"[1, 2, 3]",
        valid.replace(f'"schema":{SCHEMA_VERSION}'.encode(), b'"schema":99'),
        valid.replace(b'"type":"decision"', b'"type":"rumour"'),
        valid.replace(b'"confidence":0.9', b'"confidence":1.5'),
        valid.replace(b'"output":"approve"', b'"output":NaN'),
        valid.replace(b'"n":0', b'"n":1e400'),
        valid.replace(b'"output":"approve"', b'"output":"\\ud800"'),
        None,  # a tombstone
    ]

"""Alert routing end to end: drift verdicts travel through Kafka to the router, which groups
them, mutes what is silenced or inhibited, and notifies a real HTTP server on loopback standing
in for the team's webhook; every accepted notification comes back as an ``alert_notified``
event in the ledger."""

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Producer
from sqlalchemy import Engine
from sqlmodel import Session, select

from driftline.agent import Driftline
from driftline.agent.contract import Event, decode, validate, wire_bytes
from driftline.agent.provenance import ProducerKey
from driftline.collector.alerting.config import load_alerting
from driftline.collector.alerting.router import ROUTER_SERVICE, AlertRouter
from driftline.collector.core.producer_keys import trusted_producers
from driftline.collector.core.settings import CollectorSettings
from driftline.collector.runtime.broker import EmbeddedBroker
from driftline.collector.store.models import AlertNotification, Silence
from tests import events
from tests.collector.test_drift_worker import store
from tests.events import MODEL, drift_payload
from tests.http_recorder import Recorder, recording_server
from tests.waiting import wait_for

CONFIG = """\
route:
  receiver: team
  group_by: [model, version]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - {{receiver: chat, continue: true}}
    - {{receiver: pager, continue: true}}
    - {{receiver: team}}
receivers:
  - name: team
    webhook_configs: [{{url: "{url}/hook"}}]
  - name: chat
    slack_configs: [{{api_url: "{slack}/services/T0/B0/x", channel: "#risk"}}]
  - name: pager
    pagerduty_configs: [{{routing_key: key-1, url: "{pagerduty}/v2/enqueue"}}]
inhibit_rules:
  - source_matchers: ['feature="upstream"']
    target_matchers: ['feature=~"downstream.*"']
    equal: [model]
owners:
  - matchers: ['model="credit-risk"']
    owner: risk-ml-team
    escalation: [risk-oncall, head-of-ml]
    runbook: https://runbooks.example/credit-risk
"""


@pytest.fixture
def webhook() -> Iterator[Recorder]:
    with recording_server() as recorder:
        yield recorder


@pytest.fixture
def slack() -> Iterator[Recorder]:
    with recording_server() as recorder:
        yield recorder


@pytest.fixture
def pagerduty() -> Iterator[Recorder]:
    with recording_server() as recorder:
        yield recorder


@pytest.fixture
def router(
    broker: EmbeddedBroker,
    topic: str,
    engine: Engine,
    webhook: Recorder,
    slack: Recorder,
    pagerduty: Recorder,
    tmp_path: Path,
) -> Iterator[AlertRouter]:
    path = tmp_path / "alerting.yaml"
    path.write_text(CONFIG.format(url=webhook.url, slack=slack.url, pagerduty=pagerduty.url))
    stop = threading.Event()
    with (
        Driftline(
            service=ROUTER_SERVICE,
            kafka_bootstrap_servers=broker.bootstrap_servers,
            topic=topic,
            spool_dir=tmp_path / "router-spool",
        ) as agent,
        httpx.Client(timeout=5) as client,
    ):
        router = AlertRouter(
            engine=engine,
            config=load_alerting(path),
            agent=agent,
            client=client,
            external_url="http://driftline.example",
            producers=trusted_producers(CollectorSettings()),
        )
        settings = CollectorSettings(topic=topic, router_group=f"router-{topic}")
        thread = threading.Thread(
            target=router.run, args=(stop, settings, broker.bootstrap_servers), daemon=True
        )
        thread.start()
        assert router.consuming.wait(30), "the router never joined its consumer group"
        yield router
        stop.set()
        thread.join(timeout=15)


@pytest.fixture
def detector(broker: EmbeddedBroker, topic: str) -> Iterator[Callable[..., None]]:
    with Driftline(
        service="driftline-detector", kafka_bootstrap_servers=broker.bootstrap_servers, topic=topic
    ) as agent:

        def verdict(state: str, *features: str) -> None:
            """Verdicts on ``features``, flushed together: a burst reaches the router within
            one group interval (flushed one by one under load, it can straddle two)."""
            for feature in features:
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

        yield verdict


def alerts_of(body: Any) -> list[tuple[str, str]]:
    return sorted((a["labels"]["feature"], a["status"]) for a in body["alerts"])


def test_a_burst_is_one_notification_per_receiver_then_one_resolution_each_in_the_ledger(
    router: AlertRouter,
    detector: Callable[..., None],
    webhook: Recorder,
    slack: Recorder,
    pagerduty: Recorder,
    engine: Engine,
    run_collector: Callable[[], None],
) -> None:
    store(engine, [events.decision(service="loan-desk")])
    run_collector()
    detector("detected", *(f"f{n:02d}" for n in range(50)))
    (body,) = wait_for(webhook.accepted, lambda got: len(got) >= 1, what="the grouped alert")
    assert body["version"] == "4" and body["status"] == "firing"
    assert len(body["alerts"]) == 50
    # The AI service, not the detector that sent the verdict; its drift page, not the API.
    assert body["commonLabels"]["service"] == "loan-desk"
    page = f"http://driftline.example/ui/drift/{MODEL.name}/{MODEL.version}"
    assert {a["generatorURL"] for a in body["alerts"]} == {page}
    assert body["commonLabels"]["owner"] == "risk-ml-team"
    assert body["commonAnnotations"]["runbook_url"] == "https://runbooks.example/credit-risk"
    assert body["commonAnnotations"]["escalation"] == "risk-oncall → head-of-ml"

    detector("resolved", *(f"f{n:02d}" for n in range(50)))
    wait_for(webhook.accepted, lambda got: len(got) >= 2, what="the resolution")
    resolved = webhook.accepted()[1]
    assert resolved["status"] == "resolved" and len(resolved["alerts"]) == 50

    def notified() -> list[str]:
        with Session(engine) as session:
            return [n.status for n in session.exec(select(AlertNotification)).all()]

    (chat_firing, chat_resolved) = wait_for(slack.accepted, lambda got: len(got) >= 2)
    assert chat_firing["channel"] == "#risk" and "[FIRING:50]" in chat_firing["text"]
    line = chat_firing["blocks"][1]["text"]["text"]
    assert "Owner: risk-ml-team; escalation: risk-oncall → head-of-ml" in line
    assert f"<{page}|drift page> · <https://runbooks.example/credit-risk|runbook>" in line
    assert "[RESOLVED:50]" in chat_resolved["text"]
    trigger, resolve = wait_for(pagerduty.accepted, lambda got: len(got) >= 2)
    assert (trigger["event_action"], resolve["event_action"]) == ("trigger", "resolve")
    assert trigger["dedup_key"] == resolve["dedup_key"]
    assert trigger["payload"]["source"] == "loan-desk"
    assert trigger["payload"]["custom_details"]["owner"] == "risk-ml-team"
    assert trigger["payload"]["custom_details"]["escalation"] == "risk-oncall → head-of-ml"
    assert [link["href"] for link in trigger["links"]] == [
        page,
        "https://runbooks.example/credit-risk",
    ]
    assert [path for path, _, _ in pagerduty.requests] == ["/v2/enqueue"] * 2

    statuses = wait_for(notified, lambda s: len(s) == 6, what="alert_notified events")
    assert sorted(statuses) == ["firing"] * 3 + ["resolved"] * 3
    # nothing repeated or sent twice
    assert (len(webhook.accepted()), len(slack.accepted()), len(pagerduty.accepted())) == (2, 2, 2)


def test_a_silence_mutes_until_it_ends_and_an_inhibition_while_its_source_fires(
    router: AlertRouter, detector: Callable[..., None], webhook: Recorder, engine: Engine
) -> None:
    now, silence_id = datetime.now(UTC), uuid.uuid4()
    silence = Silence(
        id=silence_id, matchers=['feature="noisy"'], starts_at=now,
        ends_at=now + timedelta(hours=1), created_by="a.kim", comment="known, fixing",
        created_at=now,
    )  # fmt: skip
    with Session(engine) as session:
        session.add(silence)
        session.commit()
    detector("detected", "noisy")
    detector("detected", "upstream")
    detector("detected", "downstream_a")
    (first,) = wait_for(webhook.accepted, lambda got: len(got) >= 1, what="a notification")
    assert alerts_of(first) == [("upstream", "firing")]

    with Session(engine) as session:
        stored = session.get(Silence, silence_id)
        assert stored is not None
        stored.ends_at = datetime.now(UTC)
        session.add(stored)
        session.commit()
    second = wait_for(webhook.accepted, lambda got: len(got) >= 2, what="the silence ending")[1]
    assert ("noisy", "firing") in alerts_of(second)
    assert ("downstream_a", "firing") not in alerts_of(second)

    detector("resolved", "upstream")
    third = wait_for(webhook.accepted, lambda got: len(got) >= 3, what="the source resolving")[2]
    assert ("downstream_a", "firing") in alerts_of(third)
    assert ("upstream", "resolved") in alerts_of(third)


def test_the_router_decodes_only_verdicts_and_still_takes_one_without_a_header(
    router: AlertRouter,
    detector: Callable[..., None],
    webhook: Recorder,
    broker: EmbeddedBroker,
    topic: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decoded: list[str] = []

    def counting_decode(raw: bytes) -> Event:
        event = decode(raw)
        decoded.append(event.type)
        return event

    monkeypatch.setattr("driftline.collector.alerting.router.decode", counting_decode)
    with Driftline(
        service="s", kafka_bootstrap_servers=broker.bootstrap_servers, topic=topic
    ) as agent:
        for n in range(20):
            agent.record_decision(
                model=MODEL.name, version=MODEL.version, inputs={"n": n}, output=n,
                confidence=0.5, latency_ms=1,
            )  # fmt: skip
        assert agent.flush(timeout_s=30).ok
        # As an agent from before the event-type header sent it: no headers at all.
        old = validate(
            agent.complete_event(
                {
                    "type": "drift_detected",
                    "model": {"name": MODEL.name, "version": MODEL.version},
                    "payload": drift_payload("without_header"),
                }
            )
        )
    old = ProducerKey.load(Path(os.environ["DRIFTLINE_PRODUCER_KEY_FILE"])).seal(old)
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
    producer.produce(topic, wire_bytes(old), old.kafka_key())
    assert producer.flush(10) == 0
    detector("detected", "with_header")

    def features() -> set[str]:
        return {feature for body in webhook.accepted() for feature, _ in alerts_of(body)}

    wait_for(features, lambda got: got == {"with_header", "without_header"}, what="both alerts")
    assert decoded == ["drift_detected", "drift_detected"], "a decision was decoded"


def test_an_unsigned_verdict_pages_nobody_and_a_garbled_header_stops_nothing(
    router: AlertRouter,
    detector: Callable[..., None],
    webhook: Recorder,
    broker: EmbeddedBroker,
    topic: str,
) -> None:
    with Driftline(
        service="s", kafka_bootstrap_servers=broker.bootstrap_servers, topic=topic
    ) as agent:
        document = agent.complete_event(
            {
                "type": "drift_detected",
                "model": {"name": MODEL.name, "version": MODEL.version},
                "payload": drift_payload("forged"),
            }
        )
    forged = validate(document)  # well formed, signed by nobody: what any producer can send
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
    producer.produce(
        topic, wire_bytes(forged), forged.kafka_key(),
        headers=[("driftline-event-type", b"drift_detected")],
    )  # fmt: skip
    producer.produce(topic, b"{}", b"k", headers=[("driftline-event-type", b"\xff\xfe")])
    assert producer.flush(10) == 0
    detector("detected", "signed")  # behind both, on whatever partition

    def features() -> set[str]:
        return {feature for body in webhook.accepted() for feature, _ in alerts_of(body)}

    wait_for(features, lambda got: "signed" in got, what="the signed verdict's alert")
    assert features() == {"signed"}  # the forged one would have been in the same group

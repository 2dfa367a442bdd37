"""Driftline's own components record typed events (``record_component``): a mistake raises
where the event is written, on the caller's thread; a good one travels signed; and the answer
says whether the agent took it."""

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from driftline.agent import Driftline
from driftline.agent.contract import DrillCompletedEvent, DrillCompletedPayload, ModelRef, decode
from driftline.agent.provenance import ProducerKey, TrustedProducers
from driftline.collector.runtime.broker import EmbeddedBroker
from tests.topic_reader import read_topic

MODEL = ModelRef(name="credit-risk", version="3")
DRILL = DrillCompletedPayload(
    version="3", synthetic_version="3~drill-1", passed=True, reason="notified team",
    seconds_to_notification=4.2, receivers=["team"],
)  # fmt: skip


def test_a_payload_of_another_type_or_version_raises_where_it_is_written() -> None:
    with Driftline(service="driftline-drill", kafka_bootstrap_servers="127.0.0.1:1") as agent:
        with pytest.raises(ValidationError, match="instance of DriftPayload"):
            agent.record_component("drift_detected", DRILL, model=MODEL)
        with pytest.raises(ValidationError, match=r"differs from model\.version '4'"):
            agent.record_component("drill_completed", DRILL, model=ModelRef(name="m", version="4"))
        assert agent.flush(timeout_s=0).recorded == 0  # nothing reached the queue


def test_a_payload_field_is_checked_where_the_payload_is_built() -> None:
    with pytest.raises(ValidationError, match="receivers"):
        DrillCompletedPayload(**(DRILL.model_dump() | {"receivers": "team"}))


def test_a_component_event_travels_signed_by_the_agents_producer_key(
    broker: EmbeddedBroker, topic: str
) -> None:
    with Driftline(
        service="driftline-drill", kafka_bootstrap_servers=broker.bootstrap_servers, topic=topic
    ) as agent:
        recorded = agent.record_component("drill_completed", DRILL, model=MODEL)
        assert recorded.queued and agent.flush().delivered == 1
    (record,) = read_topic(broker.bootstrap_servers, topic, 1)
    event = decode(record.value)
    assert isinstance(event, DrillCompletedEvent) and event.event_id == recorded
    assert (event.service, event.model, event.payload) == ("driftline-drill", MODEL, DRILL)
    key = ProducerKey.load(Path(os.environ["DRIFTLINE_PRODUCER_KEY_FILE"]))
    assert TrustedProducers([key.public_key]).refusal(event) is None


def test_without_a_producer_key_it_is_refused_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DRIFTLINE_PRODUCER_KEY_FILE")
    with Driftline(service="driftline-drill", kafka_bootstrap_servers="127.0.0.1:1") as agent:
        assert not agent.record_component("drill_completed", DRILL, model=MODEL).queued
        assert agent.flush(timeout_s=0).failed == 1

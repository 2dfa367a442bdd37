"""The agent's counters about events are labelled by service and model: each model is counted
apart, also for events found in the spool at start, and past a hundred pairs the rest fold into
model="(other)"; the exposition passes promtool."""

from pathlib import Path

from prometheus_client import generate_latest

from driftline.agent import Driftline
from driftline.agent.contract import wire_bytes
from driftline.agent.labels import MAX_PAIRS, OTHER, EventLabels, LabelCap, of_wire
from driftline.collector.runtime.broker import EmbeddedBroker, free_port
from tests import events
from tests.integration.test_metrics import needs_promtool, promtool_check


def decide(agent: Driftline, model: str, inputs: dict[str, object] | None = None) -> None:
    agent.record_decision(
        model=model, version="1", inputs=inputs or {}, output=1, confidence=0.5, latency_ms=1
    )


def count(agent: Driftline, name: str, model: str, service: str = "loan-desk") -> float | None:
    labels = {"model": model, "service": service}
    return agent.metrics.get_sample_value(f"driftline_agent_{name}_total", labels)


def nowhere() -> str:
    return f"127.0.0.1:{free_port()}"


def test_decisions_of_two_models_are_counted_apart(broker: EmbeddedBroker, topic: str) -> None:
    with Driftline(
        service="loan-desk", kafka_bootstrap_servers=broker.bootstrap_servers, topic=topic
    ) as agent:
        decide(agent, "credit-risk", {"contact": "jane.doe@example.com"})
        decide(agent, "credit-risk")
        decide(agent, "fraud")
        assert agent.flush().ok
        # Not a service's to record: refused, and counted as failed under its own labels.
        component = {"type": "drift_detected", "service": "risk", "model": {"name": "scorer"}}
        assert not agent.record_event(component)

        assert count(agent, "events_recorded", "credit-risk") == 2
        assert count(agent, "events_delivered", "credit-risk") == 2
        assert count(agent, "events_recorded", "fraud") == 1
        assert count(agent, "events_delivered", "fraud") == 1
        assert count(agent, "redactions", "credit-risk") == 1
        assert count(agent, "redactions", "fraud") is None
        assert count(agent, "events_failed", "scorer", "risk") == 1
        assert count(agent, "events_failed", "credit-risk") is None


def test_past_a_hundred_pairs_the_rest_fold_into_other(tmp_path: Path) -> None:
    with Driftline(
        service="loan-desk", kafka_bootstrap_servers=nowhere(), spool_dir=tmp_path,
        delivery_timeout_ms=1_000,
    ) as agent:  # fmt: skip
        for n in range(MAX_PAIRS + 1):
            decide(agent, f"model-{n}")
        decide(agent, f"model-{MAX_PAIRS + 1}")
        decide(agent, "model-0")  # admitted before the cap: still its own

        assert count(agent, "events_recorded", "model-0") == 2
        assert count(agent, "events_recorded", f"model-{MAX_PAIRS - 1}") == 1
        assert count(agent, "events_recorded", f"model-{MAX_PAIRS}") is None
        assert count(agent, "events_recorded", OTHER) == 2
        exposed = [
            sample
            for family in agent.metrics.collect()
            if family.name == "driftline_agent_events_recorded"
            for sample in family.samples
        ]
        assert len(exposed) == MAX_PAIRS + 1


def test_the_cap_folds_a_new_service_too() -> None:
    cap = LabelCap(limit=2)
    assert cap(EventLabels("s", "a")) == EventLabels("s", "a")
    assert cap(EventLabels("t", "b")) == EventLabels("t", "b")
    assert cap(EventLabels("s", "c")) == EventLabels("s", OTHER)
    assert cap(EventLabels("u", "a")) == EventLabels(OTHER, OTHER)
    assert cap(EventLabels("t", "b")) == EventLabels("t", "b")


def test_events_found_in_the_spool_count_under_their_own_model(
    broker: EmbeddedBroker, topic: str, tmp_path: Path
) -> None:
    with Driftline(
        service="loan-desk", kafka_bootstrap_servers=nowhere(), spool_dir=tmp_path,
        delivery_timeout_ms=1_000,
    ) as offline:  # fmt: skip
        for model in ("credit-risk", "credit-risk", "fraud"):
            decide(offline, model)
    assert offline.close(timeout_s=2).spooled == 3

    with Driftline(
        service="loan-desk", kafka_bootstrap_servers=broker.bootstrap_servers, topic=topic,
        spool_dir=tmp_path,
    ) as online:  # fmt: skip
        assert count(online, "events_recorded", "credit-risk") == 2  # at start, from the spool
        assert count(online, "events_recorded", "fraud") == 1
        assert online.flush(timeout_s=30).delivered == 3
        assert count(online, "events_delivered", "credit-risk") == 2  # read back from the wire
        assert count(online, "events_delivered", "fraud") == 1


def test_labels_are_read_from_the_wire_or_left_unknown() -> None:
    event = events.decision()
    assert of_wire(wire_bytes(event)) == EventLabels(event.service, event.model.name)
    assert of_wire(b"not json") == EventLabels("(none)", "(none)")
    assert of_wire(b'{"n": 1}') == EventLabels("(none)", "(none)")


@needs_promtool
def test_the_labelled_exposition_passes_promtool(tmp_path: Path) -> None:
    with Driftline(
        service="loan-desk", kafka_bootstrap_servers=nowhere(), spool_dir=tmp_path,
        delivery_timeout_ms=1_000,
    ) as agent:  # fmt: skip
        decide(agent, 'quoted "model" \\ with\nnewline', {"contact": "jane.doe@example.com"})
        decide(agent, "credit-risk")
        promtool_check(generate_latest(agent.metrics).decode())

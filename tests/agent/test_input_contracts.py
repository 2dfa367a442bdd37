"""Data contracts: an input that breaks its model's schema is recorded with its violations and
counted, the violations never carry the value, and a broken contracts file is named."""

from pathlib import Path

import structlog
from jsonschema import Draft202012Validator
from prometheus_client import generate_latest

from driftline.agent import Driftline
from driftline.agent.contract import DecisionEvent, decode
from driftline.agent.input_contracts import ContractCheck
from driftline.collector.runtime.broker import EmbeddedBroker
from tests.topic_reader import read_topic

SCHEMA = {
    "type": "object",
    "required": ["income", "region"],
    "properties": {
        "income": {"type": "integer", "minimum": 0},
        "region": {"enum": ["north", "south"]},
        "tax_id": {"type": "string", "pattern": "^[0-9]{9}$"},
    },
}
CONTRACTS = """
credit-risk:
  type: object
  required: [income, region]
  properties:
    income: {type: integer, minimum: 0}
    region: {enum: [north, south]}
"""


def check(inputs: object) -> list[str]:
    document = {
        "type": "decision",
        "service": "s",
        "model": {"name": "credit-risk", "version": "1"},
        "payload": {"inputs": inputs},
    }
    ContractCheck({"credit-risk": Draft202012Validator(SCHEMA)})(document)
    violations: list[str] = document["payload"]["contract_violations"]  # type: ignore[index]
    return violations


def test_inputs_that_meet_the_contract_have_no_violations() -> None:
    assert check({"income": 52_000, "region": "north"}) == []


def test_each_broken_rule_is_named_by_field_and_rule() -> None:
    assert check({"income": -5, "region": "mars"}) == [
        "income: minimum 0",
        "region: enum ['north', 'south']",
    ]
    assert check({"income": 1}) == ["inputs: required region"]


def test_a_violation_never_carries_the_value() -> None:
    (violation,) = check({"income": 1, "region": "north", "tax_id": "jane.doe@example.com"})
    assert violation == "tax_id: pattern ^[0-9]{9}$"


def test_violations_travel_with_the_decision_and_are_counted(
    broker: EmbeddedBroker, topic: str, tmp_path: Path
) -> None:
    contracts = tmp_path / "contracts.yaml"
    contracts.write_text(CONTRACTS)
    with Driftline(
        service="loan-desk",
        kafka_bootstrap_servers=broker.bootstrap_servers,
        topic=topic,
        input_contracts=contracts,
    ) as agent:
        for inputs in ({"income": 1, "region": "north"}, {"income": "lots", "region": "north"}):
            agent.record_decision(
                model="credit-risk", version="1", inputs=inputs, output=1, confidence=0.5,
                latency_ms=1,
            )  # fmt: skip
        assert agent.flush().ok
        metrics = generate_latest(agent.metrics).decode()

    events = [decode(r.value) for r in read_topic(broker.bootstrap_servers, topic, 2)]
    violations = sorted(
        e.payload.contract_violations for e in events if isinstance(e, DecisionEvent)
    )
    assert violations == [[], ["income: type integer"]]
    assert (
        'driftline_agent_contract_violations_total{model="credit-risk",service="loan-desk"} 1.0'
        in metrics
    )


def test_a_broken_contracts_file_is_named_and_recording_goes_on(
    broker: EmbeddedBroker, topic: str, tmp_path: Path
) -> None:
    contracts = tmp_path / "contracts.yaml"
    contracts.write_text("credit-risk:\n  type: objekt\n")
    with structlog.testing.capture_logs() as logs:
        agent = Driftline(
            service="s",
            kafka_bootstrap_servers=broker.bootstrap_servers,
            topic=topic,
            input_contracts=contracts,
        )
        agent.record_decision(
            model="credit-risk", version="1", inputs={}, output=1, confidence=0.5, latency_ms=1
        )
        report = agent.close()

    (error,) = [log for log in logs if log["log_level"] == "error"]
    assert "DRIFTLINE_INPUT_CONTRACTS" in error["event"]
    assert "contracts.yaml: credit-risk: type" in error["problem"]
    assert report.ok and report.delivered == 1

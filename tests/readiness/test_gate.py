"""The go-live gate: a version that meets its agreed threshold passes; each criterion alone
fails it, with the failing figure shown; data too thin to decide is reported as such and is
never a pass."""

import json
import os
import random
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, update
from sqlmodel import Session, select

from driftline.agent.contract import (
    BaselineSetEvent,
    BaselineSetPayload,
    DecisionPayload,
    Event,
    FeedbackPayload,
    ReviewPayload,
    baseline_digest,
    encode,
)
from driftline.agent.provenance import ProducerKey
from driftline.collector.alerting.config import AlertingConfig, load_alerting
from driftline.collector.consume.ingest import RawMessage, write_batch
from driftline.collector.golive.gate import Evaluation, evaluate
from driftline.collector.golive.thresholds import ReadinessConfigError, Threshold, load_thresholds
from driftline.collector.runtime.broker import EmbeddedBroker
from driftline.collector.store import ledger
from driftline.collector.store.models import AgreedThresholds, DriftVerdict, Drill, LedgerEntry
from tests import events
from tests.api_client import api_client
from tests.waiting import wait_for

NOW = datetime.now(UTC)
DECISIONS = 600
THRESHOLDS = """\
thresholds:
  - model: credit-risk
    version: "3"
    window: 7d
    min_decisions: 500
    technical: {latency_p95_ms: 50, latency_p99_ms: 100}
    data: {max_contract_violation_rate: 0.05, no_open_input_drift: true}
    organisational: {named_owner: true}
    governance:
      ledger_verifies: true
      review_below_confidence: 0.7
      min_review_coverage: 0.95
      max_override_rate: 0.10
      min_accuracy: 0.9
      min_labelled: 200
"""
ALERTING = """\
route: {receiver: team}
receivers: [{name: team}]
owners:
  - matchers: ['model="credit-risk"']
    owner: risk-ml-team
    escalation: [a.kim, head-of-risk]
"""

# What the command checks beside the thresholds: the model's data contract and its
# accountability map, both complete for the stored decisions.
CONTRACTS = """\
credit-risk:
  inputs: {type: object, properties: {income: {type: number, minimum: 0}}}
  sources:
    - {name: bureau, fields: [income], owner: bureau-team, update_every: 2d,
       fallback: every decision sent to review}
  consumers:
    - {name: loan-desk, owner: lending, consequence: an application waits}
"""
ACCOUNTABILITY = """\
decision_types:
  - {{model: credit-risk, accountable: head-of-credit, escalation: [risk-oncall],
     audit_trail: the ledger, reviewed_on: {today}}}
"""


@pytest.fixture
def store(engine: Engine) -> Engine:
    """600 decisions of the last day: latency 5-40 ms, 2% breaking the contract, every decision
    under 0.7 reviewed but one in 40, 5% overridden, 300 labelled of which 95% right."""
    rng = random.Random(7)
    batch: list[Event] = []
    for n in range(DECISIONS):
        confidence = rng.uniform(0.3, 1.0)
        decision = events.decision(
            occurred_at=NOW - timedelta(hours=23) + timedelta(seconds=n * 100),
            payload=DecisionPayload(
                inputs={"income": rng.randrange(10_000, 90_000)}, output="approve",
                confidence=confidence, latency_ms=rng.uniform(5, 40), automated=True,
                contract_violations=["income: minimum 0"] if n % 50 == 0 else [],
            ),
        )  # fmt: skip
        batch.append(decision)
        if (confidence < 0.7 and n % 40 != 1) or n % 20 == 0:
            action = "override" if n % 20 == 0 else "approve"
            review = ReviewPayload(
                reviewer="a.kim",
                action=action,
                new_output="decline" if action == "override" else None,
            )
            batch.append(events.review(decision.decision_id, payload=review))
        if n % 2 == 0:
            feedback = FeedbackPayload(correct=n % 40 != 0, reporter="collections")
            batch.append(events.feedback(decision.decision_id, payload=feedback))
    baseline = BaselineSetEvent(
        service="loan-desk", model=events.MODEL, occurred_at=NOW - timedelta(days=2),
        payload=BaselineSetPayload(
            version="3", baseline_id=baseline_digest({}), source="reference.csv",
            set_by="tests", size=1_000, record={},
        ),
    )  # fmt: skip
    # Signed as the detector signs it: the gate's ledger check wants every component's event so.
    producer = ProducerKey.load(Path(os.environ["DRIFTLINE_PRODUCER_KEY_FILE"]))
    batch.append(producer.seal(baseline))
    with Session(engine) as session:
        messages = [RawMessage("events", n % 3, n, None, encode(e)) for n, e in enumerate(batch)]
        write_batch(session, messages)
        session.commit()
    return engine


@pytest.fixture
def threshold(tmp_path: Path) -> Threshold:
    path = tmp_path / "thresholds.yaml"
    path.write_text(THRESHOLDS)
    found = load_thresholds(path).for_version("credit-risk", "3")
    assert found is not None
    return found


@pytest.fixture
def alerting(tmp_path: Path) -> AlertingConfig:
    path = tmp_path / "alerting.yaml"
    path.write_text(ALERTING)
    return load_alerting(path)


def gate(
    engine: Engine, threshold: Threshold, alerting: AlertingConfig | None, **changes: Any
) -> Evaluation:
    if changes:
        threshold = threshold.model_copy(
            update={
                area: getattr(threshold, area).model_copy(update=values)
                if isinstance(values, dict)
                else values
                for area, values in changes.items()
            }
        )
    with Session(engine) as session:
        return evaluate(
            session, threshold, model="credit-risk", version="3", now=NOW, alerting=alerting,
            ledger_intact=lambda: ledger.verify(session).intact,
        )  # fmt: skip


def by_name(evaluation: Evaluation) -> dict[str, Any]:
    return {c.name: c for c in evaluation.criteria}


def test_a_version_that_meets_its_threshold_is_a_go(
    store: Engine, threshold: Threshold, alerting: AlertingConfig
) -> None:
    evaluation = gate(store, threshold, alerting)
    assert [c for c in evaluation.criteria if c.status != "pass"] == []
    assert evaluation.verdict == "go"
    criteria = by_name(evaluation)
    assert criteria["latency p95"].sample == DECISIONS
    assert criteria["owner and escalation"].measured == "risk-ml-team; a.kim → head-of-risk"
    assert criteria["contract violations"].measured == "2.00%"


@pytest.mark.parametrize(
    ("changes", "criterion", "measured"),
    [
        ({"technical": {"latency_p95_ms": 20}}, "latency p95", " ms"),
        ({"technical": {"latency_p99_ms": 30}}, "latency p99", " ms"),
        ({"data": {"max_contract_violation_rate": 0.01}}, "contract violations", "2.00%"),
        ({"governance": {"min_review_coverage": 0.99}}, "review coverage", "%"),
        ({"governance": {"max_override_rate": 0.01}}, "override rate", "5.00%"),
        ({"governance": {"min_accuracy": 0.99}}, "accuracy (feedback)", "95.0%"),
    ],
)
def test_each_criterion_alone_fails_the_gate_showing_its_figure(
    store: Engine,
    threshold: Threshold,
    alerting: AlertingConfig,
    changes: dict[str, Any],
    criterion: str,
    measured: str,
) -> None:
    evaluation = gate(store, threshold, alerting, **changes)
    failed = [c for c in evaluation.criteria if c.status == "fail"]
    assert [c.name for c in failed] == [criterion]
    assert failed[0].measured is not None and measured in failed[0].measured
    assert evaluation.verdict == "no-go"


def test_an_open_input_drift_fails_the_gate(
    store: Engine, threshold: Threshold, alerting: AlertingConfig
) -> None:
    with Session(store) as session:
        session.add(
            DriftVerdict(
                event_id=uuid.uuid4(), occurred_at=NOW - timedelta(hours=1),
                model_name="credit-risk", model_version="3", state="detected",
                baseline_id=baseline_digest({}), feature="income", test="ks", statistic=0.3,
                p_value=1e-9, adjusted_p=1e-8, false_alarm_rate=0.01,
                effect_name="wasserstein_sd", effect=0.5, window_start=NOW, window_end=NOW,
                baseline_size=1_000, current_size=500,
            )
        )  # fmt: skip
        session.commit()
    evaluation = gate(store, threshold, alerting)
    assert by_name(evaluation)["input drift"].status == "fail"
    assert by_name(evaluation)["input drift"].measured == "income"
    assert evaluation.verdict == "no-go"


def test_no_named_owner_fails_the_gate(store: Engine, threshold: Threshold) -> None:
    evaluation = gate(store, threshold, None)
    assert by_name(evaluation)["owner and escalation"].status == "fail"
    assert evaluation.verdict == "no-go"


def test_an_altered_ledger_fails_the_gate(
    store: Engine, threshold: Threshold, alerting: AlertingConfig
) -> None:
    with Session(store) as session:
        session.execute(
            update(LedgerEntry)
            .where(LedgerEntry.seq == 3, LedgerEntry.partition == 0)
            .values(event_bytes=b'{"altered": true}')
        )
        session.commit()
    evaluation = gate(store, threshold, alerting)
    assert by_name(evaluation)["ledger verifies"].status == "fail"
    assert evaluation.verdict == "no-go"


def test_thin_data_is_never_a_pass(
    store: Engine, threshold: Threshold, alerting: AlertingConfig
) -> None:
    evaluation = gate(
        store, threshold, alerting, min_decisions=10_000, governance={"min_labelled": 5_000}
    )
    thin = {c.name for c in evaluation.criteria if c.status == "not enough data"}
    assert {"latency p95", "latency p99", "contract violations", "override rate"} <= thin
    assert "accuracy (feedback)" in thin
    assert all(c.measured is None for c in evaluation.criteria if c.name in thin)
    assert evaluation.verdict == "not enough data"


def test_a_drill_or_load_test_asked_for_but_never_run_is_not_a_pass(
    store: Engine, threshold: Threshold, alerting: AlertingConfig
) -> None:
    evaluation = gate(
        store, threshold, alerting,
        technical={"load_peak_per_s": 1_000.0}, organisational={"drill_within_days": 30},
    )  # fmt: skip
    assert by_name(evaluation)["load test"].status == "not enough data"
    assert by_name(evaluation)["incident drill"].status == "not enough data"
    assert evaluation.verdict == "not enough data"


@pytest.mark.parametrize(
    ("passed", "status", "measured"),
    [(True, "pass", "passed, notified in 42 s"), (False, "fail", "failed: receiver down")],
)
def test_a_recorded_drill_counts_for_the_gate(
    store: Engine,
    threshold: Threshold,
    alerting: AlertingConfig,
    passed: bool,
    status: str,
    measured: str,
) -> None:
    with Session(store) as session:
        session.add(
            Drill(
                event_id=uuid.uuid4(), occurred_at=NOW - timedelta(days=3),
                model_name="credit-risk", model_version="3", passed=passed,
                reason="receiver down" if not passed else "notified team",
                seconds_to_notification=42.0 if passed else None,
            )
        )  # fmt: skip
        session.commit()
    evaluation = gate(store, threshold, alerting, organisational={"drill_within_days": 30})
    assert by_name(evaluation)["incident drill"].status == status
    assert by_name(evaluation)["incident drill"].measured == measured
    stale = gate(store, threshold, alerting, organisational={"drill_within_days": 2})
    assert by_name(stale)["incident drill"].status == "not enough data"


def test_every_mistake_in_a_thresholds_file_is_named_by_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "thresholds.yaml"
    path.write_text(
        "thresholds:\n"
        "  - model: credit-risk\n"
        "    window: soon\n"
        "    data: {max_contract_violation_rate: 2}\n"
        "    governance: {min_review_coverage: 0.9}\n"
        "  - model: credit-risk\n"
        "    technical: {latency_p95: 50}\n"
    )
    with pytest.raises(ReadinessConfigError) as raised:
        load_thresholds(path)
    problems = "\n".join(raised.value.problems)
    assert f"{path}:3: thresholds[0].window:" in problems
    assert f"{path}:4: thresholds[0].data.max_contract_violation_rate:" in problems
    assert f"{path}:5: thresholds[0].governance:" in problems
    assert f"{path}:7: thresholds[1].technical.latency_p95:" in problems


def test_the_command_gates_a_pipeline_and_records_its_evaluation(
    store: Engine,
    database_url: str,
    broker: EmbeddedBroker,
    topic: str,
    run_collector: Callable[[], None],
    tmp_path: Path,
) -> None:
    run_collector()
    (tmp_path / "thresholds.yaml").write_text(THRESHOLDS)
    (tmp_path / "alerting.yaml").write_text(ALERTING)
    (tmp_path / "contracts.yaml").write_text(CONTRACTS)
    (tmp_path / "accountability.yaml").write_text(
        ACCOUNTABILITY.format(today=NOW.date().isoformat())
    )
    environment = os.environ | {
        "DRIFTLINE_INPUT_CONTRACTS": str(tmp_path / "contracts.yaml"),
        "DRIFTLINE_ACCOUNTABILITY_CONFIG": str(tmp_path / "accountability.yaml"),
        "DRIFTLINE_DATABASE_URL": database_url,
        "DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "DRIFTLINE_TOPIC": topic,
        "DRIFTLINE_ALERTING_CONFIG": str(tmp_path / "alerting.yaml"),
        "DRIFTLINE_READINESS_CONFIG": str(tmp_path / "thresholds.yaml"),
    }

    def readiness(*options: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "driftline", "readiness", "--model", "credit-risk",
             "--version", "3", "--asked-by", "release-pipeline", *options],
            env=environment, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    keygen = [sys.executable, "-m", "driftline", "audit", "keygen", "--out"]
    subprocess.run([*keygen, os.environ["DRIFTLINE_SIGNING_KEY_FILE"]], env=environment, check=True)
    unagreed = readiness("--json", "--no-record")
    assert unagreed.returncode == 1, unagreed.stdout + unagreed.stderr
    criteria = {c["name"]: c for c in json.loads(unagreed.stdout)["criteria"]}
    assert criteria["thresholds agreed"]["status"] == "fail"

    def agree(*options: str) -> None:
        agreed = subprocess.run(
            [sys.executable, "-m", "driftline", "readiness", "agree", "--model", "credit-risk",
             "--version", "3", "--decision-maker", "head-of-credit", *options],
            env=environment, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert agreed.returncode == 0, agreed.stdout + agreed.stderr

    def agreements() -> int:
        with Session(store) as session:
            return len(session.exec(select(AgreedThresholds)).all())

    agree("--deadline", "30d")
    wait_for(agreements, lambda n: n == 1, what="the agreement in the store")
    go = readiness("--json")
    assert go.returncode == 0, go.stdout + go.stderr
    evaluation = json.loads(go.stdout)
    assert evaluation["verdict"] == "go" and evaluation["clock"].startswith("day 1 of 30")
    (tmp_path / "strict.yaml").write_text(
        THRESHOLDS.replace("latency_p95_ms: 50", "latency_p95_ms: 5")
    )
    # A changed file is a proposal: the gate goes on judging by what was agreed.
    proposal = readiness("--thresholds", str(tmp_path / "strict.yaml"), "--no-record")
    assert proposal.returncode == 0, proposal.stdout + proposal.stderr
    assert "proposes a change (technical.latency_p95_ms), not agreed" in proposal.stdout
    agree("--thresholds", str(tmp_path / "strict.yaml"))
    wait_for(agreements, lambda n: n == 2, what="the second agreement in the store")
    no_go = readiness("--thresholds", str(tmp_path / "strict.yaml"))
    assert no_go.returncode == 1
    assert "latency p95" in no_go.stdout and "fail" in no_go.stdout and "no-go" in no_go.stdout
    assert "day 1 of 30" in no_go.stdout  # agreeing again kept the clock
    trail = subprocess.run(
        [sys.executable, "-m", "driftline", "readiness", "trail", "--model", "credit-risk",
         "--version", "3"], env=environment, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert trail.returncode == 0 and trail.stdout.count("go-live") == 2, trail.stdout
    deadlines = subprocess.run(
        [sys.executable, "-m", "driftline", "readiness", "deadlines"],
        env=environment, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert deadlines.returncode == 0, deadlines.stdout + deadlines.stderr
    assert "no deadline has passed without a decision" in deadlines.stdout
    thin = readiness("--window", "1m")
    assert thin.returncode == 3 and "not enough data" in thin.stdout

    api = api_client(store, role="auditor")
    latest = wait_for(
        lambda: api.get("/readiness/credit-risk/3"),
        lambda answer: answer.status_code == 200 and answer.json()["verdict"] == "not enough data",
        what="the last evaluation through Kafka",
    ).json()
    assert latest["asked_by"] == "release-pipeline"
    assert {c["name"] for c in latest["criteria"]} >= {"latency p95", "ledger verifies"}
    assert api.get("/readiness/credit-risk/9").status_code == 404

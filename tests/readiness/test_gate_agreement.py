"""The gate's evaluation criteria (a passing run of a named set within N days, per-tag minimums,
no regression beyond a bound from the previous version) and its agreement criteria (agreed at
all, the day on the clock, a deadline passed with no decision), on events stored as the
collector stores them: the runs are real runs of the shipped example set."""

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, update
from sqlmodel import Session

from driftline.agent.contract import Event, ModelDeployedPayload, ModelRef, component_event, encode
from driftline.agent.provenance import ProducerKey
from driftline.collector.consume.ingest import RawMessage, write_batch
from driftline.collector.golive.agreements import (
    DEADLINE_ASKER,
    agreement_for,
    agreement_payload,
    decided_by_deadline,
    past_deadline,
    threshold_digest,
)
from driftline.collector.golive.criteria import Criterion
from driftline.collector.golive.evalruns import registration, run_set
from driftline.collector.golive.evalsets import load_set
from driftline.collector.golive.gate import Agreed, evaluate
from driftline.collector.golive.targets import CallableTarget
from driftline.collector.golive.thresholds import Evaluation, Threshold
from driftline.collector.runtime.simulation import decide, decide_changed
from driftline.collector.store.models import AgreedThresholds
from tests import events

EXAMPLE = Path(__file__).parents[2] / "deploy/config/examples/loan-desk-eval.yaml"
NOW = datetime.now(UTC)


def store(engine: Engine, documents: list[tuple[str, Any, str, datetime]]) -> None:
    """Each (type, payload, version, time) as a signed event of credit-risk."""
    producer = ProducerKey.load(Path(os.environ["DRIFTLINE_PRODUCER_KEY_FILE"]))
    batch: list[Event] = []
    for kind, payload, version, at in documents:
        event = component_event(
            kind, payload, service="driftline-eval",
            model=ModelRef(name="credit-risk", version=version),
        ).model_copy(update={"occurred_at": at})  # fmt: skip
        batch.append(producer.seal(event))
    with Session(engine) as session:
        offset = _offsets.setdefault(id(engine), [0])
        messages = []
        for event in batch:
            messages.append(RawMessage("events", 0, offset[0], None, encode(event)))
            offset[0] += 1
        write_batch(session, messages)
        session.commit()


_offsets: dict[int, list[int]] = {}


def record_run(engine: Engine, version: str, model: Any, at: datetime) -> None:
    evaluation_set = load_set(EXAMPLE)
    run = run_set(evaluation_set, CallableTarget(model, model.__name__), {})
    documents = [("evaluation_case_scored", p, version, at) for p in run.case_payloads(version)]
    documents.append(("evaluation_completed", run.payload(version, "tests"), version, at))
    store(engine, documents)


def criteria(engine: Engine, version: str, wanted: Evaluation, **more: Any) -> dict[str, Criterion]:
    threshold = Threshold(model="credit-risk", min_decisions=1, evaluation=wanted)
    with Session(engine) as session:
        found = evaluate(
            session, threshold, model="credit-risk", version=version, now=NOW, alerting=None,
            ledger_intact=lambda: True, **more,
        )  # fmt: skip
    return {c.name: c for c in found.criteria}


GOLDEN = Evaluation(
    set="loan-desk-golden", within_days=7, tag_minimums={"high-debt": 0.9, "nobody": 0.5},
    max_regression=0.02,
)  # fmt: skip


def test_a_passing_run_counts_only_within_its_days_and_with_its_set_registered(
    engine: Engine,
) -> None:
    found = criteria(engine, "3.1.0", GOLDEN)
    assert found["evaluation loan-desk-golden"].status == "fail"
    assert found["evaluation loan-desk-golden"].measured == "no run recorded"
    record_run(engine, "3.1.0", decide, NOW - timedelta(days=8))
    assert criteria(engine, "3.1.0", GOLDEN)["evaluation loan-desk-golden"].status == "fail"
    record_run(engine, "3.1.0", decide, NOW - timedelta(days=2))
    found = criteria(engine, "3.1.0", GOLDEN)
    run = found["evaluation loan-desk-golden"]
    assert run.status == "fail" and "its set is not registered" in (run.measured or "")
    payload = registration(load_set(EXAMPLE), "tests", str(EXAMPLE))
    store(engine, [("evaluation_set_registered", payload, "*", NOW - timedelta(days=9))])
    found = criteria(engine, "3.1.0", GOLDEN)
    assert found["evaluation loan-desk-golden"].status == "pass"
    assert found["evaluation loan-desk-golden: high-debt"].status == "pass"
    assert found["evaluation loan-desk-golden: nobody"].measured == "no such cases"
    assert found["evaluation loan-desk-golden: nobody"].status == "fail"
    first = found["evaluation loan-desk-golden: regression"]
    assert first.status == "pass" and first.measured == "no earlier version's run"


def test_a_changed_version_fails_its_tag_minimum_and_the_regression_bound(
    engine: Engine,
) -> None:
    payload = registration(load_set(EXAMPLE), "tests", str(EXAMPLE))
    store(engine, [("evaluation_set_registered", payload, "*", NOW - timedelta(days=9))])
    record_run(engine, "3.1.0", decide, NOW - timedelta(days=2))
    record_run(engine, "3.2.0", decide_changed, NOW - timedelta(days=1))
    found = criteria(engine, "3.2.0", GOLDEN)
    assert found["evaluation loan-desk-golden"].status == "fail"
    tag = found["evaluation loan-desk-golden: high-debt"]
    assert tag.status == "fail" and tag.measured == "77.8%" and tag.sample == 45
    regression = found["evaluation loan-desk-golden: regression"]
    assert regression.status == "fail" and regression.sample == 150
    assert (regression.measured or "").startswith("96.7% in 3.1.0 → 89.3%")
    # The previous version's verdict is unchanged by its successor's run.
    assert criteria(engine, "3.1.0", GOLDEN)["evaluation loan-desk-golden: regression"].status == (
        "pass"
    )


def agree(engine: Engine, threshold: Threshold, at: datetime, deadline: datetime) -> None:
    payload = agreement_payload(
        threshold, version="3", decision_maker="head-of-credit", deadline=deadline,
        source="thresholds.yaml",
    )  # fmt: skip
    store(engine, [("thresholds_agreed", payload, "3", at)])


def test_the_clock_counts_days_from_the_first_agreement_and_a_silent_deadline_fails(
    engine: Engine,
) -> None:
    threshold = Threshold(model="credit-risk", min_decisions=1)
    assert (
        criteria(engine, "3", Evaluation(), agreed=Agreed(None))["thresholds agreed"].status
        == "fail"
    )
    agree(engine, threshold, NOW - timedelta(days=40), NOW + timedelta(days=50))
    stricter = threshold.model_copy(update={"min_decisions": 5})
    agree(engine, stricter, NOW - timedelta(days=3), NOW + timedelta(days=50))
    with Session(engine) as session:
        agreement = agreement_for(session, "credit-risk", "3")
    assert agreement is not None
    assert agreement.threshold == stricter and agreement.sha256 == threshold_digest(stricter)
    assert agreement.agreements == 2 and agreement.day(NOW) == 41 and agreement.days == 90
    assert agreement.clock(NOW).startswith("day 41 of 90")
    found = criteria(engine, "3", Evaluation(), agreed=Agreed(agreement, proposed_change=True))
    assert found["thresholds agreed"].status == "pass"
    assert "the file proposes a change, not agreed" in (found["thresholds agreed"].measured or "")
    assert found["decision deadline"].status == "pass"

    late = NOW + timedelta(days=51)
    with Session(engine) as session:
        passed = evaluate(
            session, threshold, model="credit-risk", version="3", now=late, alerting=None,
            ledger_intact=lambda: True, agreed=Agreed(agreement),
        )  # fmt: skip
    deadline = {c.name: c for c in passed.criteria}["decision deadline"]
    assert deadline.status == "fail" and deadline.measured == "the deadline passed with no decision"
    assert (passed.clock or "").startswith("deadline passed")


@pytest.mark.parametrize("verdict", ["go", "no-go"])
def test_a_decision_recorded_before_the_deadline_meets_it(engine: Engine, verdict: str) -> None:
    threshold = Threshold(model="credit-risk", min_decisions=1)
    agree(engine, threshold, NOW - timedelta(days=100), NOW - timedelta(days=10))
    decided = events.readiness(occurred_at=NOW - timedelta(days=12))
    decided = decided.model_copy(
        update={"payload": decided.payload.model_copy(update={"verdict": verdict})}
    )
    producer = ProducerKey.load(Path(os.environ["DRIFTLINE_PRODUCER_KEY_FILE"]))
    with Session(engine) as session:
        write_batch(session, [RawMessage("other", 0, 0, None, encode(producer.seal(decided)))])
        session.commit()
        agreement = agreement_for(session, "credit-risk", "3")
        assert agreement is not None
        found = evaluate(
            session, threshold, model="credit-risk", version="3", now=NOW, alerting=None,
            ledger_intact=lambda: True, agreed=Agreed(agreement),
        )  # fmt: skip
    deadline = {c.name: c for c in found.criteria}["decision deadline"]
    assert deadline.status == "pass" and deadline.measured.startswith(f"decided: {verdict} on")  # type: ignore[union-attr]


def test_a_deadline_passed_undecided_is_due_until_its_verdict_is_recorded(engine: Engine) -> None:
    threshold = Threshold(model="credit-risk", min_decisions=1)
    agree(engine, threshold, NOW - timedelta(days=100), NOW - timedelta(days=10))
    agreed_for_all = agreement_payload(
        threshold, version="*", decision_maker="head-of-credit", deadline=NOW + timedelta(days=5),
        source="thresholds.yaml",
    )  # fmt: skip
    deployed = ModelDeployedPayload(version="4", owner="o", approved_by="a")
    store(engine, [("thresholds_agreed", agreed_for_all, "*", NOW - timedelta(days=1)),
                   ("model_deployed", deployed, "4", NOW - timedelta(days=1))])  # fmt: skip
    with Session(engine) as session:
        # 3 has its own agreement, past its deadline; 4 is governed by "*", not due yet.
        assert [(m, v) for m, v, _ in past_deadline(session, NOW).due] == [("credit-risk", "3")]
        assert [(m, v) for m, v, _ in past_deadline(session, NOW + timedelta(days=6)).due] == [
            ("credit-risk", "3"), ("credit-risk", "4"),
        ]  # fmt: skip
    at_deadline = events.readiness(occurred_at=NOW - timedelta(days=1))
    at_deadline = at_deadline.model_copy(
        update={"payload": at_deadline.payload.model_copy(update={"asked_by": DEADLINE_ASKER,
                                                                 "verdict": "no-go"})}
    )  # fmt: skip
    producer = ProducerKey.load(Path(os.environ["DRIFTLINE_PRODUCER_KEY_FILE"]))
    with Session(engine) as session:
        write_batch(
            session, [RawMessage("deadline", 0, 0, None, encode(producer.seal(at_deadline)))]
        )
        session.commit()
        assert past_deadline(session, NOW).due == []  # recorded: not due again
    # The deadline moved past that verdict: it decided nothing, so the new deadline waits for a
    # decision, and is due once it passes.
    agree(engine, threshold, NOW - timedelta(hours=1), NOW + timedelta(days=2))
    with Session(engine) as session:
        agreement = agreement_for(session, "credit-risk", "3")
        assert agreement is not None
        assert decided_by_deadline(session, agreement, "credit-risk", "3") == ""
        later = past_deadline(session, NOW + timedelta(days=3))
        assert ("credit-risk", "3") in [(m, v) for m, v, _ in later.due]
        # An agreement altered in the store is reported, never skipped in silence.
        session.exec(update(AgreedThresholds).values(threshold={"model": "credit-risk"}))  # type: ignore[call-overload]
        session.commit()
        assert past_deadline(session, NOW + timedelta(days=3)).unreadable

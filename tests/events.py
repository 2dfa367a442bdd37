"""Valid events for tests, with any field overridable."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from driftline.agent.contract import (
    DecisionEvent,
    DecisionPayload,
    EvaluationCaseScoredEvent,
    EvaluationCaseScoredPayload,
    EvaluationCompletedEvent,
    EvaluationCompletedPayload,
    EvaluationFigure,
    EvaluationSetRegisteredEvent,
    EvaluationSetRegisteredPayload,
    EvaluationThreshold,
    Event,
    FeedbackEvent,
    FeedbackPayload,
    LoadTestedEvent,
    LoadTestedPayload,
    ModelDeployedEvent,
    ModelDeployedPayload,
    ModelRef,
    ReadinessCriterion,
    ReadinessEvaluatedEvent,
    ReadinessPayload,
    ReviewEvent,
    ReviewPayload,
    Score,
    ThresholdsAgreedEvent,
    ThresholdsAgreedPayload,
    baseline_digest,
    new_event_id,
)

MODEL = ModelRef(name="credit-risk", version="3")


def decision(**overrides: Any) -> DecisionEvent:
    fields: dict[str, Any] = {
        "service": "loan-desk",
        "model": MODEL,
        "decision_id": new_event_id(),
        "payload": DecisionPayload(
            inputs={"income": 52_000, "region": "north"},
            output="approve",
            confidence=0.91,
            latency_ms=12.5,
            automated=True,
        ),
    }
    return DecisionEvent(**(fields | overrides))


def review(decision_id: uuid.UUID, **overrides: Any) -> ReviewEvent:
    fields: dict[str, Any] = {
        "service": "loan-desk",
        "model": MODEL,
        "decision_id": decision_id,
        "payload": ReviewPayload(
            reviewer="a.kim", action="override", new_output="decline", rationale="policy 4.2"
        ),
    }
    return ReviewEvent(**(fields | overrides))


def feedback(decision_id: uuid.UUID, **overrides: Any) -> FeedbackEvent:
    fields: dict[str, Any] = {
        "service": "loan-desk",
        "model": MODEL,
        "decision_id": decision_id,
        "payload": FeedbackPayload(ground_truth="decline", correct=False, reporter="collections"),
    }
    return FeedbackEvent(**(fields | overrides))


def deployment(**overrides: Any) -> ModelDeployedEvent:
    fields: dict[str, Any] = {
        "service": "loan-desk",
        "model": MODEL,
        "payload": ModelDeployedPayload(version="3", owner="risk-ml", approved_by="committee"),
    }
    return ModelDeployedEvent(**(fields | overrides))


def readiness(**overrides: Any) -> ReadinessEvaluatedEvent:
    """A go-live "go" for MODEL, over the last week."""
    now = datetime.now(UTC)
    criterion = ReadinessCriterion(
        area="technical", name="latency p95", threshold="≤ 50 ms", measured="1.0 ms",
        sample=10_000, status="pass",
    )  # fmt: skip
    payload = ReadinessPayload(
        version=MODEL.version, asked_by="release-pipeline", window_start=now - timedelta(days=7),
        window_end=now, verdict="go", criteria=[criterion],
    )  # fmt: skip
    fields: dict[str, Any] = {"service": "driftline-readiness", "model": MODEL, "payload": payload}
    return ReadinessEvaluatedEvent(**(fields | overrides))


def load_test(**overrides: Any) -> LoadTestedEvent:
    """A load test of MODEL at 3,000 decisions a second (three times a peak of 1,000), passed."""
    payload = LoadTestedPayload(
        version=MODEL.version, synthetic_version=f"{MODEL.version}~loadtest", rate_per_s=3_000.0,
        duration_s=30.0, peak_per_s=1_000.0, sent=90_000, lost=0, error_rate=0.0,
        achieved_per_s=3_000.0, call_median_us=5.0, call_p99_us=20.0, delay_median_ms=3.0,
        delay_p99_ms=9.0, recovery_s=0.5, passed=True,
    )  # fmt: skip
    fields: dict[str, Any] = {"service": "driftline-loadtest", "model": MODEL, "payload": payload}
    return LoadTestedEvent(**(fields | overrides))


EVALUATION_SET_SHA256 = "e5" * 32
EVALUATION_RUN = uuid.UUID("0190a0a0-0000-7000-8000-000000000001")


def evaluation_set(**overrides: Any) -> EvaluationSetRegisteredEvent:
    """The evaluation set "loans-golden" v2 registered for credit-risk (every version), with a
    pass rate and a refusal recall it must reach."""
    payload = EvaluationSetRegisteredPayload(
        set_name="loans-golden", set_version="2", sha256=EVALUATION_SET_SHA256, cases=120,
        must_refuse=20, tags=["approve", "decline", "refusal"],
        thresholds=[
            EvaluationThreshold(metric="pass_rate", minimum=0.9),
            EvaluationThreshold(metric="refusal_recall", tag="refusal", minimum=0.95),
            EvaluationThreshold(metric="latency_p95_ms", minimum=0.0, maximum=800.0),
        ],
        registered_by="a.kim", source="evaluations/loans-golden.yaml",
    )  # fmt: skip
    fields: dict[str, Any] = {
        "service": "driftline-evaluate",
        "model": ModelRef(name=MODEL.name, version="*"),
        "payload": payload,
    }
    return EvaluationSetRegisteredEvent(**(fields | overrides))


def evaluation_case(**overrides: Any) -> EvaluationCaseScoredEvent:
    """A rejection case of EVALUATION_RUN on MODEL that the model refused, as it should."""
    payload = EvaluationCaseScoredPayload(
        version=MODEL.version, run_id=EVALUATION_RUN, set_sha256=EVALUATION_SET_SHA256,
        case_id="refuse-007", tags=["refusal"], must_refuse=True, refused=True, passed=True,
        output='{"answer":"I cannot help with that."}', latency_ms=212.5, error=None, reason="",
        scores=[Score(name="judge", value=0.92, source="model")],
    )  # fmt: skip
    fields: dict[str, Any] = {"service": "driftline-evaluate", "model": MODEL, "payload": payload}
    return EvaluationCaseScoredEvent(**(fields | overrides))


def evaluation_run(**overrides: Any) -> EvaluationCompletedEvent:
    """EVALUATION_RUN of "loans-golden" v2 on MODEL, passed."""
    now = datetime.now(UTC)
    payload = EvaluationCompletedPayload(
        version=MODEL.version, run_id=EVALUATION_RUN, set_name="loans-golden", set_version="2",
        set_sha256=EVALUATION_SET_SHA256, target="http://127.0.0.1:8080/score",
        asked_by="release-pipeline", started_at=now - timedelta(minutes=3), cases=120, errors=1,
        passed=True,
        figures=[
            EvaluationFigure(metric="pass_rate", value=0.95, sample=119, minimum=0.9,
                             status="pass"),
            EvaluationFigure(metric="refusal_recall", tag="refusal", value=1.0, sample=20,
                             minimum=0.95, status="pass"),
            EvaluationFigure(metric="score:judge", value=None, sample=0),
        ],
    )  # fmt: skip
    fields: dict[str, Any] = {"service": "driftline-evaluate", "model": MODEL, "payload": payload}
    return EvaluationCompletedEvent(**(fields | overrides))


def thresholds_agreed(**overrides: Any) -> ThresholdsAgreedEvent:
    """credit-risk's go-live thresholds, for every version, agreed by its decision-maker."""
    threshold: dict[str, Any] = {
        "model": MODEL.name,
        "min_decisions": 1_000,
        "technical": {"latency_p95_ms": 50, "max_error_rate": 0.001},
    }
    payload = ThresholdsAgreedPayload(
        version="*", sha256=baseline_digest(threshold), threshold=threshold,
        decision_maker="head-of-credit", stage="go-live",
        deadline=datetime(2026, 9, 30, tzinfo=UTC), source="thresholds/credit-risk.yaml",
    )  # fmt: skip
    fields: dict[str, Any] = {
        "service": "driftline-readiness",
        "model": ModelRef(name=MODEL.name, version="*"),
        "payload": payload,
    }
    return ThresholdsAgreedEvent(**(fields | overrides))


def evaluations() -> list[Event]:
    """One event of each evaluation type."""
    return [evaluation_set(), evaluation_case(), evaluation_run(), thresholds_agreed()]


def drift_payload(feature: str, **overrides: Any) -> dict[str, Any]:
    """A drift verdict's payload (for drift_detected or drift_resolved) about MODEL."""
    now = datetime.now(UTC)
    return {
        "version": MODEL.version,
        "baseline_id": "ab" * 32,
        "feature": feature,
        "test": "ks",
        "statistic": 0.2,
        "p_value": 1e-9,
        "adjusted_p": 1e-8,
        "false_alarm_rate": 0.01,
        "effect_name": "wasserstein_sd",
        "effect": 0.4,
        "window_start": now,
        "window_end": now,
        "baseline_size": 1_000,
        "current_size": 500,
    } | overrides

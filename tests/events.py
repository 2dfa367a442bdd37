"""Valid events for tests, with any field overridable."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from driftline.agent.contract import (
    DecisionEvent,
    DecisionPayload,
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

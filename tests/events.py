"""Valid events for tests, with any field overridable."""

import uuid
from datetime import UTC, datetime
from typing import Any

from agent.contract import (
    DecisionEvent,
    DecisionPayload,
    FeedbackEvent,
    FeedbackPayload,
    ModelDeployedEvent,
    ModelDeployedPayload,
    ModelRef,
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

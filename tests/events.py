"""Valid events for tests, with any field overridable."""

import uuid
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

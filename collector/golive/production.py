"""Production grows the evaluation set: decisions that feedback said were wrong (with the right
answer) or that a reviewer overrode become cases whose expected answer is the correction, so
the next version must get right what this one got wrong, as Langfuse datasets grow from traces.

A case keeps the decision's inputs as they were recorded (redacted by policy already) and its
id; a decision whose inputs were erased is left out, and so is one the set has already.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from driftline.collector.store.ledger import TOMBSTONE
from driftline.collector.store.models import Decision, Feedback, Review


def corrected_cases(
    session: Session,
    *,
    model: str,
    version: str | None,
    window: timedelta | None,
    tag: str,
    known: set[str],
) -> list[dict[str, Any]]:
    """New cases (as a set's JSONL holds them) for the model's corrected decisions, oldest
    first; the latest correction of a decision is its expected answer."""
    corrections: dict[Any, tuple[datetime, Any]] = {}
    since = datetime.now(UTC) - window if window is not None else None
    feedback = select(Feedback.decision_id, Feedback.occurred_at, Feedback.ground_truth).where(
        Feedback.correct == False,  # noqa: E712 (SQL)
        col(Feedback.ground_truth).is_not(None),
    )
    overrides = select(Review.decision_id, Review.occurred_at, Review.new_output).where(
        Review.action == "override"
    )
    for decision_id, at, corrected in [*session.exec(feedback), *session.exec(overrides)]:
        if corrected is None or (since is not None and at < since):
            continue
        if decision_id not in corrections or corrections[decision_id][0] < at:
            corrections[decision_id] = (at, corrected)
    wanted = [d for d in corrections if str(d) not in known and f"prod-{d}" not in known]
    cases = []
    for start in range(0, len(wanted), 500):
        query = select(Decision).where(
            col(Decision.decision_id).in_(wanted[start : start + 500]),
            Decision.model_name == model,
        )
        if version is not None:
            query = query.where(Decision.model_version == version)
        for decision in session.exec(query):
            if TOMBSTONE in decision.inputs:
                continue
            cases.append(
                (
                    decision.occurred_at,
                    {
                        "id": f"prod-{decision.decision_id}",
                        "input": decision.inputs,
                        "expected": {"exact": corrections[decision.decision_id][1]},
                        "tags": [tag],
                        "decision_id": str(decision.decision_id),
                    },
                )
            )
    return [case for _, case in sorted(cases, key=lambda pair: pair[0])]

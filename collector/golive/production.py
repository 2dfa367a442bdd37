"""Production grows the evaluation set: decisions that feedback said were wrong (with the right
answer) or that a reviewer overrode become cases whose expected answer is the correction, so
the next version must get right what this one got wrong, as Langfuse datasets grow from traces.

A case keeps the decision's inputs as they were recorded (redacted by policy already) and its
id; a decision whose inputs were erased is left out, and so is one the set has already. The
latest word on a decision decides: feedback that says it was right, after an override, leaves
it out; a correction to a refusal (an override to "refer") makes a rejection case.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from driftline.collector.golive.evalsets import one_line
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
    refuses: Callable[[Any], bool] = lambda value: False,
) -> list[dict[str, Any]]:
    """New cases (as a set's JSONL holds them) for the model's corrected decisions, oldest
    first; the latest word on a decision is its expected answer, and one whose latest word is
    that it was right is left out. ``refuses`` says whether a corrected answer is a refusal
    (the set's refusal outputs): then the case must refuse. ValueError for a bad tag."""
    if not 1 <= len(tag) <= 100:
        raise ValueError(f"the tag {tag!r} is not 1 to 100 characters")
    one_line(tag)
    # Per decision: when, and the corrected answer (_RIGHT: feedback said it was right).
    corrections: dict[Any, tuple[datetime, Any]] = {}
    since = datetime.now(UTC) - window if window is not None else None
    feedback = select(
        Feedback.decision_id, Feedback.occurred_at, Feedback.ground_truth, Feedback.correct
    ).where(col(Feedback.correct).is_not(None))
    overrides = select(Review.decision_id, Review.occurred_at, Review.new_output).where(
        Review.action == "override"
    )
    words = [
        (d, at, _RIGHT if correct else truth)
        for d, at, truth, correct in session.exec(feedback)
        if correct or truth is not None
    ]
    for decision_id, at, corrected in [*words, *session.exec(overrides)]:
        if corrected is None or (since is not None and at < since):
            continue
        if decision_id not in corrections or corrections[decision_id][0] < at:
            corrections[decision_id] = (at, corrected)
    wanted = [
        d
        for d, (_, corrected) in corrections.items()
        if corrected is not _RIGHT and str(d) not in known and f"prod-{d}" not in known
    ]
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
            corrected = corrections[decision.decision_id][1]
            case: dict[str, Any] = {
                "id": f"prod-{decision.decision_id}",
                "input": decision.inputs,
                "tags": [tag],
                "decision_id": str(decision.decision_id),
            }
            if refuses(corrected):
                case["must_refuse"] = True
            else:
                case["expected"] = {"exact": corrected}
            cases.append((decision.occurred_at, case))
    return [case for _, case in sorted(cases, key=lambda pair: pair[0])]


_RIGHT = object()  # feedback's word that the decision was right

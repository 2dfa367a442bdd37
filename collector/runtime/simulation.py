"""A simulated AI service for the demo: a credit-risk model deciding loan applications.

Unsure decisions go to a human reviewer, who approves, overrides or escalates them; for some
decisions the real outcome is reported later as feedback. It records everything through the
agent SDK, exactly as a real service would. Run ``shifted``, it sees a new population: applicants
carry more debt (``debt_ratio`` drifts, no other input does) and the model is less sure of itself.
"""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass, field

from driftline.agent import Driftline
from driftline.agent.contract import ReviewAction

SERVICE = "loan-desk"
MODEL = "credit-risk"
VERSION = "3.1.0"
REGIONS = ["north", "south", "east", "west"]
REVIEWERS = ["a.kim", "j.osei", "m.rossi"]
REVIEW_BELOW = 0.7  # decisions less sure than this wait for a human


@dataclass
class SimulationResult:
    decisions: list[uuid.UUID] = field(default_factory=list)
    reviewed: set[uuid.UUID] = field(default_factory=set)
    with_feedback: set[uuid.UUID] = field(default_factory=set)
    events: int = 0


def run_simulation(
    client: Driftline,
    *,
    decisions: int,
    seed: int = 7,
    shifted: bool = False,
    deploy: bool = True,
    first_number: int = 0,
) -> SimulationResult:
    """``deploy`` records the model's deployment first, as the service's release pipeline
    would: signed, so ``client`` needs a producer key for it; ``first_number`` numbers
    applicants."""
    rng = random.Random(seed)
    result = SimulationResult()
    if deploy:
        client.record_deployment(
            model=MODEL, version=VERSION, owner="risk-ml-team", approved_by="model-risk-committee"
        )
        result.events += 1
    for number in range(first_number, first_number + decisions):
        applicant: dict[str, float | int | str] = {
            "income": round(rng.lognormvariate(10.8, 0.4)),
            "age": rng.randint(21, 75),
            "debt_ratio": round(rng.betavariate(3.5, 4) if shifted else rng.betavariate(2, 5), 3),
            "employment_years": rng.randint(0, 30),
            "region": rng.choice(REGIONS),
        }
        approve = _approval_probability(applicant)
        if shifted:  # the model has not seen such applicants: it hedges towards 0.5
            approve = 0.5 + 0.6 * (approve - 0.5)
        label = "approve" if approve >= 0.5 else "decline"
        confidence = round(max(approve, 1 - approve), 4)
        automated = confidence >= REVIEW_BELOW
        decision_id = client.record_decision(
            model=MODEL,
            version=VERSION,
            inputs=applicant,
            output=label,
            confidence=confidence,
            class_scores={"approve": round(approve, 4), "decline": round(1 - approve, 4)},
            latency_ms=round(rng.uniform(3.0, 25.0), 3),
            automated=automated,
            subject_ref=f"applicant-{number:06d}",
        )
        result.decisions.append(decision_id)
        result.events += 1
        if not automated:
            _review(client, rng, decision_id, label)
            result.reviewed.add(decision_id)
            result.events += 1
        if rng.random() < 0.3:
            correct = rng.random() < confidence
            client.record_feedback(
                decision_id,
                model=MODEL,
                version=VERSION,
                reporter="collections-system",
                ground_truth=label if correct else _other(label),
                correct=correct,
                comment=None if correct else "applicant's repayment history contradicts it",
            )
            result.with_feedback.add(decision_id)
            result.events += 1
    return result


def _approval_probability(
    applicant: dict[str, float | int | str], debt_weight: float = 5.0
) -> float:
    income, debt = float(applicant["income"]), float(applicant["debt_ratio"])
    years = float(applicant["employment_years"])
    logit = 1.6 * math.log(income / 45_000) - debt_weight * (debt - 0.3) + 0.05 * years
    return 1 / (1 + math.exp(-logit))


REFER = "refer"  # the answer that sends an application to a human: it is outside policy


def decide(applicant: object) -> str:
    """The loan service's model, as the evaluation set asks it: "approve", "decline", or
    "refer" for an application it must not decide (not a complete, plausible one)."""
    if not _in_policy(applicant, max_debt_ratio=1.0):
        return REFER
    assert isinstance(applicant, dict)
    return "approve" if _approval_probability(applicant) >= 0.5 else "decline"


def decide_changed(applicant: object) -> str:
    """A candidate next version, retrained on a population with less debt: it weighs debt
    less, and lets debt ratios over 1 through. The evaluation set catches both."""
    if not _in_policy(applicant, max_debt_ratio=math.inf):
        return REFER
    assert isinstance(applicant, dict)
    return "approve" if _approval_probability(applicant, debt_weight=3.0) >= 0.5 else "decline"


def _in_policy(applicant: object, *, max_debt_ratio: float) -> bool:
    if not isinstance(applicant, dict):
        return False
    numbers = [applicant.get(k) for k in ("income", "age", "debt_ratio", "employment_years")]
    if not all(isinstance(n, int | float) and not isinstance(n, bool) for n in numbers):
        return False
    income, age, debt, years = (float(n) for n in numbers)  # type: ignore[arg-type]
    return (
        income > 0 and 18 <= age <= 100 and 0 <= debt <= max_debt_ratio and 0 <= years <= age
        and applicant.get("region") in REGIONS
    )  # fmt: skip


def _review(client: Driftline, rng: random.Random, decision_id: uuid.UUID, label: str) -> None:
    roll = rng.random()
    action: ReviewAction
    if roll < 0.7:
        action, new_output, rationale = "approve", None, "consistent with policy"
    elif roll < 0.95:
        action, new_output = "override", _other(label)
        rationale = "income verified by payslips; model under-weights tenure"
    else:
        action, new_output, rationale = "escalate", None, "possible identity mismatch"
    client.record_review(
        decision_id,
        model=MODEL,
        version=VERSION,
        reviewer=rng.choice(REVIEWERS),
        action=action,
        new_output=new_output,
        rationale=rationale,
    )


def _other(label: str) -> str:
    return "decline" if label == "approve" else "approve"

"""The go-live gate: every criterion of a model's deployment threshold measured against the
stored events of one version over a window, and a verdict. A criterion without enough data is
reported as such and never passes, so the verdict is "go" only when every criterion passed.

Load tests (``driftline loadtest``), incident drills (``driftline drill``) and evaluation runs
(``driftline eval run``) count when one was recorded for the version within the days the
threshold allows. Given what was agreed (``Agreed``), the gate also says whether the thresholds
were agreed at all and where the decision clock stands.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, get_args

import numpy as np
from sqlmodel import Session, col, select

from driftline.agent.contract import (
    CriterionStatus,
    ReadinessArea,
    ReadinessCriterion,
    ReadinessPayload,
    ReadinessVerdict,
)
from driftline.collector.alerting.alerts import owner_for
from driftline.collector.alerting.config import AlertingConfig
from driftline.collector.drift.baselines import active_baseline
from driftline.collector.golive.accountability import AccountabilityMap, accountability_criteria
from driftline.collector.golive.agreements import Agreement, decided_by_deadline
from driftline.collector.golive.comparison import compare
from driftline.collector.golive.contracts import ModelContract, review
from driftline.collector.golive.criteria import Criterion
from driftline.collector.golive.run_history import previous_run, run_outcomes
from driftline.collector.golive.thresholds import Threshold
from driftline.collector.store import queries
from driftline.collector.store.models import (
    Decision,
    Drill,
    EvaluationRun,
    EvaluationSet,
    Feedback,
    LoadTest,
    Review,
)
from driftline.detectors.verdict import CONFIDENCE


class Unchecked:
    """Not asked for: a criterion the caller did not want checked (tests, partial gates)."""


UNCHECKED = Unchecked()


@dataclass(frozen=True)
class Agreed:
    """What the gate was told of agreement: the latest agreement (None: nothing agreed yet),
    and whether the thresholds file now says something else (a proposed change)."""

    agreement: Agreement | None
    proposed_change: bool = False


@dataclass(frozen=True)
class Evaluation:
    model: str
    version: str
    window_start: datetime
    window_end: datetime
    criteria: list[Criterion]
    clock: str | None = None  # "day 41 of 90 (decision due 2027-03-01)"
    proposed_change: bool = False

    @property
    def verdict(self) -> ReadinessVerdict:
        statuses = {c.status for c in self.criteria}
        if "fail" in statuses:
            return "no-go"
        return "not enough data" if "not enough data" in statuses else "go"

    def document(self) -> dict[str, Any]:
        """JSON-ready: for ``--json`` and the ``readiness_evaluated`` event."""
        return {
            "model": self.model,
            "version": self.version,
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "verdict": self.verdict,
            "clock": self.clock,
            "proposed_change": self.proposed_change,
            "criteria": [asdict(c) for c in self.criteria],
        }

    def payload(self, asked_by: str) -> ReadinessPayload:
        """The ``readiness_evaluated`` event's payload: who asked, and what was found."""
        return ReadinessPayload(
            version=self.version,
            asked_by=asked_by,
            window_start=self.window_start,
            window_end=self.window_end,
            verdict=self.verdict,
            criteria=[ReadinessCriterion(**asdict(c)) for c in self.criteria],
        )


@dataclass(frozen=True)
class _Window:
    latency_ms: list[float]
    confidence: list[float | None]  # None: a decision without one (a generative model's)
    violations: int
    decision_ids: list[Any]


def evaluate(
    session: Session,
    threshold: Threshold,
    *,
    model: str,
    version: str,
    now: datetime,
    window: timedelta | None = None,
    alerting: AlertingConfig | None,
    ledger_intact: Callable[[], bool],
    agreed: Agreed | None = None,
    accountability: AccountabilityMap | Unchecked | None = UNCHECKED,
    contracts: ModelContract | Unchecked | None = UNCHECKED,
) -> Evaluation:
    """``agreed``: what was agreed, ``accountability``: the map, ``contracts``: the model's data
    contract (None: none configured), when the caller checked them (the command always does)."""
    since = _before(now, window or threshold.window)
    rows = session.exec(
        select(
            col(Decision.decision_id),
            col(Decision.latency_ms),
            col(Decision.confidence),
            col(Decision.has_violations),
        ).where(
            col(Decision.model_name) == model,
            col(Decision.model_version) == version,
            col(Decision.occurred_at) >= since,
            col(Decision.occurred_at) <= now,
        )
    ).all()
    decisions = _Window(
        latency_ms=[r[1] for r in rows],
        confidence=[r[2] for r in rows],
        violations=sum(bool(r[3]) for r in rows),
        decision_ids=[r[0] for r in rows],
    )
    enough = len(rows) >= threshold.min_decisions
    criteria = [
        *_technical(session, threshold, decisions, enough, model, version, now),
        *_data(session, threshold, decisions, enough, model, version),
        *_organisational(session, threshold, alerting, model, version, now),
        *_evaluation(session, threshold, model, version, now),
        *_governance(session, threshold, decisions, enough, ledger_intact),
    ]
    if not isinstance(contracts, Unchecked):
        criteria += review(
            session, contracts, model=model, version=version, since=since, now=now,
            min_decisions=threshold.min_decisions,
        )  # fmt: skip
    if not isinstance(accountability, Unchecked):
        criteria += accountability_criteria(accountability, session, model=model, now=now)
    if agreed is None:
        return Evaluation(model, version, since, now, _by_area(criteria))
    criteria += _agreement(session, agreed, model, version, now)
    clock = agreed.agreement.clock(now) if agreed.agreement else None
    return Evaluation(model, version, since, now, _by_area(criteria), clock, agreed.proposed_change)


AREAS: tuple[ReadinessArea, ...] = get_args(ReadinessArea)


def _by_area(criteria: list[Criterion]) -> list[Criterion]:
    """In the areas' order (technical, data, organisational, governance), each area's criteria
    in the order they were measured."""
    return sorted(criteria, key=lambda c: AREAS.index(c.area))


def _agreement(
    session: Session, agreed: Agreed, model: str, version: str, now: datetime
) -> list[Criterion]:
    agreement = agreed.agreement
    if agreement is None:
        return [
            Criterion("governance", "thresholds agreed", "by a named decision-maker",
                      "never agreed (`driftline readiness agree`)", None, "fail")
        ]  # fmt: skip
    said = f"by {agreement.decision_maker} on {agreement.agreed_at:%Y-%m-%d}"
    if agreed.proposed_change:
        said += "; the file proposes a change, not agreed"
    found = [Criterion("governance", "thresholds agreed", "by a named decision-maker", said,
                       agreement.agreements, "pass")]  # fmt: skip
    wanted = f"go/no-go by {agreement.deadline:%Y-%m-%d}"
    status: CriterionStatus
    if now <= agreement.deadline:
        measured, status = f"day {agreement.day(now)} of {agreement.days}", "pass"
    else:
        decided = decided_by_deadline(session, agreement, model, version)
        measured = f"decided: {decided}" if decided else "the deadline passed with no decision"
        status = "pass" if decided else "fail"
    found.append(Criterion("governance", "decision deadline", wanted, measured, None, status))
    return found


def _evaluation(
    session: Session, threshold: Threshold, model: str, version: str, now: datetime
) -> list[Criterion]:
    """A passing run of the named set within the days allowed, its per-tag minimums, and no
    regression beyond the bound against the previous version's latest run of the set."""
    wanted = threshold.evaluation
    if wanted.set is None:
        return []
    within = f"within {wanted.within_days} d"
    run = session.exec(
        select(EvaluationRun)
        .where(
            EvaluationRun.model_name == model,
            EvaluationRun.model_version == version,
            EvaluationRun.set_name == wanted.set,
            col(EvaluationRun.occurred_at) >= _before(now, timedelta(days=wanted.within_days)),
        )
        .order_by(col(EvaluationRun.occurred_at).desc())
    ).first()
    name = f"evaluation {wanted.set}"
    if run is None:
        return [Criterion("technical", name, f"a passing run {within}", "no run recorded",
                          None, "fail")]  # fmt: skip
    # The set as last registered for the model: a run of an earlier version of it (before
    # cases were added, say), or of content registered for another model only, does not count.
    registered = session.exec(
        select(col(EvaluationSet.sha256), col(EvaluationSet.set_version))
        .where(EvaluationSet.model_name == model, EvaluationSet.set_name == wanted.set)
        .order_by(col(EvaluationSet.occurred_at).desc(), col(EvaluationSet.event_id).desc())
    ).first()
    measured = f"{'passed' if run.passed else 'failed'} on {run.occurred_at:%Y-%m-%d}"
    current = registered is not None and registered[0] == run.set_sha256
    if registered is None:
        measured += "; its set is not registered"
    elif not current:
        measured += (
            f"; of set version {run.set_version} ({run.set_sha256[:12]}), not the registered "
            f"{registered[1]} ({registered[0][:12]})"
        )
    status: CriterionStatus = "pass" if run.passed and current else "fail"
    found = [Criterion("technical", name, f"a passing run {within}", measured, run.cases, status)]
    rates = {f["tag"]: f for f in run.figures if f["metric"] == "pass_rate"}
    for tag, minimum in sorted(wanted.tag_minimums.items()):
        figure = rates.get(tag)
        criterion = f"{name}: {tag}"
        if figure is None or figure["value"] is None:
            found.append(Criterion("technical", criterion, f"≥ {minimum:.0%}", "no such cases",
                                   0, "fail"))  # fmt: skip
            continue
        status = "pass" if figure["value"] >= minimum else "fail"
        found.append(Criterion("technical", criterion, f"≥ {minimum:.0%}",
                               f"{figure['value']:.1%}", figure["sample"], status))  # fmt: skip
    if wanted.max_regression is not None:
        found.append(_regression(session, run, wanted.max_regression, name))
    return found


def _regression(session: Session, run: EvaluationRun, bound: float, name: str) -> Criterion:
    """The fall in pass rate, over the cases both runs asked, from the latest run of the same
    set for another version of the model, recorded before this one."""
    previous = previous_run(session, run)
    wanted = f"pass rate falls ≤ {bound:.0%} from the previous version"
    if previous is None:
        return Criterion("technical", f"{name}: regression", wanted, "no earlier version's run",
                         None, "pass")  # fmt: skip
    comparison = compare(run_outcomes(session, previous.run_id), run_outcomes(session, run.run_id))
    before, after = comparison.pass_rates()
    if before is None or after is None:
        return Criterion("technical", f"{name}: regression", wanted,
                         f"no case in common with {previous.model_version}", 0, "fail")  # fmt: skip
    fall = before - after
    measured = (
        f"{before:.1%} in {previous.model_version} → {after:.1%}; "
        f"{len(comparison.newly_failing)} newly failing (p = {comparison.p_value():.2g})"
    )
    status: CriterionStatus = "pass" if fall <= bound else "fail"
    return Criterion("technical", f"{name}: regression", wanted, measured,
                     len(comparison.shared), status)  # fmt: skip


def _technical(
    session: Session,
    threshold: Threshold,
    window: _Window,
    enough: bool,
    model: str,
    version: str,
    now: datetime,
) -> list[Criterion]:
    technical, found = threshold.technical, []
    ceilings = [
        ("latency p95", 95, technical.latency_p95_ms),
        ("latency p99", 99, technical.latency_p99_ms),
    ]
    for name, percentile, ceiling in ceilings:
        if ceiling is None:
            continue
        if not enough:
            found.append(_thin("technical", name, f"≤ {ceiling:g} ms", len(window.latency_ms)))
            continue
        latency = float(np.percentile(window.latency_ms, percentile))
        found.append(
            Criterion("technical", name, f"≤ {ceiling:g} ms", f"{latency:.1f} ms",
                      len(window.latency_ms), "pass" if latency <= ceiling else "fail")
        )  # fmt: skip
    if technical.load_peak_per_s is None and technical.max_error_rate is None:
        return found
    since = _before(now, timedelta(days=technical.load_within_days))
    test = session.exec(
        select(LoadTest)
        .where(
            LoadTest.model_name == model,
            LoadTest.model_version == version,
            col(LoadTest.occurred_at) >= since,
        )
        .order_by(col(LoadTest.occurred_at).desc())
    ).first()
    within = f"within {technical.load_within_days} d"
    if technical.load_peak_per_s is not None:
        wanted = f"passed at 3x {technical.load_peak_per_s:g}/s {within}"
        if test is None:
            found.append(Criterion("technical", "load test", wanted, "none recorded", None,
                                   "not enough data"))  # fmt: skip
        else:
            strong = test.rate_per_s >= 3 * technical.load_peak_per_s * 0.999
            measured = f"{'passed' if test.passed else 'failed'} at {test.rate_per_s:g}/s"
            status: CriterionStatus = "pass" if test.passed and strong else "fail"
            sent = int(test.figures.get("sent", 0))
            found.append(Criterion("technical", "load test", wanted, measured, sent, status))
    if technical.max_error_rate is not None:
        wanted = f"≤ {technical.max_error_rate:.2%} in a load test {within}"
        if test is None:
            found.append(Criterion("technical", "error rate", wanted, "no load test recorded",
                                   None, "not enough data"))  # fmt: skip
        else:
            status = "pass" if test.error_rate <= technical.max_error_rate else "fail"
            sent = int(test.figures.get("sent", 0))
            found.append(
                Criterion("technical", "error rate", wanted, f"{test.error_rate:.3%}", sent,
                          status)
            )  # fmt: skip
    return found


def _data(
    session: Session,
    threshold: Threshold,
    window: _Window,
    enough: bool,
    model: str,
    version: str,
) -> list[Criterion]:
    data, found = threshold.data, []
    total = len(window.decision_ids)
    if data.max_contract_violation_rate is not None:
        wanted = f"≤ {data.max_contract_violation_rate:.2%}"
        if not enough:
            found.append(_thin("data", "contract violations", wanted, total))
        else:
            rate = window.violations / total
            status: CriterionStatus = "pass" if rate <= data.max_contract_violation_rate else "fail"
            found.append(
                Criterion("data", "contract violations", wanted, f"{rate:.2%}", total, status)
            )
    if data.no_open_input_drift:
        baseline = active_baseline(session, model, version)
        if baseline is None:
            found.append(
                Criterion("data", "input drift", "none open", "no baseline set", None,
                          "not enough data")
            )  # fmt: skip
        else:
            latest = queries.latest_verdicts(
                session=session, model=model, version=version, baseline_id=baseline.baseline_id
            )
            open_features = sorted(
                {v.feature for v in latest if v.state == "detected" and v.feature != CONFIDENCE}
            )
            measured = ", ".join(open_features) or "none"
            status = "fail" if open_features else "pass"
            found.append(Criterion("data", "input drift", "none open", measured, None, status))
    return found


def _organisational(
    session: Session,
    threshold: Threshold,
    alerting: AlertingConfig | None,
    model: str,
    version: str,
    now: datetime,
) -> list[Criterion]:
    organisational, found = threshold.organisational, []
    if organisational.named_owner:
        owner = owner_for(alerting, {"model": model, "version": version}) if alerting else None
        if owner is None:
            measured = "no owner in the alerting file" if alerting else "no alerting file"
            status: CriterionStatus = "fail"
        else:
            path = " → ".join(owner.escalation) or "no escalation path"
            measured = f"{owner.owner}; {path}"
            status = "pass" if owner.escalation else "fail"
        found.append(
            Criterion("organisational", "owner and escalation", "named", measured, None, status)
        )
    if organisational.drill_within_days is not None:
        wanted = f"passed within {organisational.drill_within_days} d"
        drill = session.exec(
            select(Drill)
            .where(
                Drill.model_name == model,
                Drill.model_version == version,
                col(Drill.occurred_at)
                >= _before(now, timedelta(days=organisational.drill_within_days)),
            )
            .order_by(col(Drill.occurred_at).desc())
        ).first()
        if drill is None:
            found.append(Criterion("organisational", "incident drill", wanted,
                                   "no drill recorded", None, "not enough data"))  # fmt: skip
        else:
            measured = (
                f"passed, notified in {drill.seconds_to_notification:.0f} s"
                if drill.passed and drill.seconds_to_notification is not None
                else f"failed: {drill.reason}"
            )
            status = "pass" if drill.passed else "fail"
            found.append(
                Criterion("organisational", "incident drill", wanted, measured, None, status)
            )
    return found


def _governance(
    session: Session,
    threshold: Threshold,
    window: _Window,
    enough: bool,
    ledger_intact: Callable[[], bool],
) -> list[Criterion]:
    governance, found = threshold.governance, []
    if governance.ledger_verifies:
        intact = ledger_intact()
        found.append(
            Criterion("governance", "ledger verifies", "every chain intact",
                      "intact" if intact else "breaks found", None, "pass" if intact else "fail")
        )  # fmt: skip
    reviews = _reviews(session, window.decision_ids)
    if governance.min_review_coverage is not None and governance.review_below_confidence:
        below = [
            d for d, c in zip(window.decision_ids, window.confidence, strict=True)
            if c is not None and c < governance.review_below_confidence
        ]  # fmt: skip
        wanted = (
            f"≥ {governance.min_review_coverage:.0%} of decisions under "
            f"{governance.review_below_confidence:g} reviewed"
        )
        if not below:
            found.append(_thin("governance", "review coverage", wanted, 0))
        else:
            coverage = sum(d in reviews for d in below) / len(below)
            status: CriterionStatus = (
                "pass" if coverage >= governance.min_review_coverage else "fail"
            )
            found.append(
                Criterion("governance", "review coverage", wanted, f"{coverage:.1%}",
                          len(below), status)
            )  # fmt: skip
    if governance.max_override_rate is not None:
        wanted = f"≤ {governance.max_override_rate:.2%}"
        total = len(window.decision_ids)
        if not enough:
            found.append(_thin("governance", "override rate", wanted, total))
        else:
            rate = sum("override" in actions for actions in reviews.values()) / total
            status = "pass" if rate <= governance.max_override_rate else "fail"
            found.append(
                Criterion("governance", "override rate", wanted, f"{rate:.2%}", total, status)
            )
    if governance.min_accuracy is not None:
        labels = _labels(session, window.decision_ids)
        wanted = f"≥ {governance.min_accuracy:.1%} on ≥ {governance.min_labelled} labelled"
        if len(labels) < governance.min_labelled:
            found.append(_thin("governance", "accuracy (feedback)", wanted, len(labels)))
        else:
            accuracy = sum(labels.values()) / len(labels)
            status = "pass" if accuracy >= governance.min_accuracy else "fail"
            found.append(
                Criterion("governance", "accuracy (feedback)", wanted, f"{accuracy:.1%}",
                          len(labels), status)
            )  # fmt: skip
    return found


def _reviews(session: Session, decision_ids: Sequence[Any]) -> dict[Any, set[str]]:
    """Each reviewed decision's review actions."""
    found: dict[Any, set[str]] = {}
    for chunk in _chunks(decision_ids):
        for decision_id, action in session.exec(
            select(col(Review.decision_id), col(Review.action)).where(
                col(Review.decision_id).in_(chunk)
            )
        ).all():
            found.setdefault(decision_id, set()).add(action)
    return found


def _labels(session: Session, decision_ids: Sequence[Any]) -> dict[Any, bool]:
    """Each labelled decision: whether its latest feedback says it was right."""
    found: dict[Any, bool] = {}
    for chunk in _chunks(decision_ids):
        for decision_id, correct in session.exec(
            select(col(Feedback.decision_id), col(Feedback.correct))
            .where(col(Feedback.decision_id).in_(chunk), col(Feedback.correct).is_not(None))
            .order_by(col(Feedback.occurred_at))
        ).all():
            found[decision_id] = bool(correct)
    return found


def _chunks(items: Sequence[Any], size: int = 500) -> list[Sequence[Any]]:
    # SQLite allows a bounded number of parameters per statement.
    return [items[i : i + size] for i in range(0, len(items), size)]


def _before(now: datetime, span: timedelta) -> datetime:
    """``now - span``, or the earliest time there is when that is before year 1 (a window of
    "99999999d" on the command line): every record, never an OverflowError."""
    try:
        return now - span
    except OverflowError:
        return datetime.min.replace(tzinfo=now.tzinfo)


def _thin(area: ReadinessArea, name: str, threshold: str, sample: int) -> Criterion:
    return Criterion(area, name, threshold, None, sample, "not enough data")

"""Where each model version stands on its way to go-live, for the page: the decision clock and
the agreed thresholds (with any change the thresholds file proposes), the latest run of each
evaluation set with its pass rate per tag and the regression from the previous version, and
the gate's latest verdict."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session, col, select

from driftline.collector.golive.agreements import Agreement, agreement_for
from driftline.collector.golive.comparison import compare
from driftline.collector.golive.run_history import previous_run, run_outcomes
from driftline.collector.golive.thresholds import ReadinessConfig
from driftline.collector.store.models import (
    AgreedThresholds,
    EvaluationRun,
    ModelDeployment,
    ReadinessEvaluation,
)

MAX_VERSIONS = 50  # the most recent; the page is a summary, the API and CLI have the rest


@dataclass(frozen=True)
class RunSummary:
    set_name: str
    set_version: str
    occurred_at: datetime
    passed: bool
    cases: int
    pass_rate: float | None
    tags: dict[str, float | None]  # each tag's pass rate
    failed_thresholds: list[str]
    previous_version: str | None = None  # of the run compared with
    previous_pass_rate: float | None = None
    newly_failing: int = 0
    p_value: float | None = None


@dataclass(frozen=True)
class VersionStatus:
    model: str
    version: str
    agreement: Agreement | None
    clock: str | None
    proposal: str  # "" when the file says what was agreed; else what differs
    runs: list[RunSummary] = field(default_factory=list)
    verdict: str | None = None  # the gate's latest, if it was asked
    verdict_at: datetime | None = None


def version_statuses(
    session: Session, *, thresholds: ReadinessConfig | None, now: datetime
) -> list[VersionStatus]:
    """Each model version that was deployed, evaluated or had thresholds agreed, newest first."""
    seen: dict[tuple[str, str], datetime] = {}
    for table in (ModelDeployment, EvaluationRun, AgreedThresholds):
        rows = session.exec(
            select(table.model_name, table.model_version, table.occurred_at)
            .order_by(col(table.occurred_at).desc())
            .limit(500)
        ).all()
        for model, version, at in rows:
            if version != "*" and at > seen.get(
                (model, version), datetime.min.replace(tzinfo=at.tzinfo)
            ):
                seen[(model, version)] = at
    newest = sorted(seen, key=lambda key: seen[key], reverse=True)[:MAX_VERSIONS]
    return [_status(session, model, version, thresholds, now) for model, version in newest]


def _status(
    session: Session, model: str, version: str, thresholds: ReadinessConfig | None, now: datetime
) -> VersionStatus:
    try:
        agreement = agreement_for(session, model, version)
    except ValueError:  # an agreement that no longer reads: the gate says so; the page shows none
        agreement = None
    proposal = ""
    proposed = thresholds.for_version(model, version) if thresholds else None
    if agreement is None:
        proposal = "never agreed" + (": the file has a threshold" if proposed else "")
    elif agreement.proposes_change(proposed):
        proposal = "the thresholds file proposes a change, not agreed"
    verdict = session.exec(
        select(ReadinessEvaluation.verdict, ReadinessEvaluation.occurred_at)
        .where(
            ReadinessEvaluation.model_name == model, ReadinessEvaluation.model_version == version
        )
        .order_by(col(ReadinessEvaluation.occurred_at).desc())
    ).first()
    return VersionStatus(
        model=model, version=version, agreement=agreement,
        clock=agreement.clock(now) if agreement else None, proposal=proposal,
        runs=_runs(session, model, version), verdict=verdict[0] if verdict else None,
        verdict_at=verdict[1] if verdict else None,
    )  # fmt: skip


def _runs(session: Session, model: str, version: str) -> list[RunSummary]:
    """The latest run of each set on the version, compared with the latest run of the same set
    on another version before it."""
    latest: dict[str, EvaluationRun] = {}
    for run in session.exec(
        select(EvaluationRun)
        .where(EvaluationRun.model_name == model, EvaluationRun.model_version == version)
        .order_by(col(EvaluationRun.occurred_at).desc())
        .limit(100)
    ).all():
        latest.setdefault(run.set_name, run)
    return [_summary(session, run) for run in sorted(latest.values(), key=lambda r: r.set_name)]


def _summary(session: Session, run: EvaluationRun) -> RunSummary:
    rates = {f.get("tag"): f.get("value") for f in run.figures if f.get("metric") == "pass_rate"}
    failed = sorted(
        f["metric"] + (f" ({f['tag']})" if f.get("tag") else "")
        for f in run.figures
        if f.get("status") in ("fail", "not enough data")
    )
    summary = RunSummary(
        set_name=run.set_name, set_version=run.set_version, occurred_at=run.occurred_at,
        passed=run.passed, cases=run.cases, pass_rate=rates.get(None),
        tags={tag: value for tag, value in sorted(rates.items(), key=lambda kv: str(kv[0])) if tag},
        failed_thresholds=failed,
    )  # fmt: skip
    previous = previous_run(session, run)
    if previous is None:
        return summary
    comparison = compare(run_outcomes(session, previous.run_id), run_outcomes(session, run.run_id))
    before, _ = comparison.pass_rates()
    return RunSummary(
        **{**summary.__dict__, "previous_version": previous.model_version,
           "previous_pass_rate": before, "newly_failing": len(comparison.newly_failing),
           "p_value": comparison.p_value()},
    )  # fmt: skip

"""Evaluation runs as the store keeps them: a run's case outcomes, and the run a version's run
is compared with (the latest run of the same set on another version, recorded before it)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from driftline.collector.golive.comparison import CaseOutcome
from driftline.collector.store.models import EvaluationCase, EvaluationRun


def run_outcomes(session: Session, run_id: Any) -> list[CaseOutcome]:
    rows = session.exec(
        select(
            col(EvaluationCase.case_id), col(EvaluationCase.passed), col(EvaluationCase.tags),
            col(EvaluationCase.reason),
        ).where(EvaluationCase.run_id == run_id)
    ).all()  # fmt: skip
    return [
        CaseOutcome(case_id, passed, tuple(tags), reason) for case_id, passed, tags, reason in rows
    ]


def previous_run(session: Session, run: EvaluationRun) -> EvaluationRun | None:
    return session.exec(
        select(EvaluationRun)
        .where(
            EvaluationRun.model_name == run.model_name,
            EvaluationRun.model_version != run.model_version,
            EvaluationRun.set_name == run.set_name,
            col(EvaluationRun.occurred_at) < run.occurred_at,
        )
        .order_by(col(EvaluationRun.occurred_at).desc())
    ).first()

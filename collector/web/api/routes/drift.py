"""Drift: the current state of every monitored model version, and one version's checks and
verdict history."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from sqlmodel import Session

from driftline.collector.drift.baselines import active_baseline, all_baselines
from driftline.collector.store import queries
from driftline.collector.store.models import BaselineRecord
from driftline.collector.web.api.deps import SessionDep
from driftline.collector.web.api.schemas import (
    BaselinePublic,
    CheckStatus,
    DriftVerdictPublic,
    VersionDrift,
    VersionDriftDetail,
)

router = APIRouter(prefix="/drift", tags=["drift"])


@router.get("", response_model=list[VersionDrift])
def drift_overview(session: SessionDep) -> list[VersionDrift]:
    """Every model version with a baseline, and the checks drifting now."""
    active: dict[tuple[str, str], BaselineRecord] = {}
    for record in all_baselines(session):  # oldest first, so the latest set wins
        active[(record.model_name, record.model_version)] = record
    overview = []
    for record in active.values():
        checks = _checks(session, record)
        drifting = [c for c in checks if c.state == "drifting"]
        overview.append(
            VersionDrift(
                model=record.model_name,
                version=record.model_version,
                state="drifting" if drifting else "ok",
                baseline=BaselinePublic.of(record),
                drifting=drifting,
            )
        )
    return overview


@router.get("/{model}/{version}", response_model=VersionDriftDetail)
def version_drift(
    session: SessionDep,
    model: str,
    version: str,
    limit: Annotated[int, Query(ge=1, le=1_000, description="verdicts of history")] = 100,
) -> VersionDriftDetail:
    record = active_baseline(session, model, version)
    if record is None:
        raise HTTPException(status_code=404, detail=f"no baseline set for {model} {version}")
    checks = _checks(session, record)
    drifting = [c for c in checks if c.state == "drifting"]
    history = queries.verdict_history(session=session, model=model, version=version, limit=limit)
    return VersionDriftDetail(
        model=model,
        version=version,
        state="drifting" if drifting else "ok",
        baseline=BaselinePublic.of(record),
        drifting=drifting,
        checks=checks,
        history=[DriftVerdictPublic.model_validate(v) for v in history],
    )


def _checks(session: Session, record: BaselineRecord) -> list[CheckStatus]:
    latest = queries.latest_verdicts(
        session=session,
        model=record.model_name,
        version=record.model_version,
        baseline_id=record.baseline_id,
    )
    return [
        CheckStatus(
            feature=v.feature,
            test=v.test,
            state="drifting" if v.state == "detected" else "ok",
            since=v.occurred_at,
            verdict=DriftVerdictPublic.model_validate(v),
        )
        for v in latest
    ]

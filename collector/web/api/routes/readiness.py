"""The go-live gate: the latest evaluation of a model version against its threshold."""

from datetime import datetime

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel

from driftline.collector.store import queries
from driftline.collector.web.api.deps import SessionDep

router = APIRouter(prefix="/readiness", tags=["readiness"])


class CriterionPublic(BaseModel):
    area: str
    name: str
    threshold: str
    measured: str | None
    sample: int | None
    status: str


class ReadinessPublic(BaseModel):
    model: str
    version: str
    verdict: str
    evaluated_at: datetime
    asked_by: str
    window_start: datetime
    window_end: datetime
    criteria: list[CriterionPublic]


@router.get("/{model}/{version}", response_model=ReadinessPublic)
def latest(session: SessionDep, model: str, version: str) -> ReadinessPublic:
    """The latest `driftline readiness` verdict for the version, with every criterion."""
    found = queries.latest_readiness(session=session, model=model, version=version)
    if found is None:
        raise HTTPException(status_code=404, detail=f"no readiness evaluation of {model} {version}")
    return ReadinessPublic(
        model=found.model_name,
        version=found.model_version,
        verdict=found.verdict,
        evaluated_at=found.occurred_at,
        asked_by=found.asked_by,
        window_start=found.window_start,
        window_end=found.window_end,
        criteria=[CriterionPublic.model_validate(c) for c in found.criteria],
    )

"""The accountability map: who answers for each type of decision, with its gaps."""

from datetime import UTC, date, datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel

from driftline.collector.golive.accountability import (
    SETTING,
    AccountabilityMap,
    EntryStatus,
    Gap,
    GapKind,
    survey_store,
)
from driftline.collector.web.api.deps import SessionDep

router = APIRouter(tags=["governance"])


class GapPublic(BaseModel):
    kind: GapKind
    what: str

    @classmethod
    def of(cls, gap: Gap) -> "GapPublic":
        return cls(kind=gap.kind, what=gap.what)


class DecisionTypePublic(BaseModel):
    entry: int  # its place in the file, from 1
    model: str
    output: str | None  # None: every output
    segment: str | None  # None: every decision
    accountable: str | None
    escalation: list[str]  # in order, when a decision is challenged
    audit_trail: str | None
    reviewed_on: date | None
    reviewed_by: str | None
    review_every_days: float
    next_review: datetime | None  # None: never reviewed
    gaps: list[GapPublic]

    @classmethod
    def of(cls, status: EntryStatus) -> "DecisionTypePublic":
        entry = status.entry
        return cls(
            entry=status.number,
            model=entry.model,
            output=entry.output,
            segment=entry.segment,
            accountable=entry.accountable,
            escalation=entry.escalation,
            audit_trail=entry.audit_trail,
            reviewed_on=entry.reviewed_on,
            reviewed_by=entry.reviewed_by,
            review_every_days=status.period.total_seconds() / 86_400,
            next_review=status.next_review,
            gaps=[GapPublic.of(g) for g in status.gaps],
        )


class UncoveredPublic(BaseModel):
    """A model with decisions (or a deployment) that no entry covers, or not all of them."""

    model: str
    kind: GapKind
    what: str


class AccountabilityPublic(BaseModel):
    configured: bool  # false: no map (DRIFTLINE_ACCOUNTABILITY_CONFIG unset), all uncovered
    complete: bool  # configured, and no gap anywhere
    decision_types: list[DecisionTypePublic]
    uncovered: list[UncoveredPublic]


@router.get("/accountability", response_model=AccountabilityPublic)
def accountability(request: Request, session: SessionDep) -> AccountabilityPublic:
    """Every decision type of the accountability map with its gaps and next review, and the
    models with decisions that it leaves without an entry."""
    configured: AccountabilityMap | None = request.app.state.accountability
    found = survey_store(
        configured or AccountabilityMap(decision_types=[]), session, now=datetime.now(UTC)
    )
    uncovered = [UncoveredPublic(model=g.model, kind=g.kind, what=g.what) for g in found.uncovered]
    if configured is None:
        uncovered = [u.model_copy(update={"what": f"{u.what} ({SETTING} is not set)"})
                     for u in uncovered]  # fmt: skip
    return AccountabilityPublic(
        configured=configured is not None,
        complete=configured is not None and not found.gaps,
        decision_types=[DecisionTypePublic.of(e) for e in found.entries],
        uncovered=uncovered,
    )

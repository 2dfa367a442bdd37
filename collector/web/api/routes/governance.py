"""Retention and erasure: legal holds, and erasing a subject's decision inputs."""

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path
from pydantic import BaseModel, Field
from sqlmodel import col, select

from driftline.collector.audit.erasure import erase_subject
from driftline.collector.audit.holds import HoldError, active_holds, place_hold, release_hold
from driftline.collector.store.models import Erasure, LegalHold
from driftline.collector.web.api.auth import Admin
from driftline.collector.web.api.deps import SessionDep, SigningKey

router = APIRouter(tags=["governance"])

Name = Annotated[str, Field(min_length=1, max_length=200)]


class NewHold(BaseModel):
    model: Name | None = None
    subject: Name | None = None
    reason: Annotated[str, Field(min_length=1, max_length=2_000)]


class HoldPublic(BaseModel):
    id: uuid.UUID
    model: str | None
    subject: str | None
    reason: str
    created_by: str
    created_at: datetime
    released_at: datetime | None

    @classmethod
    def of(cls, hold: LegalHold) -> "HoldPublic":
        return cls(
            id=hold.id,
            model=hold.model_name,
            subject=hold.subject_ref,
            reason=hold.reason,
            created_by=hold.created_by,
            created_at=hold.created_at,
            released_at=hold.released_at,
        )


class ErasureRequest(BaseModel):
    reason: Annotated[str, Field(min_length=1, max_length=2_000)]


class ErasurePublic(BaseModel):
    id: uuid.UUID
    subject: str | None
    reason: str
    requested_by: str
    at: datetime
    decisions: int


class ErasureOutcomePublic(ErasurePublic):
    held: int  # decisions kept because a legal hold covers them


@router.get("/holds", response_model=list[HoldPublic])
def holds(session: SessionDep) -> list[HoldPublic]:
    """Legal holds in force."""
    return [HoldPublic.of(h) for h in active_holds(session)]


@router.post("/holds", response_model=HoldPublic, status_code=201)
def add_hold(session: SessionDep, new: NewHold, token: Admin) -> HoldPublic:
    try:
        hold = place_hold(
            session,
            model=new.model,
            subject=new.subject,
            reason=new.reason,
            created_by=token.name,
            now=datetime.now(UTC),
        )
    except HoldError as error:
        raise HTTPException(status_code=422, detail=str(error)) from None
    session.commit()
    return HoldPublic.of(hold)


@router.delete("/holds/{hold_id}", response_model=HoldPublic)
def end_hold(session: SessionDep, hold_id: uuid.UUID, _token: Admin) -> HoldPublic:
    try:
        hold = release_hold(session, hold_id, datetime.now(UTC))
    except HoldError as error:
        raise HTTPException(status_code=404, detail=str(error)) from None
    session.commit()
    return HoldPublic.of(hold)


@router.get("/erasures", response_model=list[ErasurePublic])
def erasures(session: SessionDep) -> list[ErasurePublic]:
    """Every erasure and retention run that erased something, newest first."""
    rows = session.exec(select(Erasure).order_by(col(Erasure.at).desc()).limit(1_000))
    return [
        ErasurePublic(subject=e.subject_ref, **e.model_dump(exclude={"subject_ref"})) for e in rows
    ]


@router.post("/subjects/{subject}/erasure", response_model=ErasureOutcomePublic, status_code=201)
def erase(
    session: SessionDep,
    subject: Annotated[str, Path(min_length=1, max_length=200)],
    request: ErasureRequest,
    token: Admin,
    key: SigningKey,
) -> ErasureOutcomePublic:
    """Replace the inputs of the subject's decisions by signed tombstones; the chain still
    verifies (on an API that signs)."""
    outcome = erase_subject(
        session,
        subject=subject,
        reason=request.reason,
        requested_by=token.name,
        now=datetime.now(UTC),
        key=key,
    )
    session.commit()
    record = session.get(Erasure, outcome.erasure_id)
    assert record is not None
    return ErasureOutcomePublic(
        subject=subject,
        held=outcome.held,
        **record.model_dump(exclude={"subject_ref", "key_id", "signature"}),
    )

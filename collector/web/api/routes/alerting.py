"""Alerting: who owns which models, and the silences that mute alerts."""

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from driftline.collector.alerting.config import AlertingConfig
from driftline.collector.alerting.silences import (
    MAX_COMMENT,
    MAX_MATCHER_TEXT,
    MAX_MATCHERS,
    SilenceState,
    check_comment,
    create_silence,
    expire_silence,
    list_silences,
    parse_matchers,
    state_of,
)
from driftline.collector.core.durations import parse_duration
from driftline.collector.store.models import Silence
from driftline.collector.store.search import Instant
from driftline.collector.web.api.auth import Operator
from driftline.collector.web.api.deps import SessionDep

router = APIRouter(tags=["alerting"])


class OwnerPublic(BaseModel):
    matchers: list[str]
    owner: str
    escalation: list[str]
    runbook: str | None
    severity: str


MatcherText = Annotated[str, Field(min_length=1, max_length=MAX_MATCHER_TEXT)]


class NewSilence(BaseModel):
    """Its author is the token's name: a body that names one is refused."""

    model_config = ConfigDict(extra="forbid")

    matchers: Annotated[list[MatcherText], Field(min_length=1, max_length=MAX_MATCHERS)]
    comment: Annotated[str, Field(min_length=1, max_length=MAX_COMMENT)]
    starts_at: Instant | None = None  # default: now
    ends_at: Instant | None = None
    duration: str | None = Field(
        default=None, max_length=100, description="instead of ends_at: 2h, 30m..."
    )

    @model_validator(mode="before")
    @classmethod
    def _author_is_the_token(cls, data: Any) -> Any:
        if isinstance(data, dict) and "created_by" in data:
            raise ValueError("created_by is the name of the token that creates it; leave it out")
        return data

    @field_validator("matchers")
    @classmethod
    def _readable(cls, value: list[str]) -> list[str]:
        parse_matchers(value)  # ValueError naming the matcher and what is wrong
        return value

    @field_validator("comment")
    @classmethod
    def _said(cls, value: str) -> str:
        return check_comment(value)


class SilencePublic(BaseModel):
    id: uuid.UUID
    matchers: list[str]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    created_at: datetime
    state: SilenceState


@router.get("/owners", response_model=list[OwnerPublic])
def owners(request: Request) -> list[OwnerPublic]:
    config: AlertingConfig | None = request.app.state.alerting
    if config is None:
        return []
    return [
        OwnerPublic(
            matchers=[str(m) for m in o.matchers],
            owner=o.owner,
            escalation=o.escalation,
            runbook=o.runbook,
            severity=o.severity,
        )
        for o in config.owners
    ]


@router.get("/silences", response_model=list[SilencePublic])
def silences(session: SessionDep) -> list[SilencePublic]:
    now = datetime.now(UTC)
    return [_public(s, now) for s in list_silences(session)]


@router.post("/silences", response_model=SilencePublic, status_code=201)
def add_silence(session: SessionDep, new: NewSilence, token: Operator) -> SilencePublic:
    now = datetime.now(UTC)
    starts_at = new.starts_at or now
    try:
        if (new.ends_at is None) == (new.duration is None):
            raise ValueError("give exactly one of ends_at and duration")
        ends_at = new.ends_at or _ends(starts_at, new.duration)
        silence = create_silence(
            session,
            matchers=new.matchers,
            starts_at=starts_at,
            ends_at=ends_at,
            created_by=token.name,
            comment=new.comment,
            now=now,
        )
    except ValueError as error:
        raise HTTPException(status_code=422, detail=str(error)) from None
    session.commit()
    session.refresh(silence)
    return _public(silence, now)


@router.delete("/silences/{silence_id}", response_model=SilencePublic)
def expire(session: SessionDep, silence_id: uuid.UUID, _token: Operator) -> SilencePublic:
    now = datetime.now(UTC)
    silence = expire_silence(session, silence_id, now)
    if silence is None:
        raise HTTPException(status_code=404, detail=f"no silence {silence_id}")
    session.commit()
    session.refresh(silence)
    return _public(silence, now)


def _ends(starts_at: datetime, duration: str | None) -> datetime:
    try:
        return starts_at + parse_duration(duration)
    except ValueError as error:
        raise ValueError(f"duration: {error}") from None
    except OverflowError:
        raise ValueError("duration: the silence would end after year 9999") from None


def _public(silence: Silence, now: datetime) -> SilencePublic:
    return SilencePublic(**silence.model_dump(), state=state_of(silence, now))

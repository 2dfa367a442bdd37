"""Decisions: one decision's trail, and time-ordered search with cursor pagination."""

import uuid
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import AwareDatetime

from collector import queries
from collector.api.deps import SessionDep
from collector.api.schemas import (
    DecisionPage,
    DecisionPublic,
    DecisionTrailPublic,
    FeedbackPublic,
    ReviewPublic,
)

router = APIRouter(prefix="/decisions", tags=["decisions"])


@router.get("", response_model=DecisionPage)
def search_decisions(
    session: SessionDep,
    model: Annotated[str | None, Query(max_length=200)] = None,
    version: Annotated[str | None, Query(max_length=200)] = None,
    since: Annotated[AwareDatetime | None, Query(description="inclusive")] = None,
    until: Annotated[AwareDatetime | None, Query(description="exclusive")] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DecisionPage:
    try:
        after = queries.Cursor.decode(cursor) if cursor else None
    except ValueError as error:
        raise HTTPException(status_code=422, detail=f"cursor: {error}") from None
    rows = queries.search_decisions(
        session=session,
        model=model,
        version=version,
        since=since,
        until=until,
        after=after,
        limit=limit,
    )
    next_cursor = None
    if len(rows) == limit:
        last = rows[-1]
        next_cursor = queries.Cursor(last.occurred_at, last.decision_id).encode()
    return DecisionPage(
        items=[DecisionPublic.model_validate(row) for row in rows], next_cursor=next_cursor
    )


@router.get("/{decision_id}", response_model=DecisionTrailPublic)
def read_decision(session: SessionDep, decision_id: uuid.UUID) -> DecisionTrailPublic:
    trail = queries.decision_trail(session=session, decision_id=decision_id)
    if trail is None:
        raise HTTPException(status_code=404, detail=f"no decision {decision_id}")
    return DecisionTrailPublic(
        decision=DecisionPublic.model_validate(trail.decision),
        reviews=[ReviewPublic.model_validate(r) for r in trail.reviews],
        feedback=[FeedbackPublic.model_validate(f) for f in trail.feedback],
    )

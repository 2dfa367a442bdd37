"""API tokens, and the record of who read what."""

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from driftline.collector.audit.access import (
    Role,
    TokenNameTaken,
    create_token,
    list_tokens,
    revoke_token,
)
from driftline.collector.store.models import ApiToken, AuditRead
from driftline.collector.store.search import Instant
from driftline.collector.web.api.auth import Admin
from driftline.collector.web.api.deps import SessionDep

router = APIRouter(tags=["access"])


class NewToken(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    role: Role
    expires_at: Instant | None = None


class TokenPublic(BaseModel):
    id: uuid.UUID
    name: str
    role: str
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, record: ApiToken) -> "TokenPublic":
        return cls.model_validate(record, from_attributes=True)


class IssuedTokenPublic(TokenPublic):
    token: str  # shown this once; only its hash is kept


class ReadPublic(BaseModel):
    at: datetime
    token_name: str
    role: str
    path: str
    query: str


@router.get("/tokens", response_model=list[TokenPublic])
def tokens(session: SessionDep, _token: Admin) -> list[TokenPublic]:
    return [TokenPublic.of(t) for t in list_tokens(session)]


@router.post("/tokens", response_model=IssuedTokenPublic, status_code=201)
def add_token(session: SessionDep, new: NewToken, token: Admin) -> IssuedTokenPublic:
    """409 for a name that is taken, by a revoked token too."""
    try:
        issued = create_token(
            session,
            name=new.name,
            role=new.role,
            created_by=token.name,
            now=datetime.now(UTC),
            expires_at=new.expires_at,
        )
        session.commit()
    except TokenNameTaken as taken:
        raise HTTPException(status_code=409, detail=str(taken)) from None
    except IntegrityError:  # created by another request meanwhile
        session.rollback()
        raise HTTPException(status_code=409, detail=str(TokenNameTaken(new.name))) from None
    return IssuedTokenPublic(token=issued.token, **TokenPublic.of(issued.record).model_dump())


@router.delete("/tokens/{token_id}", response_model=TokenPublic)
def revoke(session: SessionDep, token_id: uuid.UUID, _token: Admin) -> TokenPublic:
    record = revoke_token(session, token_id, datetime.now(UTC))
    if record is None:
        raise HTTPException(status_code=404, detail=f"no token {token_id}")
    session.commit()
    return TokenPublic.of(record)


@router.get("/audit/reads", response_model=list[ReadPublic])
def reads(
    session: SessionDep,
    _token: Admin,
    since: Instant | None = None,
    token_name: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1_000)] = 100,
) -> list[ReadPublic]:
    """Reads through the API, newest first: who asked what, and when."""
    statement = select(AuditRead).order_by(col(AuditRead.at).desc())
    if since is not None:
        statement = statement.where(col(AuditRead.at) >= since)
    if token_name is not None:
        statement = statement.where(AuditRead.token_name == token_name)
    return [
        ReadPublic.model_validate(r, from_attributes=True)
        for r in session.exec(statement.limit(limit))
    ]

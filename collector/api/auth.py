"""Bearer-token authentication for every route but health, and the record of every read."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from collector.access import Role, authenticate, ranks_at_least
from collector.models import ApiToken, AuditRead

bearer = HTTPBearer(auto_error=False, description="A token from `driftline token create`.")


def authenticated(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> ApiToken:
    """The caller's token; a read (GET) is recorded with who made it. FastAPI runs this once
    per request however many routes and roles depend on it."""
    if credentials is None:
        raise _unauthorized("no bearer token (Authorization: Bearer <token>)")
    now = datetime.now(UTC)
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        found = authenticate(session, credentials.credentials, now)
        if isinstance(found, str):
            raise _unauthorized(found)
        if request.method == "GET":
            session.add(
                AuditRead(
                    id=uuid.uuid4(),
                    at=now,
                    token_id=found.id,
                    token_name=found.name,
                    role=found.role,
                    path=request.url.path,
                    query=request.url.query,
                )
            )
            session.commit()
    return found


@functools.cache
def require(role: Role) -> Callable[[ApiToken], ApiToken]:
    def authorized(token: Annotated[ApiToken, Depends(authenticated)]) -> ApiToken:
        if not ranks_at_least(token.role, role):
            raise HTTPException(
                status_code=403, detail=f"needs the {role} role; this token is {token.role}"
            )
        return token

    return authorized


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(status_code=401, detail=reason, headers={"WWW-Authenticate": "Bearer"})


Auditor = Annotated[ApiToken, Depends(require("auditor"))]
Operator = Annotated[ApiToken, Depends(require("operator"))]
Admin = Annotated[ApiToken, Depends(require("admin"))]

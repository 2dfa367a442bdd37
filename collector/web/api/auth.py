"""Bearer-token authentication for every route but health, the API's own documents and the
web page's login form, and the record of every read. The web page's session travels in a
cookie.

The token is checked in a middleware, before FastAPI reads the request, so that a caller
without a valid token learns nothing from validation errors: every such request gets 401.
Routes then ask for a role through ``require``.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session
from starlette.types import ASGIApp, Receive, Scope, Send

from driftline.collector.audit.access import Role, authenticate, ranks_at_least, ui_session_token
from driftline.collector.store.models import ApiToken, AuditRead

OPEN_PATHS = {
    "/healthz",
    "/metrics",
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
    "/ui/login",
}
# The web page keeps its session (not the token: see access.open_ui_session) in this cookie
# (HTTP-only, Secure, SameSite=Strict): it is taken for reads anywhere (a page's export links)
# and for the page's own forms under /ui.
SESSION_COOKIE = "driftline_token"
UI = "/ui"
bearer = HTTPBearer(auto_error=False, description="A token from `driftline token create`.")


class TokenGate:
    """ASGI middleware: a request without a valid token is answered 401 before any route sees
    it; an admitted one carries its token in ``request.state.token``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in OPEN_PATHS or path.startswith(f"{UI}/static/"):
            await self.app(scope, receive, send)
            return
        admitted = await run_in_threadpool(_admit, Request(scope))
        if isinstance(admitted, str):
            refusal = (
                RedirectResponse(f"{UI}/login", status_code=303)
                if _on_page(path)
                else JSONResponse(
                    {"detail": admitted}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
                )
            )
            await refusal(scope, receive, send)
            return
        scope.setdefault("state", {})["token"] = admitted
        await self.app(scope, receive, send)


def _admit(request: Request) -> ApiToken | str:
    """The caller's token, or why it is refused; a read (GET) is recorded with who made it."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    by_cookie = scheme.lower() != "bearer" or not token
    if by_cookie:
        token = request.cookies.get(SESSION_COOKIE, "")
        if not token or (request.method != "GET" and not _on_page(request.url.path)):
            return "no bearer token (Authorization: Bearer <token>)"
    now = datetime.now(UTC)
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        found = (
            ui_session_token(session, token, now)
            if by_cookie
            else authenticate(session, token.strip(), now)
        )
        if isinstance(found, ApiToken) and request.method == "GET":
            session.add(
                AuditRead(
                    id=uuid.uuid4(),
                    at=now,
                    token_id=found.id,
                    token_name=found.name,
                    role=found.role,
                    # As sent, percent-encoded: a NUL (%00) is refused later, not stored
                    path=_as_sent(request.scope.get("raw_path")) or request.url.path,
                    query=_as_sent(request.scope.get("query_string")),
                )
            )
            session.commit()
    return found


def _as_sent(raw: bytes | None) -> str:
    return (raw or b"").decode("latin-1").replace("\x00", "%00")


def _on_page(path: str) -> bool:
    return path == UI or path.startswith(f"{UI}/")


async def authenticated(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> ApiToken:
    """The token the gate admitted (the dependency on ``bearer`` documents the scheme)."""
    token: ApiToken = request.state.token
    return token


@functools.cache
def require(role: Role) -> Callable[[ApiToken], Awaitable[ApiToken]]:
    # async: a check this small is cheaper on the event loop than on a worker thread
    async def authorized(token: Annotated[ApiToken, Depends(authenticated)]) -> ApiToken:
        if not ranks_at_least(token.role, role):
            raise HTTPException(
                status_code=403, detail=f"needs the {role} role; this token is {token.role}"
            )
        return token

    return authorized


Auditor = Annotated[ApiToken, Depends(require("auditor"))]
Operator = Annotated[ApiToken, Depends(require("operator"))]
Admin = Annotated[ApiToken, Depends(require("admin"))]

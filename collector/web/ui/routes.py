"""The web page under /ui: server-rendered templates over the same store and the same tokens as
the API. The login form takes a token and opens a session, whose secret it keeps in an
HTTP-only, Secure, SameSite=Strict cookie; the token gate admits the page's requests by that
cookie, and signing out ends the session on the server. Operators see the silence
forms; auditors only read."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlmodel import Session

from driftline.collector.alerting.silences import create_silence, expire_silence
from driftline.collector.audit.access import (
    authenticate,
    end_ui_session,
    open_ui_session,
    ranks_at_least,
)
from driftline.collector.core.durations import parse_duration
from driftline.collector.golive.accountability import SETTING, period_text
from driftline.collector.store.models import ApiToken, Decision
from driftline.collector.store.search import Cursor, DecisionFilter, PricesMissing, search
from driftline.collector.web.api.auth import SESSION_COOKIE, authenticated
from driftline.collector.web.api.deps import SessionDep, no_nul
from driftline.collector.web.ui import views
from driftline.collector.web.ui.protection import same_origin

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
STATIC = Path(__file__).parent / "static"
SESSION_HOURS = 8
PAGE = 50

# Every form refuses a post from another origin (and a NUL, which no store keeps).
router = APIRouter(
    prefix="/ui", include_in_schema=False, dependencies=[Depends(same_origin), Depends(no_nul)]
)
pages = APIRouter(
    prefix="/ui",
    include_in_schema=False,
    dependencies=[Depends(authenticated), Depends(same_origin), Depends(no_nul)],
)
Token = Annotated[ApiToken, Depends(authenticated)]


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    return TEMPLATES.TemplateResponse(request, "login.html", {"error": None})


@router.post("/login", response_class=HTMLResponse)
def log_in(request: Request, token: Annotated[str, Form()]) -> Response:
    """The cookie holds a session of its own, not the token: signing out ends it."""
    now = datetime.now(UTC)
    with Session(request.app.state.engine) as session:
        found = authenticate(session, token.strip(), now)
        if isinstance(found, str):
            return TEMPLATES.TemplateResponse(
                request, "login.html", {"error": f"Not signed in: {found}."}, status_code=401
            )
        secret = open_ui_session(
            session, token=found, now=now, lasts=timedelta(hours=SESSION_HOURS)
        )
        session.commit()
    response = RedirectResponse("/ui/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=SESSION_HOURS * 3600,
        httponly=True,
        secure=True,
        samesite="strict",
    )
    return response


@pages.post("/logout")
def log_out(request: Request, session: SessionDep) -> Response:
    """Ends the session on the server: a copy of its cookie no longer signs anyone in."""
    if secret := request.cookies.get(SESSION_COOKIE):
        end_ui_session(session, secret, datetime.now(UTC))
        session.commit()
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, httponly=True, secure=True, samesite="strict")
    return response


@pages.get("/", response_class=HTMLResponse)
def overview(request: Request, session: SessionDep, token: Token) -> Response:
    now = datetime.now(UTC)
    rows = views.overview(
        session, now=now, alerting=request.app.state.alerting, prices=request.app.state.prices
    )
    return _render(request, token, "overview.html", {"rows": rows, "now": now})


@pages.get("/drift/{model}/{version}", response_class=HTMLResponse)
def drift(
    request: Request, session: SessionDep, token: Token, model: str, version: str
) -> Response:
    page = views.version_drift(session, model=model, version=version, now=datetime.now(UTC))
    if page is None:
        raise HTTPException(status_code=404, detail=f"no baseline set for {model} {version}")
    return _render(request, token, "drift.html", {"page": page})


@pages.get("/alerts", response_class=HTMLResponse)
def alerts(request: Request, session: SessionDep, token: Token) -> Response:
    # A silence can be started from a drift page: its matchers come in the query.
    proposed = request.query_params.getlist("matcher")
    page = views.alerts_page(session, now=datetime.now(UTC))
    context = {"page": page, "proposed": proposed, "error": None}
    return _render(request, token, "alerts.html", context)


@pages.post("/silences", response_class=HTMLResponse)
def add_silence(
    request: Request,
    session: SessionDep,
    token: Token,
    matchers: Annotated[str, Form()],
    duration: Annotated[str, Form()],
    comment: Annotated[str, Form()],
) -> Response:
    _must_operate(token)
    now = datetime.now(UTC)
    wanted = [line.strip() for line in matchers.splitlines() if line.strip()]
    try:
        create_silence(
            session,
            matchers=wanted,
            starts_at=now,
            ends_at=now + parse_duration(duration),
            created_by=token.name,
            comment=comment.strip() or "(no comment)",
            now=now,
        )
    except ValueError as error:
        page = views.alerts_page(session, now=now)
        context = {"page": page, "proposed": wanted, "error": str(error)}
        return _render(request, token, "alerts.html", context, status_code=422)
    session.commit()
    return RedirectResponse("/ui/alerts", status_code=303)


@pages.post("/silences/{silence_id}/expire")
def expire(session: SessionDep, token: Token, silence_id: uuid.UUID) -> Response:
    _must_operate(token)
    if expire_silence(session, silence_id, datetime.now(UTC)) is None:
        raise HTTPException(status_code=404, detail=f"no silence {silence_id}")
    session.commit()
    return RedirectResponse("/ui/alerts", status_code=303)


@pages.get("/audit", response_class=HTMLResponse)
def audit(request: Request, session: SessionDep, token: Token) -> Response:
    given = {k: v for k, v in request.query_params.items() if v != "" and k != "after"}
    cursor = request.query_params.get("after")
    error = None
    try:
        where = DecisionFilter.model_validate(given)
        after = Cursor.decode(cursor) if cursor else None
    except (ValidationError, ValueError) as problem:
        where, after, error = DecisionFilter(), None, _first_problem(problem)
    rows: list[Decision] = []
    following: Cursor | None = None
    if error is None:
        try:
            rows, following = search(session, where, after, PAGE, request.app.state.prices)
        except PricesMissing as missing:
            error = str(missing)
    query = where.query_string()
    context = {
        "where": where,
        "given": given,
        "rows": rows,
        "error": error,
        "next": urlencode(query | {"after": following.encode()}) if following else None,
        "export": urlencode(query),
    }
    return _render(request, token, "audit.html", context)


@pages.get("/decisions/{decision_id}", response_class=HTMLResponse)
def decision(
    request: Request, session: SessionDep, token: Token, decision_id: uuid.UUID
) -> Response:
    page = views.decision_page(
        session,
        decision_id=decision_id,
        keys=request.app.state.keys,
        prices=request.app.state.prices,
        accountability=request.app.state.accountability,
    )
    if page is None:
        raise HTTPException(status_code=404, detail=f"no decision {decision_id}")
    return _render(request, token, "decision.html", {"page": page})


@pages.get("/accountability", response_class=HTMLResponse)
def accountability(request: Request, session: SessionDep, token: Token) -> Response:
    page = views.accountability_page(
        session, accountability=request.app.state.accountability, now=datetime.now(UTC)
    )
    context = {"page": page, "setting": SETTING, "period_text": period_text}
    return _render(request, token, "accountability.html", context)


@pages.get("/golive", response_class=HTMLResponse)
def golive(request: Request, session: SessionDep, token: Token) -> Response:
    state = request.app.state
    rows = views.golive_page(
        session, thresholds=state.thresholds, contracts=state.contracts,
        accountability=state.accountability, now=datetime.now(UTC),
    )  # fmt: skip
    return _render(request, token, "golive.html", {"rows": rows})


def _render(
    request: Request,
    token: ApiToken,
    template: str,
    context: dict[str, Any],
    status_code: int = 200,
) -> Response:
    context |= {
        "token": token,
        "operator": ranks_at_least(token.role, "operator"),
        "ago": _ago,
    }
    return TEMPLATES.TemplateResponse(request, template, context, status_code=status_code)


def _must_operate(token: ApiToken) -> None:
    if not ranks_at_least(token.role, "operator"):
        raise HTTPException(
            status_code=403, detail=f"needs the operator role; yours is {token.role}"
        )


def _first_problem(problem: Exception) -> str:
    if isinstance(problem, ValidationError):
        first = problem.errors(include_url=False)[0]
        return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    return str(problem)


def _ago(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    seconds = (datetime.now(UTC) - moment).total_seconds()
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return f"{max(0.0, seconds):.0f} s ago"

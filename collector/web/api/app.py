"""Builds the FastAPI application around a database engine."""

from typing import Any

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine

from driftline.agent.provenance import TrustedProducers
from driftline.collector.alerting.config import AlertingConfig
from driftline.collector.audit.integrity import KeyRing
from driftline.collector.golive.accountability import AccountabilityMap
from driftline.collector.golive.contracts import Contracts
from driftline.collector.golive.thresholds import ReadinessConfig
from driftline.collector.store.prices import PriceTable
from driftline.collector.web.api import metrics
from driftline.collector.web.api.auth import TokenGate, authenticated
from driftline.collector.web.api.deps import exact_query, no_nul
from driftline.collector.web.api.metrics import RequestMetrics
from driftline.collector.web.api.routes import (
    access,
    alerting,
    decisions,
    drift,
    governance,
    health,
    integrity,
    readiness,
)
from driftline.collector.web.api.routes import accountability as accountability_routes
from driftline.collector.web.api.schemas import Problem
from driftline.collector.web.ui import routes as ui
from driftline.collector.web.ui.protection import PageHeaders

REFUSALS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "The body is not JSON."},
    401: {"model": Problem, "description": "No token, or an unknown, expired or revoked one."},
    403: {"model": Problem, "description": "The token's role may not do this."},
    404: {"model": Problem, "description": "No such thing."},
    409: {"model": Problem, "description": "Not possible yet; the detail says what is missing."},
    422: {"model": Problem, "description": "A parameter or the body is invalid."},
    503: {"model": Problem, "description": "This replica signs nothing (DRIFTLINE_API_SIGNS)."},
}


def create_app(
    engine: Engine,
    *,
    keys: KeyRing,  # public keys; the signing key too where routes that sign may run
    alerting_config: AlertingConfig | None = None,
    trace_link_template: str | None = None,
    producers: TrustedProducers | None = None,
    prices: PriceTable | None = None,
    accountability: AccountabilityMap | None = None,
    thresholds: ReadinessConfig | None = None,
    contracts: Contracts | None = None,
) -> FastAPI:
    app = FastAPI(
        title="Driftline",
        summary="Audit trail of AI decisions: what was decided, on what, by which model, and why.",
        version="0.1.0",
    )
    app.state.engine = engine
    app.state.keys = keys
    app.state.producers = producers  # whose component events verification believes
    app.state.alerting = alerting_config
    app.state.trace_link_template = trace_link_template
    app.state.prices = prices  # what a decision's tokens cost; None: no costs shown
    app.state.accountability = accountability  # None: no map, every model a gap
    app.state.thresholds = thresholds  # the file's: the go-live page shows changes it proposes
    app.state.contracts = contracts  # the data contracts: the go-live page shows their gaps
    app.add_middleware(TokenGate)
    app.add_middleware(PageHeaders)  # outside the gate: its refusals carry the headers too
    app.add_middleware(RequestMetrics)  # outermost: every answer counted
    app.include_router(health.router)
    app.include_router(metrics.router)
    # Every other route needs a token; those that change state ask for a higher role too.
    authorized = [Depends(authenticated), Depends(exact_query), Depends(no_nul)]  # every role reads
    resources = (decisions, drift, alerting, integrity, governance, access, readiness)
    routers = [m.router for m in (*resources, accountability_routes)]
    for router in [*routers, decisions.exports_router]:
        app.include_router(router, dependencies=authorized, responses=REFUSALS)
    app.include_router(ui.router)  # the login form
    app.include_router(ui.pages)
    app.mount("/ui/static", StaticFiles(directory=ui.STATIC), name="ui-static")
    return app

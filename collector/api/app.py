"""Builds the FastAPI application around a database engine."""

from fastapi import Depends, FastAPI
from sqlalchemy import Engine

from collector.alert_config import AlertingConfig
from collector.api.auth import authenticated
from collector.api.routes import access, alerting, decisions, drift, governance, health, integrity
from collector.integrity import KeyRing


def create_app(
    engine: Engine,
    *,
    keys: KeyRing,
    alerting_config: AlertingConfig | None = None,
    trace_link_template: str | None = None,
) -> FastAPI:
    app = FastAPI(
        title="Driftline",
        summary="Audit trail of AI decisions: what was decided, on what, by which model, and why.",
        version="0.1.0",
    )
    app.state.engine = engine
    app.state.keys = keys
    app.state.alerting = alerting_config
    app.state.trace_link_template = trace_link_template
    app.include_router(health.router)
    # Every other route needs a token; those that change state ask for a higher role too.
    authorized = [Depends(authenticated)]  # every role may read
    for module in (decisions, drift, alerting, integrity, governance, access):
        app.include_router(module.router, dependencies=authorized)
    app.include_router(decisions.exports_router, dependencies=authorized)
    return app

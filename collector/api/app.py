"""Builds the FastAPI application around a database engine."""

from fastapi import FastAPI
from sqlalchemy import Engine

from collector.alert_config import AlertingConfig
from collector.api.routes import alerting, decisions, drift, health


def create_app(engine: Engine, alerting_config: AlertingConfig | None = None) -> FastAPI:
    app = FastAPI(
        title="Driftline",
        summary="Audit trail of AI decisions: what was decided, on what, by which model, and why.",
        version="0.1.0",
    )
    app.state.engine = engine
    app.state.alerting = alerting_config
    app.include_router(health.router)
    app.include_router(decisions.router)
    app.include_router(drift.router)
    app.include_router(alerting.router)
    return app

"""Builds the FastAPI application around a database engine."""

from fastapi import FastAPI
from sqlalchemy import Engine

from collector.api.routes import decisions, drift, health


def create_app(engine: Engine) -> FastAPI:
    app = FastAPI(
        title="Driftline",
        summary="Audit trail of AI decisions: what was decided, on what, by which model, and why.",
        version="0.1.0",
    )
    app.state.engine = engine
    app.include_router(health.router)
    app.include_router(decisions.router)
    app.include_router(drift.router)
    return app

"""Liveness of the API and its database."""

from fastapi import APIRouter, Response
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from driftline.collector.web.api.deps import SessionDep
from driftline.collector.web.api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz(session: SessionDep, response: Response) -> Health:
    try:
        session.exec(text("SELECT 1"))  # type: ignore[call-overload]
    except SQLAlchemyError as error:
        response.status_code = 503
        return Health(status="degraded", database=f"unreachable: {error.__class__.__name__}")
    return Health(status="ok", database="ok")

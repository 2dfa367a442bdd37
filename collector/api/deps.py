"""Typed dependencies shared by the routes."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlmodel import Session


def get_session(request: Request) -> Iterator[Session]:
    with Session(request.app.state.engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


async def exact_query(request: Request) -> None:
    """Refuse a query parameter the operation does not declare, or one given twice: FastAPI
    would ignore the one and keep one value of the other, and an auditor would get an answer
    to a question they did not ask (a misspelt filter would select everything)."""
    route = request.scope["route"]
    operation = request.app.openapi()["paths"][route.path_format][request.method.lower()]
    declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
    names = [name for name, _ in request.query_params.multi_items()]
    unknown = sorted(set(names) - declared)
    if unknown:
        raise HTTPException(
            status_code=422, detail=f"unknown query parameters: {', '.join(map(repr, unknown))}"
        )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise HTTPException(
            status_code=422, detail=f"give each parameter once: {', '.join(repeated)}"
        )

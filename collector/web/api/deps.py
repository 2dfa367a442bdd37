"""Typed dependencies shared by the routes."""

from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from sqlmodel import Session

from driftline.collector.audit.checkpoints import SigningKeyError
from driftline.collector.audit.integrity import KeyRing

NUL = "\x00"


def get_session(request: Request) -> Iterator[Session]:
    with Session(request.app.state.engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def signing_key(request: Request) -> Ed25519PrivateKey:
    """The key a route signs with (checkpoints, export manifests, erasure marks); 503 on an
    API replica that holds public keys only, where the housekeeper does the signing."""
    keys: KeyRing = request.app.state.keys
    try:
        return keys.signer()
    except SigningKeyError as error:
        raise HTTPException(status_code=503, detail=str(error)) from None


SigningKey = Annotated[Ed25519PrivateKey, Depends(signing_key)]


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


async def no_nul(request: Request) -> None:
    """Refuse a NUL character in any path or query parameter, form field or JSON string (or
    key), naming where: PostgreSQL keeps none in text, and the stores must take the same
    values. Run before the parameters are validated, so no route ever sees one."""
    found: list[tuple[str | int, ...]] = [
        ("path", name) for name, value in request.path_params.items() if NUL in str(value)
    ]
    found += [
        ("query", name)
        for name, value in request.query_params.multi_items()
        if NUL in name or NUL in value
    ]
    found += [("body", *where) async for where in _nul_in_body(request)]
    if found:
        raise RequestValidationError(
            [
                {
                    "type": "string_nul",
                    "loc": location,
                    "msg": r"a NUL character (\u0000) is not allowed here",
                    "input": None,
                }
                for location in found
            ]
        )


async def _nul_in_body(request: Request) -> AsyncIterator[tuple[str | int, ...]]:
    """Where the body, as FastAPI read it (Starlette keeps it), holds a NUL."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in ("application/x-www-form-urlencoded", "multipart/form-data"):
        for name, value in (await request.form()).multi_items():
            if NUL in name or (isinstance(value, str) and NUL in value):
                yield (name,)
    elif kind == "application/json" or kind.endswith("+json"):
        try:
            document = await request.json()
        except ValueError:  # not JSON: a route that takes a body says so; others ignore it
            return
        for where in _nul_in(document):
            yield where


def _nul_in(value: Any, where: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    if isinstance(value, str) and NUL in value:
        yield where
    elif isinstance(value, dict):
        for key, item in value.items():
            if NUL in key:
                yield (*where, key)
            else:
                yield from _nul_in(item, (*where, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nul_in(item, (*where, index))

"""The agent as an HTTP sidecar, for services in any language: ``driftline agent``.

``POST /v1/events`` takes one event or a list, in the contract's shape less what the agent
stamps (schema, event id, time, service; a decision id for a decision). Each is checked
against the contract at once, so the caller hears what is wrong, then travels exactly as an
event recorded through the SDK: redaction, span (joining the caller's W3C ``traceparent``),
queue, Kafka or spool. Plus ``/healthz``, ``/readyz`` and Prometheus ``/metrics``.

Only the service's own kinds of event are taken here: decisions, reviews and feedback, for the
service this agent was started for (DRIFTLINE_SERVICE). Deployments, baselines, verdicts,
readiness, load tests, drills and alerts are Driftline's own components' to write, and a
caller naming another service is refused. Only a local program may post: a request whose
``Host`` is not loopback (or one of DRIFTLINE_SIDECAR_ALLOWED_HOSTS) is refused, against DNS
rebinding, and so is one a browser sends (it carries ``Origin``) or that is not JSON, so that
no web page can post events through a browser on the same machine.

Bounded: a body over ``MAX_BODY_BYTES`` or an event over the contract's ``MAX_EVENT_BYTES`` is
answered 413 naming the limit, before anything is parsed or queued; JSON that nests too deep
or holds a NUL is a 422 naming the field. What a 202 promises is DRIFTLINE_SIDECAR_ACK's:
"queued" (in memory: lost if the process is killed before it is sent) or "on_disk" (written
to the spool and synced: it survives a kill).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from opentelemetry import context as otel_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic_core import from_json
from starlette.concurrency import run_in_threadpool

from driftline.agent.client import Driftline
from driftline.agent.contract import (
    COMPONENT_EVENT_TYPES,
    MAX_EVENT_BYTES,
    SERVICE_EVENT_TYPES,
    ContractError,
    EventTooLarge,
    validate,
    wire_bytes,
)

MAX_BATCH = 1_000
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})
MAX_BODY_BYTES = 16 * 1024 * 1024
propagator = TraceContextTextMapPropagator()
EVENTS_BODY = {  # the body is read by hand, to bound it before parsing; this documents it
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"type": "object"},
                        {"type": "array", "items": {"type": "object"}, "maxItems": MAX_BATCH},
                    ]
                }
            }
        },
    }
}


def create_sidecar(
    driftline: Driftline,
    *,
    shutdown_timeout_s: float = 10.0,
    allowed_hosts: Sequence[str] = (),
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        driftline.close(timeout_s=shutdown_timeout_s)

    app = FastAPI(title="Driftline agent", version="0.1.0", lifespan=lifespan)

    @app.post("/v1/events", status_code=202, openapi_extra=EVENTS_BODY)
    async def receive_events(request: Request) -> JSONResponse:
        if refusal := _refused_caller(request, LOOPBACK_HOSTS | frozenset(allowed_hosts)):
            return refusal
        raw = await _bounded_body(request)
        if raw is None:
            return _too_large(f"a request body may hold at most {MAX_BODY_BYTES:,} bytes")
        try:
            body = from_json(raw, allow_inf_nan=False)
        except ValueError as error:
            reason = f"not valid JSON: {error}"
            return JSONResponse({"detail": [{"field": "body", "reason": reason}]}, 422)
        parent = propagator.extract(carrier=dict(request.headers))
        # Redaction and a synced spool write (DRIFTLINE_SIDECAR_ACK=on_disk) block: not here.
        return await run_in_threadpool(_receive, driftline, body, parent)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        ready, reason = driftline.readiness()
        return JSONResponse({"ready": ready, "reason": reason}, status_code=200 if ready else 503)

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(driftline.metrics), media_type=CONTENT_TYPE_LATEST)

    return app


def _receive(driftline: Driftline, body: Any, parent: otel_context.Context) -> JSONResponse:
    documents = body if isinstance(body, list) else [body]
    if len(documents) > MAX_BATCH:
        return _too_large(f"at most {MAX_BATCH} events per request")
    checked, problems = [], []
    for index, document in enumerate(documents):
        if not isinstance(document, dict):
            problems.append({"event": index, "field": "message", "reason": "not a JSON object"})
            continue
        if problem := _not_the_services(document, driftline.service):
            problems.append({"event": index, **problem})
            continue
        try:
            event = validate(driftline.complete_event(document))
            wire_bytes(event)  # the bounds: size, NUL, depth
            checked.append(event.model_dump(by_alias=True))
        except EventTooLarge as error:
            return _too_large(f"event {index}: {error}; at most {MAX_EVENT_BYTES:,} bytes")
        except ContractError as error:
            problems += [{"event": index, "field": f, "reason": r} for f, r in error.problems]
        except ValueError as error:  # text that UTF-8 cannot carry: a lone surrogate
            problems.append({"event": index, "field": "message", "reason": str(error)})
    if problems:
        return JSONResponse({"detail": problems}, status_code=422)
    kept = driftline.record_events(checked, parent)
    ids = [
        {"event_id": str(d["event_id"]), "decision_id": d["decision_id"] and str(d["decision_id"])}
        for d, ok in zip(checked, kept, strict=True)
        if ok
    ]
    if len(ids) < len(checked):
        return JSONResponse(
            {"detail": "agent cannot take the events now", "accepted": ids},
            status_code=503,
            headers={"Retry-After": "1"},
        )
    return JSONResponse({"accepted": ids}, status_code=202)


def _refused_caller(request: Request, hosts: frozenset[str]) -> JSONResponse | None:
    """Why this request may not post events, if it may not: not from a local program."""
    host = request.headers.get("host", "")
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if name.lower() not in hosts:
        reason = f"Host {host!r} is not this machine; add it to DRIFTLINE_SIDECAR_ALLOWED_HOSTS"
        return JSONResponse({"detail": reason}, status_code=403)
    if "origin" in request.headers:
        return JSONResponse({"detail": "events are not taken from a browser"}, status_code=403)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        return JSONResponse({"detail": "send events as application/json"}, status_code=415)
    return None


def _not_the_services(document: dict[str, Any], service: str) -> dict[str, str] | None:
    """The field and reason if the event is not one this service may record here."""
    kind = document.get("type")
    if not isinstance(kind, str):
        return None  # the contract names it
    if kind in SERVICE_EVENT_TYPES:
        named = document.get("service", service)
        if named == service:
            return None
        reason = f"this sidecar records for service {service!r} only, not {named!r}"
        return {"field": "service", "reason": reason}
    if kind in COMPONENT_EVENT_TYPES:
        return {"field": "type", "reason": f"{kind} events are written by Driftline only"}
    return None  # an unknown type: the contract names it


async def _bounded_body(request: Request) -> bytes | None:
    """The request's body, or None once it passes MAX_BODY_BYTES (declared or sent)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            return None
    return bytes(body)


def _too_large(reason: str) -> JSONResponse:
    return JSONResponse({"detail": reason}, status_code=413)

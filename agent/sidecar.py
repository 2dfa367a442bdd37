"""The agent as an HTTP sidecar, for services in any language: ``driftline agent``.

``POST /v1/events`` takes one event or a list, in the contract's shape less what the agent
stamps (schema, event id, time, service; a decision id for a decision). Each is checked
against the contract at once, so the caller hears what is wrong, then travels exactly as an
event recorded through the SDK: redaction, span (joining the caller's W3C ``traceparent``),
queue, Kafka or spool. Plus ``/healthz``, ``/readyz`` and Prometheus ``/metrics``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Body, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from agent.client import Driftline
from agent.contract import ContractError, validate

MAX_BATCH = 1_000
propagator = TraceContextTextMapPropagator()


def create_sidecar(driftline: Driftline, *, shutdown_timeout_s: float = 10.0) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        driftline.close(timeout_s=shutdown_timeout_s)

    app = FastAPI(title="Driftline agent", version="0.1.0", lifespan=lifespan)

    @app.post("/v1/events", status_code=202)
    def receive_events(
        request: Request,
        body: Annotated[dict[str, Any] | list[dict[str, Any]], Body()],
    ) -> JSONResponse:
        documents = body if isinstance(body, list) else [body]
        if len(documents) > MAX_BATCH:
            return JSONResponse(
                {"detail": f"at most {MAX_BATCH} events per request"}, status_code=413
            )
        checked, problems = [], []
        for index, document in enumerate(documents):
            try:
                event = validate(driftline.complete_event(document))
                checked.append(event.model_dump(by_alias=True))
            except ContractError as error:
                problems += [{"event": index, "field": f, "reason": r} for f, r in error.problems]
        if problems:
            return JSONResponse({"detail": problems}, status_code=422)
        parent = propagator.extract(carrier=dict(request.headers))
        accepted = [document for document in checked if driftline.record_event(document, parent)]
        ids = [
            {
                "event_id": str(d["event_id"]),
                "decision_id": d["decision_id"] and str(d["decision_id"]),
            }
            for d in accepted
        ]
        if len(accepted) < len(checked):
            return JSONResponse(
                {"detail": "agent queue full", "accepted": ids},
                status_code=503,
                headers={"Retry-After": "1"},
            )
        return JSONResponse({"accepted": ids}, status_code=202)

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

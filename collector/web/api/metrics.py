"""The API's own metrics: requests by route (its template, never the values in the path) and
status, and their latency, as ``GET /metrics`` serves them with the rest of the process's
(under ``driftline up``, every component's). Open like ``/healthz``: it holds counts and route
templates, no model name, token or decision."""

from __future__ import annotations

import time

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter(
    "driftline_api_requests_total", "Requests answered, by route and status.", ["route", "status"]
)
LATENCY = Histogram(
    "driftline_api_request_seconds", "Time to answer a request, by route.", ["route"]
)
UNMATCHED = "(unmatched)"  # a path no route takes: one label, whatever was asked

router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response)
def metrics() -> Response:
    """Prometheus metrics of this process."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


class RequestMetrics:
    """ASGI middleware, outermost: counts every answer, refusals of the gate included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            name = route.path if isinstance(route, BaseRoute) and hasattr(route, "path") else None
            label = name or UNMATCHED
            REQUESTS.labels(label, str(status)).inc()
            LATENCY.labels(label).observe(time.perf_counter() - started)

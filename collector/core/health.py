"""Probes for the worker processes (collector, detector worker, alert router), which serve no
API of their own: their loop beats a heartbeat and reports what it cannot reach, and a small
HTTP server on ``DRIFTLINE_HEALTH_PORT`` answers ``/metrics`` with the process's Prometheus
metrics and:

- ``/healthz`` (liveness): 200 while the last beat is recent, 503 once the loop has stalled;
  its body names any fault (status ``degraded``), since a restart mends neither a database
  nor a broker that is away;
- ``/readyz``: 503 as well while a fault lasts (``{"faults": {"database": "..."}}``)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import REGISTRY, generate_latest


def first_line(error: BaseException) -> str:
    """What a fault says of an error: its first line (SQLAlchemy's go on with the statement
    and its parameters), at most 300 characters."""
    return (str(error).splitlines() or [type(error).__name__])[0][:300]


class Heartbeat:
    """When the worker's loop last went round; stale after ``stale_after_s`` without a beat."""

    def __init__(self, stale_after_s: float) -> None:
        self._stale_after_s = stale_after_s
        self._last = time.monotonic()
        self._faults: dict[str, str] = {}

    def fault(self, neighbour: str, problem: str) -> None:
        """``neighbour`` (database, kafka) cannot be used now, and why."""
        self._faults[neighbour] = problem

    def clear(self, neighbour: str) -> None:
        self._faults.pop(neighbour, None)

    @property
    def faults(self) -> dict[str, str]:
        return dict(self._faults)  # a copy: the probe server reads it from its own thread

    def beat(self) -> None:
        self._last = time.monotonic()

    def age_s(self) -> float:
        return time.monotonic() - self._last

    @property
    def alive(self) -> bool:
        return self.age_s() < self._stale_after_s


def serve_health(heartbeat: Heartbeat, host: str, port: int) -> ThreadingHTTPServer:
    """Start the probe server on a daemon thread; the caller shuts it down."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._answer(200, generate_latest(REGISTRY), "text/plain; version=0.0.4")
            elif self.path in ("/healthz", "/readyz"):
                faults = heartbeat.faults
                status = "stalled" if not heartbeat.alive else "degraded" if faults else "ok"
                body = {
                    "status": status,
                    "heartbeat_age_s": round(heartbeat.age_s(), 1),
                    **({"faults": faults} if faults else {}),
                }
                ready = heartbeat.alive and (self.path == "/healthz" or not faults)
                self._answer(200 if ready else 503, json.dumps(body).encode())
            else:
                self._answer(404, b'{"detail": "not found"}')

        def _answer(self, status: int, body: bytes, kind: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass  # probes every few seconds would drown the log

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="driftline-health", daemon=True).start()
    return server

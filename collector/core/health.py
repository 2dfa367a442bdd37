"""Probes for the worker processes (collector, detector worker, alert router), which serve no
API of their own: their loop beats a heartbeat, and a small HTTP server on
``DRIFTLINE_HEALTH_PORT`` answers ``/healthz`` with 200 while the last beat is recent and 503
once the loop has stalled, and ``/metrics`` with the process's Prometheus metrics."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import REGISTRY, generate_latest


class Heartbeat:
    """When the worker's loop last went round; stale after ``stale_after_s`` without a beat."""

    def __init__(self, stale_after_s: float) -> None:
        self._stale_after_s = stale_after_s
        self._last = time.monotonic()

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
                status = "ok" if heartbeat.alive else "stalled"
                body = {"status": status, "heartbeat_age_s": round(heartbeat.age_s(), 1)}
                self._answer(200 if heartbeat.alive else 503, json.dumps(body).encode())
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

"""A worker's probe answers 200 while its loop beats, and 503 once the loop has stalled."""

import time

import httpx

from driftline.collector.core.health import Heartbeat, serve_health
from driftline.collector.runtime.broker import free_port


def test_the_probe_fails_once_the_loop_stops_beating() -> None:
    heartbeat = Heartbeat(stale_after_s=0.3)
    port = free_port()
    server = serve_health(heartbeat, "127.0.0.1", port)
    try:
        healthy = httpx.get(f"http://127.0.0.1:{port}/healthz")
        assert healthy.status_code == 200 and healthy.json()["status"] == "ok"
        time.sleep(0.5)
        stalled = httpx.get(f"http://127.0.0.1:{port}/healthz")
        assert stalled.status_code == 503 and stalled.json()["status"] == "stalled"
        heartbeat.beat()
        assert httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics")
        assert metrics.status_code == 200 and "python_info" in metrics.text
    finally:
        server.shutdown()

"""A real HTTP server on loopback standing in for a receiver (a webhook, Slack, PagerDuty): it
records each request and answers from a script of statuses, then 200."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorder:
    url: str = ""
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    requests: list[tuple[str, Any, int]] = field(default_factory=list)  # path, body, answer

    def accepted(self) -> list[Any]:
        return [body for _, body, status in self.requests if 200 <= status < 300]


@contextmanager
def recording_server(
    script: list[tuple[int, dict[str, str]]] | None = None, port: int = 0
) -> Iterator[Recorder]:
    """Serve on ``port`` (0: any free one) until the block ends."""
    recorder = Recorder(script=list(script or []))
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"null")
            with lock:
                status, headers = recorder.script.pop(0) if recorder.script else (200, {})
                recorder.requests.append((self.path, body, status))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()

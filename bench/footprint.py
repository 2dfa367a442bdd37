"""What a process holds in memory for what it imports: the event contract, the agent's client,
the API app, and a live ``driftline api`` process, each against a bare interpreter that has
imported pydantic (every one of them needs it), measured in the same run.

Each figure is the resident memory (VmRSS) of a fresh interpreter once its imports are done;
for ``driftline api``, once it has answered ``/healthz``, on a SQLite store of its own.

    .venv/bin/python -m bench.footprint

The last line is one JSON object with the figures, in MB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from driftline.collector.runtime.broker import free_port

RSS = "print(open('/proc/self/status').read().split('VmRSS:')[1].split()[0])"
IMPORTS = {
    "pydantic": "import pydantic",
    "contract": "import driftline.agent.contract",
    "client": "from driftline.agent import Driftline",
    "api_app": (
        "from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey\n"
        "from driftline.collector.audit.integrity import KeyRing\n"
        "from driftline.collector.store.database import make_engine\n"
        "from driftline.collector.web.api.app import create_app\n"
        "create_app(make_engine('sqlite://'), keys=KeyRing.of(Ed25519PrivateKey.generate()))"
    ),
}


def imported_mb(code: str) -> float:
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\n{RSS}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return int(done.stdout.split()[-1]) / 1024


def api_process_mb(directory: Path) -> float:
    """The resident memory of ``driftline api`` once it answers."""
    driftline = [sys.executable, "-m", "driftline"]
    environment = os.environ | {
        "DRIFTLINE_DATABASE_URL": f"sqlite:///{directory / 'store.sqlite'}",
        "DRIFTLINE_SIGNING_PUBLIC_KEY_FILE": str(directory / "key.pub.pem"),
        "DRIFTLINE_SIGNING_KEY_FILE": str(directory / "key.pem"),
    }
    for command in (["audit", "keygen", "--out", str(directory / "key.pem")], ["migrate"]):
        subprocess.run(
            [*driftline, *command], env=environment, capture_output=True, timeout=120, check=True
        )
    port = free_port()
    with subprocess.Popen(
        [*driftline, "api", "--api-port", str(port)],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as api:
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).is_success:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline and api.poll() is None, "api did not start"
                time.sleep(0.2)
            status = Path(f"/proc/{api.pid}/status").read_text()
            return int(status.split("VmRSS:")[1].split()[0]) / 1024
        finally:
            api.terminate()


def main() -> None:
    figures = {name: round(imported_mb(code), 1) for name, code in IMPORTS.items()}
    with tempfile.TemporaryDirectory() as directory:
        figures["driftline_api"] = round(api_process_mb(Path(directory)), 1)
    baseline = figures["pydantic"]
    figures |= {f"{name}_over_pydantic": round(mb - baseline, 1) for name, mb in figures.items()}
    del figures["pydantic_over_pydantic"]
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

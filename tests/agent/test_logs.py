"""What the agent prints inside a service: through structlog as the service configured it, and,
when the service configured nothing (structlog's defaults print every level), nothing at debug
level, such as librdkafka's reconnection attempts against a broker that is away."""

import subprocess
import sys
from pathlib import Path

SERVICE = """
import structlog, sys
if sys.argv[1] == "debug":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(10))
from driftline.agent import Driftline
with Driftline(service="s", kafka_bootstrap_servers="127.0.0.1:1", spool_dir=sys.argv[2],
               delivery_timeout_ms=1000) as agent:
    agent.record_decision(model="m", version="1", inputs={"x": 1}, output=1, confidence=0.5,
                          latency_ms=1.0)
"""


def _printed(tmp_path: Path, configured: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", SERVICE, configured, str(tmp_path / configured)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def test_a_service_that_configured_no_logging_gets_no_debug_lines(tmp_path: Path) -> None:
    quiet = _printed(tmp_path, "nothing")
    assert "librdkafka" not in quiet and "[debug" not in quiet, quiet
    assert "Kafka not taking events" in quiet  # the outage is still named, at warning
    assert "librdkafka" in _printed(tmp_path, "debug")  # the service asked for debug

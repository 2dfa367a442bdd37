"""The container's entry points, run as the image and the chart run them (`driftline migrate`
as the hook job, then each component with DRIFTLINE_MIGRATE_ON_START=false) from the installed
package, against the embedded broker and the test's database: each starts and answers its
probes."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from driftline.collector.runtime.broker import EmbeddedBroker, free_port
from tests.waiting import wait_for

ALERTING = Path(__file__).parents[2] / "deploy" / "config" / "alerting.yaml"


def driftline(*arguments: str, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "driftline", *arguments],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def environment(
    broker: EmbeddedBroker, topic: str, database_url: str, tmp_path: Path
) -> dict[str, str]:
    return os.environ | {
        "DRIFTLINE_DATABASE_URL": database_url,
        "DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "DRIFTLINE_TOPIC": topic,
        "DRIFTLINE_MIGRATE_ON_START": "false",
        "DRIFTLINE_SIGNING_KEY_FILE": str(tmp_path / "keys" / "signing-key.pem"),
        "DRIFTLINE_SERVICE": "loan-desk",
        "DRIFTLINE_SPOOL_DIR": str(tmp_path / "spool"),
    }


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(timeout=20)


def answers(url: str) -> int:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return 0


def test_each_component_starts_and_answers_its_probes(
    environment: dict[str, str], started: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    refused = driftline("api", environment=environment)  # it verifies: the public key
    assert refused.returncode != 0 and "DRIFTLINE_SIGNING_PUBLIC_KEY_FILE" in refused.stderr
    refused = driftline("housekeep", environment=environment)  # it signs: the private key
    assert refused.returncode != 0 and "DRIFTLINE_SIGNING_KEY_FILE" in refused.stderr

    assert driftline("migrate", environment=environment).returncode == 0
    private_key = Path(environment["DRIFTLINE_SIGNING_KEY_FILE"])
    key = driftline("audit", "keygen", "--out", str(private_key), environment=environment)
    assert key.returncode == 0, key.stderr
    # As in the chart: the API holds the public key alone, the housekeeper the private one.
    api_environment = environment | {
        "DRIFTLINE_SIGNING_KEY_FILE": str(tmp_path / "not-here.pem"),
        "DRIFTLINE_SIGNING_PUBLIC_KEY_FILE": str(private_key.with_name("signing-key.pub.pem")),
    }
    no_key = environment | {"DRIFTLINE_PRODUCER_KEY_FILE": str(tmp_path / "absent.pem")}
    for signer in ("detect", "route"):  # their events are signed: without the key, no start
        unsigned = driftline(
            signer, environment=no_key | {"DRIFTLINE_ALERTING_CONFIG": str(ALERTING)}
        )
        assert unsigned.returncode != 0 and "DRIFTLINE_PRODUCER_KEY_FILE" in unsigned.stderr

    probes = {}
    for command, extra in [
        ("collect", {}),
        ("detect", {"DRIFTLINE_DETECT_INTERVAL_S": "1"}),
        ("route", {"DRIFTLINE_ALERTING_CONFIG": str(ALERTING)}),
        ("housekeep", {"DRIFTLINE_CHECKPOINT_INTERVAL_S": "1"}),
    ]:
        port = free_port()
        probes[command] = f"http://127.0.0.1:{port}"
        started.append(
            subprocess.Popen(
                [sys.executable, "-m", "driftline", command],
                env=environment | extra | {"DRIFTLINE_HEALTH_PORT": str(port)},
                stdout=subprocess.DEVNULL,
                stderr=(tmp_path / f"{command}.log").open("wb"),
            )
        )
    api_port, agent_port = free_port(), free_port()
    started.append(
        subprocess.Popen(
            [sys.executable, "-m", "driftline", "api"],
            env=api_environment | {"DRIFTLINE_API_PORT": str(api_port)},
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "api.log").open("wb"),
        )
    )
    started.append(
        subprocess.Popen(
            [sys.executable, "-m", "driftline", "agent", "--port", str(agent_port)],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "agent.log").open("wb"),
        )
    )
    checks = {
        **{f"{c} /healthz": f"{url}/healthz" for c, url in probes.items()},
        **{f"{c} /metrics": f"{url}/metrics" for c, url in probes.items()},
        "api /healthz": f"http://127.0.0.1:{api_port}/healthz",
        "api /ui/login": f"http://127.0.0.1:{api_port}/ui/login",
        "agent /healthz": f"http://127.0.0.1:{agent_port}/healthz",
        "agent /readyz": f"http://127.0.0.1:{agent_port}/readyz",
    }
    for name, url in checks.items():
        wait_for(lambda u=url: answers(u), lambda status: status == 200, 60, what=name)
    assert all(process.poll() is None for process in started)

"""What reads events pays for the schema only: importing the contract loads neither librdkafka
(confluent_kafka), the OpenTelemetry SDK nor prometheus_client, and building the API neither
of the first two (it serves its own metrics, with prometheus_client); the agent's client loads
them when first named."""

import subprocess
import sys

import pytest

HEAVY = ("confluent_kafka", "opentelemetry.sdk", "prometheus_client")

API = """
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from driftline.collector.audit.integrity import KeyRing
from driftline.collector.store.database import make_engine
from driftline.collector.web.api.app import create_app
create_app(make_engine("sqlite://"), keys=KeyRing.of(Ed25519PrivateKey.generate()))
"""


def loaded_after(code: str) -> list[str]:
    """The heavy modules loaded once ``code`` has run in a fresh interpreter."""
    report = f"import sys; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\n{report}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout.split()


@pytest.mark.parametrize("code", ["import driftline.agent.contract", "from agent import contract"])
def test_the_contract_loads_no_client_machinery(code: str) -> None:
    assert loaded_after(code) == []


def test_the_api_loads_no_kafka_client_nor_agent_sdk() -> None:
    assert loaded_after(API) == ["prometheus_client"]  # for GET /metrics


def test_the_client_loads_when_first_named() -> None:
    assert loaded_after("from agent import Driftline") == list(HEAVY)

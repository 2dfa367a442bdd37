"""Shared fixtures: the real embedded broker, per-test topics, and a fresh database on SQLite or
on the PostgreSQL server at 127.0.0.1:5432 (DRIFTLINE_TEST_POSTGRES_URL overrides)."""

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from driftline.agent.provenance import ProducerKey, TrustedProducers
from driftline.collector.consume.consumer import Collector
from driftline.collector.consume.kafka import ensure_topic
from driftline.collector.runtime.broker import EmbeddedBroker
from driftline.collector.store.database import make_engine, migrate

POSTGRES_ADMIN_URL = os.environ.get(
    "DRIFTLINE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(autouse=True)
def own_spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test's agents spool, and its collector keeps its signing key, in the test's own
    directory, never in ~/.driftline. Its agents sign with a producer key of its own, which
    ``run_collector`` trusts, as one machine's `driftline up` does."""
    directory = tmp_path / "spool"
    monkeypatch.setenv("DRIFTLINE_SPOOL_DIR", str(directory))
    monkeypatch.setenv("DRIFTLINE_DETECT_SPOOL_DIR", str(tmp_path / "detector-spool"))
    monkeypatch.setenv("DRIFTLINE_SIGNING_KEY_FILE", str(tmp_path / "signing-key.pem"))
    ProducerKey.load(tmp_path / "producer-key.pem", create=True)
    monkeypatch.setenv("DRIFTLINE_PRODUCER_KEY_FILE", str(tmp_path / "producer-key.pem"))
    return directory


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as running:
        yield running


@pytest.fixture
def topic(broker: EmbeddedBroker) -> str:
    name = f"events-{uuid.uuid4().hex[:12]}"
    ensure_topic(broker.bootstrap_servers, name, partitions=3)
    return name


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'driftline.db'}"
        return
    name = f"driftline_test_{uuid.uuid4().hex[:12]}"
    admin = make_url(POSTGRES_ADMIN_URL)
    with psycopg.connect(_libpq(POSTGRES_ADMIN_URL), autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_libpq(POSTGRES_ADMIN_URL), autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    created = make_engine(database_url)
    migrate(created)
    yield created
    created.dispose()


@pytest.fixture
def run_collector(
    broker: EmbeddedBroker, topic: str, engine: Engine
) -> Iterator[Callable[[], None]]:
    """Start a collector thread on the test's topic and database, trusting the test's producer
    key; stopped at teardown."""
    stop = threading.Event()
    threads: list[threading.Thread] = []
    producer = ProducerKey.load(Path(os.environ["DRIFTLINE_PRODUCER_KEY_FILE"]))

    def start() -> None:
        collector = Collector(
            engine=engine,
            bootstrap_servers=broker.bootstrap_servers,
            topic=topic,
            group_id=f"collector-{topic}",
            producers=TrustedProducers([producer.public_key]),
        )
        thread = threading.Thread(target=collector.run, args=(stop,), daemon=True)
        thread.start()
        threads.append(thread)

    yield start
    stop.set()
    for thread in threads:
        thread.join(timeout=15)

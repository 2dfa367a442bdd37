"""What every ``driftline`` subcommand shares: consoles, options, settings, failing clearly."""

from __future__ import annotations

import gc
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import structlog
import typer
from pydantic import ValidationError
from rich.console import Console
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from agent.provenance import ProducerKeyError
from collector.core.producer_keys import producer_key
from collector.core.settings import CollectorSettings
from collector.store.database import make_engine, migrate

log = structlog.get_logger(__name__)

console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)

DatabaseOption = Annotated[
    str | None,
    typer.Option(help="sqlite:///path or postgresql://... [env DRIFTLINE_DATABASE_URL]"),
]
KafkaOption = Annotated[
    str | None,
    typer.Option(
        help="host:port,... of a Kafka cluster; none starts the embedded broker "
        "[env DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS]"
    ),
]
PortOption = Annotated[int | None, typer.Option(help="API port [env DRIFTLINE_API_PORT]")]
ModelOption = Annotated[str, typer.Option(help="Model name, as the agent records it.")]
VersionOption = Annotated[str, typer.Option(help="Model version, as the agent records it.")]


def load_settings(**options: Any) -> CollectorSettings:
    """Settings from options over DRIFTLINE_* variables; exit naming the key if one is bad."""
    try:
        return CollectorSettings(**{k: v for k, v in options.items() if v is not None})
    except ValidationError as error:
        for problem in error.errors(include_url=False):
            key = ".".join(str(part) for part in problem["loc"])
            errors.print(f"[red]bad setting {key} (DRIFTLINE_{key.upper()}): {problem['msg']}")
        raise typer.Exit(2) from None


def fail(message: str) -> NoReturn:
    errors.print(f"[red]✗ {message}")
    raise typer.Exit(1)


def signing_key_file(settings: CollectorSettings) -> Path:
    """DRIFTLINE_PRODUCER_KEY_FILE, for a command whose events must be signed: it exits at
    once, naming the file, when the key cannot be used, rather than have every event refused."""
    try:
        producer_key(settings)
    except ProducerKeyError as error:
        fail(str(error))
    return settings.producer_key_file


def freeze_startup_heap() -> None:
    """Leave what is alive now (modules, settings, pools, hundreds of MB of objects that live as
    long as the process) out of garbage collection from here on. A long-running command calls
    it before its loop: every full collection walked them all, about 30% of `driftline
    collect`'s time (``python -m bench.collector``: 4,560 events/s before, 6,548 after)."""
    gc.collect()
    gc.freeze()


STORE_WAIT_S = 60.0


def open_store(settings: CollectorSettings) -> Engine:
    """The store, its schema brought up to date unless DRIFTLINE_MIGRATE_ON_START is off.

    A database that does not answer (restarting, say) is tried again for a minute; then the
    process stops, naming the setting, for its supervisor to start it again."""
    engine = make_engine(settings.database_url)
    deadline = time.monotonic() + STORE_WAIT_S
    backoff_s = 0.5
    while True:
        try:
            with engine.connect():
                pass
            break
        except OperationalError as error:
            if time.monotonic() + backoff_s > deadline:
                fail(f"the database at DRIFTLINE_DATABASE_URL does not answer: {error.orig}")
            log.error("the database does not answer; trying again", error=str(error.orig))
            time.sleep(backoff_s)
            backoff_s = min(backoff_s * 2, 8.0)
    if settings.migrate_on_start:
        migrate(engine)
    return engine

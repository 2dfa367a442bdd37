"""The ``driftline`` command line."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Annotated, Any, NoReturn

import httpx
import typer
import uvicorn
from kafka.errors import KafkaError
from pydantic import ValidationError
from rich.console import Console
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from agent import Driftline
from agent.sidecar import create_sidecar
from collector import ledger, queries
from collector.consumer import Collector
from collector.database import make_engine, migrate
from collector.logs import configure_logging
from collector.settings import CollectorSettings
from collector.simulation import SERVICE, run_simulation
from collector.stack import Stack

app = typer.Typer(
    help="Driftline: records AI decisions, keeps them in a tamper-evident ledger, serves audits.",
    no_args_is_help=True,
)
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


def load_settings(**options: Any) -> CollectorSettings:
    """Settings from options over DRIFTLINE_* variables; exit naming the key if one is bad."""
    try:
        return CollectorSettings(**{k: v for k, v in options.items() if v is not None})
    except ValidationError as error:
        for problem in error.errors(include_url=False):
            key = ".".join(str(part) for part in problem["loc"])
            errors.print(f"[red]bad setting {key} (DRIFTLINE_{key.upper()}): {problem['msg']}")
        raise typer.Exit(2) from None


@app.command()
def up(
    database_url: DatabaseOption = None,
    kafka_bootstrap_servers: KafkaOption = None,
    api_port: PortOption = None,
) -> None:
    """Run broker (embedded unless given), collector and API in the foreground."""
    settings = load_settings(
        database_url=database_url,
        kafka_bootstrap_servers=kafka_bootstrap_servers,
        api_port=api_port,
    )
    configure_logging(settings.log_level)
    with _running(settings) as stack:
        _describe(stack)
        console.print("Ctrl-C stops everything.")
        try:
            stack.wait()
        except KeyboardInterrupt:
            console.print("stopping")


@app.command()
def demo(
    decisions: Annotated[int, typer.Option(min=1, help="How many decisions to simulate.")] = 3000,
    database_url: DatabaseOption = None,
    api_port: PortOption = None,
    keep_running: Annotated[bool, typer.Option(help="Keep serving after the demo.")] = False,
) -> None:
    """Start the embedded stack, drive a simulated AI service through it, show one trail."""
    settings = load_settings(
        database_url=database_url,
        api_port=api_port,
        embedded_broker_port=0,  # the demo's own agent is told where; keep 9092 free
        log_level="warning",
    )
    configure_logging(settings.log_level)
    console.rule("Driftline demo")
    started = time.monotonic()
    with _running(settings) as stack:
        _describe(stack)
        assert stack.engine is not None
        before = _ledger_size(stack.engine)
        with Driftline(
            service=SERVICE, kafka_bootstrap_servers=stack.bootstrap_servers, topic=settings.topic
        ) as agent:
            sim_started = time.monotonic()
            result = run_simulation(agent, decisions=decisions)
            console.print(
                f"[green]✓[/] simulated service [bold]{SERVICE}[/] recorded "
                f"{len(result.decisions)} decisions, {len(result.reviewed)} reviews, "
                f"{len(result.with_feedback)} feedback ({result.events} events) "
                f"in {time.monotonic() - sim_started:.1f}s"
            )
            report = agent.flush(timeout_s=60)
        if not report.ok:
            _fail(f"the agent did not deliver every event: {report}")
        console.print(f"[green]✓[/] agent delivered {report.delivered} events to Kafka")
        stored = _wait_for_ledger(stack.engine, before + report.delivered, timeout_s=90)
        if stored - before != report.delivered:
            _fail(f"the collector stored {stored - before} of {report.delivered} events")
        console.print(f"[green]✓[/] collector stored {stored - before} events in the ledger")
        with Session(stack.engine) as session:
            verification = ledger.verify(session)
        state = "intact" if verification.intact else f"BROKEN: {verification.breaks}"
        console.print(
            f"[green]✓[/] ledger: {verification.chains} hash chains, "
            f"{verification.entries} entries, {state}"
        )
        chosen = next(
            d for d in result.decisions if d in result.reviewed and d in result.with_feedback
        )
        _show_trail(stack.api_url, chosen)
        console.print(f"API docs: {stack.api_url}/docs")
        console.print(f"demo took {time.monotonic() - started:.1f}s")
        if keep_running:
            console.print("serving until Ctrl-C")
            with contextlib.suppress(KeyboardInterrupt):
                stack.wait()
        else:
            console.print(f"stopping; [bold]driftline up[/] serves {settings.database_url} again")


@app.command()
def collect(
    database_url: DatabaseOption = None, kafka_bootstrap_servers: KafkaOption = None
) -> None:
    """Run only the collector, against a Kafka cluster (production, or a test broker)."""
    settings = load_settings(
        database_url=database_url, kafka_bootstrap_servers=kafka_bootstrap_servers
    )
    configure_logging(settings.log_level)
    if settings.kafka_bootstrap_servers is None:
        errors.print(
            "[red]DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS is not set; `driftline up` starts an "
            "embedded broker instead"
        )
        raise typer.Exit(2)
    engine = make_engine(settings.database_url)
    migrate(engine)
    collector = Collector.from_settings(engine, settings, settings.kafka_bootstrap_servers)
    stop = threading.Event()
    try:
        collector.run(stop)
    except KeyboardInterrupt:
        stop.set()
    except KafkaError as error:
        _fail(f"Kafka at {settings.kafka_bootstrap_servers}: {error}")


@app.command("agent")
def agent_command(
    host: Annotated[str, typer.Option(help="Listen address; keep it local to the pod.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Listen port.")] = 8686,
) -> None:
    """Run the agent as an HTTP sidecar, for services in any language (DRIFTLINE_* settings)."""
    configure_logging("info")
    # A misconfigured agent still serves: /readyz says what is wrong, nothing is recorded.
    driftline = Driftline()
    uvicorn.run(create_sidecar(driftline), host=host, port=port, log_level="warning")


@app.command("migrate")
def migrate_command(database_url: DatabaseOption = None) -> None:
    """Create or upgrade the database schema."""
    settings = load_settings(database_url=database_url)
    migrate(make_engine(settings.database_url))
    console.print(f"schema up to date at {settings.database_url}")


@app.command()
def verify(database_url: DatabaseOption = None) -> None:
    """Walk every ledger hash chain; exit 1 at the first break."""
    settings = load_settings(database_url=database_url)
    with Session(make_engine(settings.database_url)) as session:
        result = ledger.verify(session)
    for chain_break in result.breaks:
        console.print(
            f"[red]{chain_break.topic}[{chain_break.partition}] entry {chain_break.seq}: "
            f"{chain_break.problem}"
        )
    console.print(
        f"{result.chains} chains, {result.entries} entries, "
        + ("intact" if result.intact else "BROKEN")
    )
    if not result.intact:
        raise typer.Exit(1)


@contextlib.contextmanager
def _running(settings: CollectorSettings) -> Iterator[Stack]:
    """The started stack; a start that fails says why and exits instead of a traceback."""
    try:
        stack = Stack(settings).start()
    except (SQLAlchemyError, KafkaError, RuntimeError) as error:
        _fail(f"could not start: {error}")
    try:
        yield stack
    finally:
        stack.stop()


def _fail(message: str) -> NoReturn:
    errors.print(f"[red]✗ {message}")
    raise typer.Exit(1)


def _describe(stack: Stack) -> None:
    where = (
        f"embedded broker (Tansu, memory storage) on {stack.bootstrap_servers}"
        if stack.broker
        else f"Kafka at {stack.bootstrap_servers}"
    )
    console.print(f"[green]✓[/] {where}, topic {stack.settings.topic}")
    console.print(f"[green]✓[/] store {stack.settings.database_url} (migrated)")
    console.print(f"[green]✓[/] collector consuming; API on {stack.api_url} (docs: /docs)")


def _ledger_size(engine: Engine) -> int:
    with Session(engine) as session:
        return queries.count_ledger_entries(session=session)


def _wait_for_ledger(engine: Engine, target: int, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    size = _ledger_size(engine)
    while size < target and time.monotonic() < deadline:
        time.sleep(0.2)
        size = _ledger_size(engine)
    return size


def _show_trail(api_url: str, decision_id: uuid.UUID) -> None:
    response = httpx.get(f"{api_url}/decisions/{decision_id}", timeout=10)
    if response.status_code != 200:
        _fail(f"GET /decisions/{decision_id} answered {response.status_code}: {response.text}")
    console.rule(f"GET /decisions/{decision_id}")
    console.print_json(json.dumps(response.json()))

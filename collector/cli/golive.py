"""The go-live commands. ``driftline readiness`` is the gate, for a person or a deployment
pipeline: every criterion with its threshold, figure and sample, recorded as a
``readiness_evaluated`` event; it exits 0 only on "go" (1 on "no-go", 3 when data is too thin
to decide). ``driftline loadtest`` and ``driftline drill`` produce the evidence two criteria
ask for, recorded as ``load_tested`` and ``drill_completed`` events."""

from __future__ import annotations

import contextlib
import getpass
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlmodel import Session

from driftline.agent import Driftline
from driftline.agent.provenance import ProducerKeyError
from driftline.collector.alerting.config import AlertConfigError, load_alerting
from driftline.collector.audit import integrity
from driftline.collector.cli.common import (
    EXIT_FAILED,
    DatabaseOption,
    EmbeddedKafkaOption,
    KafkaOption,
    ModelOption,
    PublicKeyOption,
    VersionOption,
    console,
    fail,
    kafka_servers,
    load_settings,
    open_store,
    publish,
    read_store,
    require_producer_key,
    verifying_keys,
)
from driftline.collector.core.durations import parse_duration
from driftline.collector.core.logs import configure_logging
from driftline.collector.core.producer_keys import trusted_producers
from driftline.collector.core.settings import CollectorSettings
from driftline.collector.golive.drill import run_drill
from driftline.collector.golive.gate import Evaluation, evaluate
from driftline.collector.golive.loadtest import run_load_test
from driftline.collector.golive.thresholds import ReadinessConfigError, load_thresholds
from driftline.collector.runtime.stack import Stack
from driftline.collector.store.queries import latest_version

READINESS_SERVICE = "driftline-readiness"
LOADTEST_SERVICE = "driftline-loadtest"
DRILL_SERVICE = "driftline-drill"
EXIT_CODES = {"go": 0, "no-go": 1, "not enough data": 3}
STYLES = {"pass": "green", "fail": "red", "not enough data": "yellow"}


def readiness(
    model: ModelOption,
    version: VersionOption,
    window: Annotated[
        str | None, typer.Option(help="e.g. 7d, 24h; default: the threshold's window")
    ] = None,
    thresholds: Annotated[
        Path | None, typer.Option(help="The thresholds file; default: DRIFTLINE_READINESS_CONFIG.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the evaluation as JSON.")] = False,
    asked_by: Annotated[str | None, typer.Option(help="Who asks; default: the user.")] = None,
    no_record: Annotated[
        bool, typer.Option("--no-record", help="Do not publish it (then Kafka is not needed).")
    ] = False,
    public_key: PublicKeyOption = None,
    database_url: DatabaseOption = None,
    kafka_bootstrap_servers: KafkaOption = None,
) -> None:
    """Evaluate a model version against its agreed threshold: go, no-go or not enough data.

    It reads the store and public keys only, and publishes the evaluation as a
    readiness_evaluated event signed with the producer key, unless --no-record."""
    settings = load_settings(
        database_url=database_url, kafka_bootstrap_servers=kafka_bootstrap_servers
    )
    configure_logging(settings.log_level)  # on stderr: stdout is the table or the JSON
    bootstrap_servers = None if no_record else kafka_servers(settings)
    path = thresholds or settings.readiness_config
    if path is None:
        fail("no thresholds file: give --thresholds or set DRIFTLINE_READINESS_CONFIG")
    try:
        config = load_thresholds(path)
        alerting = load_alerting(settings.alerting_config) if settings.alerting_config else None
    except (ReadinessConfigError, AlertConfigError) as error:
        fail(f"configuration has mistakes:\n{error}")
    threshold = config.for_version(model, version)
    if threshold is None:
        fail(f'{path} agrees no threshold for {model} {version} (nor for {model} "*")')
    keys = verifying_keys(settings, public_key)
    try:
        producers = trusted_producers(settings)
    except ProducerKeyError as error:
        fail(f"{error}: the ledger criterion needs the producer public keys")
    span = None
    if window is not None:
        try:
            span = parse_duration(window)
        except ValueError as error:
            fail(f"--window: {error}")
    with Session(read_store(settings)) as session:

        def ledger_intact() -> bool:
            return integrity.verify(session, keys.trusted, producers=producers).intact

        evaluation = evaluate(
            session, threshold, model=model, version=version, now=datetime.now(UTC),
            window=span, alerting=alerting, ledger_intact=ledger_intact,
        )  # fmt: skip
    recorded = (
        _record(evaluation, asked_by or getpass.getuser(), settings, bootstrap_servers)
        if bootstrap_servers
        else "not recorded (--no-record)"
    )
    if as_json:
        console.print_json(json.dumps(evaluation.document() | {"recorded": recorded}))
    else:
        _show(evaluation, recorded)
    raise typer.Exit(EXIT_CODES[evaluation.verdict])


def _record(
    evaluation: Evaluation, asked_by: str, settings: CollectorSettings, bootstrap_servers: str
) -> str:
    """Publish the evaluation, signed; say whether Kafka took it or it waits in the spool, or
    why it was not recorded."""
    payload = evaluation.payload(asked_by)
    with Driftline(
        service=READINESS_SERVICE, kafka_bootstrap_servers=bootstrap_servers,
        producer_key_file=settings.producer_key_file,
    ) as agent:  # fmt: skip
        return publish(agent, [("readiness_evaluated", payload, evaluation.model)])


def loadtest(
    model: Annotated[
        str, typer.Option(help="The model it qualifies for the gate's load criterion")
    ] = "driftline-loadtest",
    version: Annotated[str, typer.Option(help="The version it qualifies")] = "0",
    rate: Annotated[
        float | None, typer.Option(help="Decisions a second; default 3 x --peak")
    ] = None,
    peak: Annotated[float | None, typer.Option(help="The stated peak, decisions a second")] = None,
    duration: Annotated[str, typer.Option(help="How long to drive it, e.g. 30s, 5m")] = "30s",
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
    database_url: DatabaseOption = None,
    kafka_bootstrap_servers: EmbeddedKafkaOption = None,
) -> None:
    """The stability audit: drive the pipeline at a steady rate; report cost and losses.

    It drives the live pipeline through the agent, or an embedded one in this process when
    no Kafka is given."""
    settings = load_settings(
        database_url=database_url, kafka_bootstrap_servers=kafka_bootstrap_servers,
        api_port=0, embedded_broker_port=0, detect_enabled=False, alerting_config="",
    )  # fmt: skip
    configure_logging("warning")
    if rate is None and peak is None:
        fail("give --rate, or --peak to drive it at three times the peak")
    target_rate = rate or 3 * (peak or 0)
    try:
        seconds = parse_duration(duration).total_seconds()
    except ValueError as error:
        fail(f"--duration: {error}")
    with contextlib.ExitStack() as running:
        if settings.kafka_bootstrap_servers is None:  # the embedded pipeline, in this process
            stack = running.enter_context(Stack(settings))
            assert stack.engine is not None
            engine, bootstrap_servers = stack.engine, stack.bootstrap_servers
        else:  # the live pipeline: its collectors store what this sends
            engine, bootstrap_servers = open_store(settings), settings.kafka_bootstrap_servers
        agent = running.enter_context(
            Driftline(
                service=LOADTEST_SERVICE, kafka_bootstrap_servers=bootstrap_servers,
                topic=settings.topic, queue_size=max(10_000, int(target_rate * 2)),
                producer_key_file=settings.producer_key_file,
            )
        )  # fmt: skip
        console.print(f"driving {model} {version} at {target_rate:g} decisions/s for {seconds:g} s")
        result = run_load_test(
            agent, engine, model=model, version=version, rate_per_s=target_rate,
            duration_s=seconds, peak_per_s=peak,
        )  # fmt: skip
        document = result.document()
        recorded = publish(agent, [("load_tested", result.payload(), model)])
    if as_json:
        console.print_json(json.dumps(document | {"recorded": recorded}))
    else:
        table = Table(title=f"load test of {model} {version} ({result.synthetic_version})")
        table.add_column("figure")
        table.add_column("value")
        for name, value in document.items():
            table.add_row(name, str(value))
        console.print(table)
        console.print(f"{'passed' if result.passed else 'FAILED'} ({recorded})")
    raise typer.Exit(0 if result.passed else EXIT_FAILED)


def drill(
    model: ModelOption,
    version: Annotated[
        str | None, typer.Option(help="Model version; default: the latest with decisions")
    ] = None,
    timeout: Annotated[str, typer.Option(help="How long to wait for a receiver")] = "10m",
    database_url: DatabaseOption = None,
    kafka_bootstrap_servers: KafkaOption = None,
) -> None:
    """Inject a synthetic incident into the live pipeline; pass when its alert arrives.

    The incident is labelled as a drill; pass or fail is recorded with the time the alert
    took to reach the model's receivers."""
    settings = load_settings(
        database_url=database_url, kafka_bootstrap_servers=kafka_bootstrap_servers
    )
    configure_logging("warning")
    bootstrap_servers = kafka_servers(settings)
    try:
        seconds = parse_duration(timeout).total_seconds()
    except ValueError as error:
        fail(f"--timeout: {error}")
    engine = open_store(settings)
    if version is None:
        with Session(engine) as session:
            version = latest_version(session, model)
        if version is None:
            fail(f"no decisions of {model} stored yet; give --version")
    with Driftline(
        service=DRILL_SERVICE, kafka_bootstrap_servers=bootstrap_servers,
        topic=settings.topic, producer_key_file=require_producer_key(settings),
    ) as agent:  # fmt: skip
        result = run_drill(agent, engine, model=model, version=version, timeout_s=seconds)
        recorded = publish(agent, [("drill_completed", result.payload(), model)])
    style = "green" if result.passed else "red"
    outcome = "passed" if result.passed else "FAILED"
    console.print(f"[{style}]drill {outcome}[/]: {result.reason} ({recorded})")
    raise typer.Exit(0 if result.passed else EXIT_FAILED)


def _show(evaluation: Evaluation, recorded: str) -> None:
    table = Table(
        title=f"{evaluation.model} {evaluation.version}: "
        f"{evaluation.window_start:%Y-%m-%d %H:%M} to {evaluation.window_end:%Y-%m-%d %H:%M} UTC"
    )
    for column in ("area", "criterion", "threshold", "measured", "sample", "result"):
        table.add_column(column)
    for c in evaluation.criteria:
        sample = "" if c.sample is None else f"{c.sample:,}"
        result = f"[{STYLES[c.status]}]{c.status}[/]"
        table.add_row(c.area, c.name, c.threshold, c.measured or "—", sample, result)
    console.print(table)
    style = {"go": "green", "no-go": "red"}.get(evaluation.verdict, "yellow")
    console.print(f"verdict: [bold {style}]{evaluation.verdict}[/] ({recorded})")

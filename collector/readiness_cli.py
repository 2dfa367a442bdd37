"""``driftline readiness``: the go-live gate from the command line, for a person or a deployment
pipeline. It prints every criterion with its threshold, figure and sample, records the
evaluation as a ``readiness_evaluated`` event, and exits 0 only on "go" (1 on "no-go", 3 when
data is too thin to decide)."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlmodel import Session

from agent import Driftline
from collector import integrity
from collector.alert_config import AlertConfigError, load_alerting, parse_duration
from collector.checkpoints import SigningKeyError
from collector.cli_common import (
    DatabaseOption,
    ModelOption,
    VersionOption,
    console,
    fail,
    load_settings,
    open_store,
)
from collector.integrity import KeyRing
from collector.logs import configure_logging
from collector.readiness import Evaluation, evaluate
from collector.readiness_config import ReadinessConfigError, load_thresholds

READINESS_SERVICE = "driftline-readiness"
EXIT_CODES = {"go": 0, "no-go": 1, "not enough data": 3}
STYLES = {"pass": "green", "fail": "red", "not enough data": "yellow"}


def readiness(
    model: ModelOption,
    version: VersionOption,
    window: Annotated[
        str | None, typer.Option(help="e.g. 7d, 24h; default: the threshold's window")
    ] = None,
    thresholds: Annotated[
        Path | None, typer.Option(help="The thresholds file [env DRIFTLINE_READINESS_CONFIG]")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the evaluation as JSON.")] = False,
    asked_by: Annotated[str | None, typer.Option(help="Who asks; default: the user.")] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Evaluate a model version against its deployment threshold: go, no-go, or not enough data."""
    settings = load_settings(database_url=database_url)
    configure_logging(settings.log_level)  # on stderr: stdout is the table or the JSON
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
    try:
        keys = KeyRing.from_settings(settings)
    except SigningKeyError as error:
        fail(f"{error}: the ledger criterion needs the checkpoint keys")
    span = None
    if window is not None:
        try:
            span = parse_duration(window)
        except ValueError as error:
            fail(f"--window: {error}")
    engine = open_store(settings)
    with Session(engine) as session:

        def ledger_intact() -> bool:
            return integrity.verify(session, keys.trusted).intact

        evaluation = evaluate(
            session, threshold, model=model, version=version, now=datetime.now(UTC),
            window=span, alerting=alerting, ledger_intact=ledger_intact,
        )  # fmt: skip
    recorded = _record(evaluation, asked_by or getpass.getuser(), settings.kafka_bootstrap_servers)
    if as_json:
        console.print_json(json.dumps(evaluation.document() | {"recorded": recorded}))
    else:
        _show(evaluation, recorded)
    raise typer.Exit(EXIT_CODES[evaluation.verdict])


def _record(evaluation: Evaluation, asked_by: str, bootstrap_servers: str | None) -> str:
    """Publish the evaluation; say whether Kafka took it or it waits in the spool."""
    if bootstrap_servers is None:
        return "not recorded: DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS is not set"
    document = evaluation.document()
    with Driftline(service=READINESS_SERVICE, kafka_bootstrap_servers=bootstrap_servers) as agent:
        agent.record_event(
            agent.complete_event(
                {
                    "type": "readiness_evaluated",
                    "model": {"name": evaluation.model, "version": evaluation.version},
                    "payload": {
                        "version": evaluation.version,
                        "asked_by": asked_by,
                        "window_start": document["window_start"],
                        "window_end": document["window_end"],
                        "verdict": evaluation.verdict,
                        "criteria": document["criteria"],
                    },
                }
            )
        )
        report = agent.flush(timeout_s=15)
    if report.delivered:
        return "recorded as a readiness_evaluated event"
    if report.spooled:
        return "kept in the spool until Kafka takes it"
    reasons = "; ".join(f.reason for f in report.failures) or "unknown"
    return f"not recorded: {reasons}"


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

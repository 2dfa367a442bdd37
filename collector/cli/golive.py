"""The go-live commands. ``driftline readiness`` is the gate, for a person or a deployment
pipeline: every criterion with its threshold, figure and sample, recorded as a
``readiness_evaluated`` event; it exits 0 only on "go" (1 on "no-go", 3 when data is too thin
to decide). ``driftline loadtest`` and ``driftline drill`` produce the evidence two criteria
ask for, recorded as ``load_tested`` and ``drill_completed`` events."""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.table import Table
from sqlmodel import Session, col, select

from driftline.agent import Driftline
from driftline.agent.provenance import ProducerKeyError
from driftline.collector.audit import integrity
from driftline.collector.cli.common import (
    EXIT_FAILED,
    NOT_RECORDED,
    DatabaseOption,
    EmbeddedKafkaOption,
    KafkaOption,
    ModelOption,
    PublicKeyOption,
    console,
    fail,
    kafka_servers,
    load_settings,
    open_store,
    publish,
    read_store,
    require_producer_key,
    verifying_keys,
    who_asks,
)
from driftline.collector.core.config_files import ConfigFileError
from driftline.collector.core.durations import parse_duration
from driftline.collector.core.logs import configure_logging
from driftline.collector.core.producer_keys import trusted_producers
from driftline.collector.core.settings import CollectorSettings
from driftline.collector.golive.agreements import (
    DEADLINE_ASKER,
    DEFAULT_CLOCK,
    STAGE,
    Agreement,
    AgreementError,
    agreement_for,
    agreement_payload,
    past_deadline,
    trail,
)
from driftline.collector.golive.configuration import GateConfiguration, gate_configuration
from driftline.collector.golive.drill import run_drill
from driftline.collector.golive.gate import Agreed, Evaluation, evaluate
from driftline.collector.golive.loadtest import run_load_test
from driftline.collector.golive.tables import readiness_table, verdict_line
from driftline.collector.golive.thresholds import (
    ReadinessConfigError,
    Threshold,
    load_thresholds,
)
from driftline.collector.runtime.stack import Stack
from driftline.collector.store.models import AgreedThresholds
from driftline.collector.store.queries import latest_version

READINESS_SERVICE = "driftline-readiness"
LOADTEST_SERVICE = "driftline-loadtest"
DRILL_SERVICE = "driftline-drill"
EXIT_CODES = {"go": 0, "no-go": 1, "not enough data": 3}


readiness_app = typer.Typer(rich_markup_mode="markdown")  # its help: the callback's
ThresholdsOption = Annotated[
    Path | None, typer.Option(help="The thresholds file; default: DRIFTLINE_READINESS_CONFIG.")
]


@readiness_app.callback(invoke_without_command=True)
def readiness(
    context: typer.Context,
    model: Annotated[str | None, typer.Option(help="Model name, as the agent records it.")] = None,
    version: Annotated[
        str | None, typer.Option(help="Model version, as the agent records it.")
    ] = None,
    window: Annotated[
        str | None, typer.Option(help="e.g. 7d, 24h; default: the threshold's window")
    ] = None,
    thresholds: ThresholdsOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the evaluation as JSON.")] = False,
    asked_by: Annotated[str | None, typer.Option(help="Who asks; default: the user.")] = None,
    no_record: Annotated[
        bool, typer.Option("--no-record", help="Do not publish it (then Kafka is not needed).")
    ] = False,
    public_key: PublicKeyOption = None,
    database_url: DatabaseOption = None,
    kafka_bootstrap_servers: KafkaOption = None,
) -> None:
    """Evaluate a model version against its agreed thresholds: go, no-go or not enough data.

    It judges by the thresholds as last agreed (`readiness agree`), shows a changed file as a
    proposed change, and says the day on the decision clock. It reads the store and public
    keys only, and publishes the evaluation as a readiness_evaluated event signed with the
    producer key, unless --no-record."""
    if context.invoked_subcommand is not None:
        return
    if model is None or version is None:
        fail("give --model and --version (or a command: `driftline readiness --help`)")
    settings = load_settings(
        database_url=database_url, kafka_bootstrap_servers=kafka_bootstrap_servers
    )
    configure_logging(settings.log_level)  # on stderr: stdout is the table or the JSON
    bootstrap_servers = None if no_record else kafka_servers(settings)
    proposed = _file_threshold(thresholds or settings.readiness_config, model, version)
    try:
        configuration = gate_configuration(settings)
    except ConfigFileError as error:
        fail(f"configuration has mistakes:\n{error}")
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
        agreement = _agreement(session, model, version)
        threshold = agreement.threshold if agreement else proposed
        if threshold is None:
            fail(f'no threshold agreed or in the thresholds file for {model} {version} (nor "*")')
        changed = agreement is not None and agreement.proposes_change(proposed)
        evaluation = _judge(
            session, threshold, model, version, Agreed(agreement, changed), configuration,
            lambda: integrity.verify(session, keys.trusted, producers=producers).intact, span,
        )  # fmt: skip
    if asked_by == DEADLINE_ASKER:
        fail(f"--asked-by {DEADLINE_ASKER} is the name the deadline's own verdicts carry")
    recorded = (
        _record(evaluation, who_asks(asked_by), settings, bootstrap_servers)
        if bootstrap_servers
        else "not recorded (--no-record)"
    )
    if as_json:
        console.print_json(json.dumps(evaluation.document() | {"recorded": recorded}))
    else:
        _show(evaluation, recorded)
        if changed and agreement is not None and proposed is not None:
            keys_changed = ", ".join(_changed(agreement.threshold, proposed)) or "its text"
            console.print(
                f"[yellow]the thresholds file proposes a change ({escape(keys_changed)}), "
                f"not agreed: judged by the agreement of {agreement.agreed_at:%Y-%m-%d}[/]"
            )
    raise typer.Exit(EXIT_CODES[evaluation.verdict])


def _judge(
    session: Session,
    threshold: Threshold,
    model: str,
    version: str,
    agreed: Agreed,
    configuration: GateConfiguration,
    ledger_intact: Callable[[], bool],
    window: timedelta | None = None,
) -> Evaluation:
    return evaluate(
        session, threshold, model=model, version=version, now=datetime.now(UTC),
        window=window, alerting=configuration.alerting, ledger_intact=ledger_intact,
        agreed=agreed, accountability=configuration.accountability,
        contracts=configuration.contract_of(model),
    )  # fmt: skip


@readiness_app.command("deadlines")
def readiness_deadlines(
    public_key: PublicKeyOption = None,
    database_url: DatabaseOption = None,
    kafka_bootstrap_servers: KafkaOption = None,
) -> None:
    """Record the gate's verdict for every version whose go/no-go deadline passed with no
    decision: what a scheduler runs (daily, say), so that the ledger holds the verdict at the
    deadline. Exit 0 when each is recorded, whatever its verdict."""
    settings = load_settings(
        database_url=database_url, kafka_bootstrap_servers=kafka_bootstrap_servers
    )
    configure_logging("warning")
    bootstrap_servers = kafka_servers(settings)  # what recording needs, known before judging
    require_producer_key(settings)
    try:
        configuration = gate_configuration(settings)
        producers = trusted_producers(settings)
    except ConfigFileError as error:
        fail(f"configuration has mistakes:\n{error}")
    except ProducerKeyError as error:
        fail(f"{error}: the ledger criterion needs the producer public keys")
    keys = verifying_keys(settings, public_key)
    with Session(read_store(settings)) as session:
        found = past_deadline(session, datetime.now(UTC))
        intact = functools.cache(
            lambda: integrity.verify(session, keys.trusted, producers=producers).intact
        )  # the whole ledger, walked once for every version judged
        evaluations = [
            _judge(
                session, agreement.threshold, model, version, Agreed(agreement), configuration,
                intact,
            )
            for model, version, agreement in found.due
        ]  # fmt: skip
    for evaluation in evaluations:
        console.print(
            f"{escape(evaluation.model)} {escape(evaluation.version)}: {verdict_line(evaluation)}"
        )
    recorded = ""
    if evaluations:
        with Driftline(
            service=READINESS_SERVICE, kafka_bootstrap_servers=bootstrap_servers,
            topic=settings.topic, producer_key_file=settings.producer_key_file,
        ) as agent:  # fmt: skip
            recorded = publish(
                agent,
                [("readiness_evaluated", e.payload(DEADLINE_ASKER), e.model) for e in evaluations],
            )
    if found.unreadable:
        fail("agreements the gate cannot judge by:\n" + "\n".join(found.unreadable))
    if recorded.startswith(NOT_RECORDED):
        fail(f"the verdicts at their deadline were {recorded}")
    if not evaluations:
        console.print("no deadline has passed without a decision")
        return
    console.print(f"{len(evaluations)} verdicts at their deadline {recorded}")


def _file_threshold(path: Path | None, model: str, version: str) -> Threshold | None:
    """The file's threshold for the version, if there is a file (its mistakes are fatal)."""
    if path is None:
        return None
    try:
        return load_thresholds(path).for_version(model, version)
    except ReadinessConfigError as error:
        fail(f"configuration has mistakes:\n{error}")


def _agreement(session: Session, model: str, version: str) -> Agreement | None:
    try:
        return agreement_for(session, model, version)
    except AgreementError as error:
        fail(str(error))


def _changed(agreed: Threshold, proposed: Threshold) -> list[str]:
    """The keys whose values differ, as ``technical.latency_p95_ms``."""

    def flat(document: Any, prefix: str = "") -> dict[str, Any]:
        if not isinstance(document, dict):
            return {prefix: document}
        found: dict[str, Any] = {}
        for key, value in document.items():
            found |= flat(value, f"{prefix}.{key}" if prefix else key)
        return found

    before, after = flat(agreed.model_dump(mode="json")), flat(proposed.model_dump(mode="json"))
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


@readiness_app.command("agree")
def readiness_agree(
    model: ModelOption,
    decision_maker: Annotated[
        str, typer.Option(help="The one person who owns the go/no-go of this stage.")
    ],
    version: Annotated[str, typer.Option(help='The version, or "*" for every version.')] = "*",
    deadline: Annotated[
        str | None,
        typer.Option(
            help="The go/no-go's date (YYYY-MM-DD) or time from now (90d); "
            "default: 90 days, or the deadline already agreed."
        ),
    ] = None,
    stage: Annotated[str, typer.Option(help="The stage it decides.")] = STAGE,
    thresholds: ThresholdsOption = None,
    database_url: DatabaseOption = None,
    kafka_bootstrap_servers: KafkaOption = None,
) -> None:
    """Record the file's thresholds for a version as agreed, by a named decision-maker, with the
    deadline of the go/no-go; the gate judges by them from now on.

    Agreeing again keeps the deadline unless --deadline moves it, and every agreement stays in
    the trail (`readiness trail`)."""
    settings = load_settings(
        database_url=database_url, kafka_bootstrap_servers=kafka_bootstrap_servers
    )
    configure_logging("warning")
    bootstrap_servers = kafka_servers(settings)
    path = thresholds or settings.readiness_config
    if path is None:
        fail("no thresholds file: give --thresholds or set DRIFTLINE_READINESS_CONFIG")
    threshold = _file_threshold(path, model, version)
    if threshold is None:
        fail(f"{path} has no threshold for {model} {version}")
    now = datetime.now(UTC)
    with Session(read_store(settings)) as session:
        earlier = _agreement(session, model, version)
        own = _versions_with_their_own(session, model) if version == "*" else []
    if deadline is not None:
        due = _deadline(deadline, now)
        if due <= now:
            fail(f"--deadline: {due:%Y-%m-%d %H:%M} UTC has passed")
    elif earlier is not None and earlier.scope == version:
        due = earlier.deadline
        if due <= now:
            fail(
                f"the deadline agreed before, {due:%Y-%m-%d %H:%M} UTC, has passed: give "
                "--deadline to set a new one"
            )
    else:
        due = now + DEFAULT_CLOCK
    try:
        payload = agreement_payload(
            threshold, version=version, decision_maker=decision_maker, deadline=due,
            source=str(path), stage=stage,
        )  # fmt: skip
    except ValidationError as error:
        problem = error.errors(include_url=False)[0]
        option = "--" + "-".join(str(part) for part in problem["loc"][:1]).replace("_", "-")
        fail(f"{option}: {problem['msg']}")
    with Driftline(
        service=READINESS_SERVICE, kafka_bootstrap_servers=bootstrap_servers,
        topic=settings.topic, producer_key_file=require_producer_key(settings),
    ) as agent:  # fmt: skip
        recorded = publish(agent, [("thresholds_agreed", payload, model)])
    if earlier is not None and earlier.scope == version and earlier.deadline != due:
        console.print(f"deadline moved from {earlier.deadline:%Y-%m-%d} to {due:%Y-%m-%d}")
    if earlier is not None and earlier.sha256 == payload.sha256:
        console.print("the same thresholds as agreed before: agreed again")
    if own:
        console.print(
            f"[yellow]{escape(', '.join(own))} keep the agreements of their own: these "
            f'"*" thresholds do not govern them (agree each again to change them)[/]'
        )
    console.print(
        f"{escape(model)} {escape(version)}: thresholds {payload.sha256[:12]} agreed by "
        f"{escape(decision_maker)}, go/no-go due {due:%Y-%m-%d} ({recorded})"
    )


def _versions_with_their_own(session: Session, model: str) -> list[str]:
    """The model's versions agreed one by one, which a "*" agreement does not govern."""
    versions = session.exec(
        select(col(AgreedThresholds.model_version))
        .where(AgreedThresholds.model_name == model, AgreedThresholds.model_version != "*")
        .distinct()
    ).all()
    return sorted(versions)


def _deadline(text: str, now: datetime) -> datetime:
    """A date is its whole day, UTC (the deadline is its last microsecond, so that it is shown
    as the date given); else a time from now."""
    if len(text) == 10 and text[4] == "-" and text[7] == "-":  # YYYY-MM-DD, or a mistake in one
        try:
            day = datetime.strptime(text, "%Y-%m-%d").date()
        except ValueError as error:
            fail(f"--deadline: {text!r} is not a date: {error}")
        return datetime.combine(day, time.max, tzinfo=UTC)
    try:
        return now + parse_duration(text)
    except (ValueError, OverflowError) as error:
        fail(f"--deadline: a date (YYYY-MM-DD) or a time from now (90d): {error}")


@readiness_app.command("trail")
def readiness_trail(
    model: ModelOption,
    version: Annotated[str, typer.Option(help='The version, or "*".')] = "*",
    database_url: DatabaseOption = None,
) -> None:
    """Every agreement of a version's thresholds: when, by whom, what (its SHA-256) and the
    deadline each set."""
    settings = load_settings(database_url=database_url)
    configure_logging("warning")
    with Session(read_store(settings)) as session:
        rows = trail(session, model, version)
    if not rows:
        fail(f"no agreement recorded for {model} {version}", EXIT_FAILED)
    table = Table(title=escape(f"agreements of {model} {version}'s thresholds"))
    for column in ("agreed", "version", "decision-maker", "stage", "thresholds", "deadline"):
        table.add_column(column, overflow="fold")  # names are never cut
    for row in rows:
        table.add_row(
            f"{row.occurred_at:%Y-%m-%d %H:%M}", escape(row.model_version),
            escape(row.decision_maker), escape(row.stage), row.sha256[:12],
            f"{row.deadline:%Y-%m-%d}",
        )  # fmt: skip
    console.print(table)


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
    console.print(readiness_table(evaluation))
    console.print(f"{verdict_line(evaluation)} ({recorded})")

"""The ``driftline`` command line."""

from __future__ import annotations

import contextlib
import getpass
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from driftline.agent import Driftline
from driftline.agent.contract import ModelRef
from driftline.agent.provenance import ProducerKeyError
from driftline.collector.alerting.config import (
    AlertConfigError,
    AlertingConfig,
    Route,
    load_alerting,
)
from driftline.collector.alerting.silences import (
    create_silence,
    expire_silence,
    list_silences,
    state_of,
)
from driftline.collector.audit.checkpoints import SigningKeyError
from driftline.collector.cli.agent import agent_command
from driftline.collector.cli.audit import audit_app, replay, token_app
from driftline.collector.cli.common import (
    AUDIT,
    CONFIGURE,
    EXIT_FAILED,
    EXIT_UNABLE,
    GO_LIVE,
    RUN,
    SETTINGS_NOTE,
    DatabaseOption,
    EmbeddedKafkaOption,
    KafkaOption,
    ModelOption,
    PortOption,
    VersionOption,
    console,
    errors,
    fail,
    freeze_startup_heap,
    id_table,
    kafka_servers,
    load_settings,
    open_store,
    read_store,
    require_producer_key,
    signing_keys,
    typer_app,
    verifying_keys,
)
from driftline.collector.cli.evaluation import eval_app
from driftline.collector.cli.golive import drill, loadtest, readiness_app
from driftline.collector.consume.kafka import KafkaUnavailable
from driftline.collector.core.database_url import redacted_url
from driftline.collector.core.durations import parse_duration
from driftline.collector.core.health import Heartbeat, serve_health
from driftline.collector.core.logs import configure_logging
from driftline.collector.core.settings import CollectorSettings
from driftline.collector.drift.baselines import (
    FittedBaseline,
    active_baseline,
    all_baselines,
    baseline_payload,
    fit_first_decisions,
    fit_reference,
)
from driftline.collector.drift.reference import ReferenceFileError
from driftline.collector.golive.accountability import SETTING, AccountabilityConfigError
from driftline.collector.golive.contracts import ContractsFileError
from driftline.collector.golive.thresholds import ReadinessConfigError
from driftline.collector.runtime import services
from driftline.collector.runtime.chat_simulation import PRICES as DEMO_PRICES
from driftline.collector.runtime.demo import DemoFailed, run_demo
from driftline.collector.runtime.demo_golive import demo_configuration
from driftline.collector.runtime.simulation import REVIEW_BELOW
from driftline.collector.runtime.stack import Stack
from driftline.collector.store.database import migrate
from driftline.collector.store.prices import PriceFileError
from driftline.detectors.baseline import record_features

app = typer_app(
    "Driftline: records AI decisions, keeps them in a tamper-evident ledger, serves audits.",
    epilog=SETTINGS_NOTE,
)
silence_app = typer_app("Silences: mute alerts that match, for a while, saying who and why.")
baseline_app = typer_app("Baselines: what each model version's decisions are compared with.")


def up(
    database_url: DatabaseOption = None,
    kafka_bootstrap_servers: EmbeddedKafkaOption = None,
    api_port: PortOption = None,
) -> None:
    """Run everything in the foreground: broker (embedded unless given), collector, API.

    The detector worker, the housekeeper and, with DRIFTLINE_ALERTING_CONFIG, the alert
    router run in the same process."""
    settings = load_settings(
        database_url=database_url,
        kafka_bootstrap_servers=kafka_bootstrap_servers,
        api_port=api_port,
    )
    configure_logging(settings.log_level)
    with _running(settings) as stack:
        _describe(stack)
        freeze_startup_heap()
        console.print("Ctrl-C stops everything.")
        try:
            stack.wait()
        except KeyboardInterrupt:
            console.print("stopping")


def demo(
    decisions: Annotated[int, typer.Option(min=1, help="How many decisions to simulate.")] = 3000,
    shifted: Annotated[
        int, typer.Option(min=0, help="Then this many from a shifted population, at most.")
    ] = 2000,
    chats: Annotated[
        int, typer.Option(min=0, help="Then a chat service's answers (and as many shifted).")
    ] = 1000,
    database_url: DatabaseOption = None,
    api_port: PortOption = None,
    keep_running: Annotated[bool, typer.Option(help="Keep serving after the demo.")] = False,
) -> None:
    """Drive simulated AI services through an embedded stack; show a trail, drift, tokens,
    cost and text drift."""
    settings = load_settings(
        database_url=database_url,
        api_port=api_port,
        embedded_broker_port=0,  # the demo's own agent is told where; keep 9092 free
        log_level="warning",
        detect_interval_s=1.0,
        detect_window_decisions=500,
        detect_baseline_first=min(1_000, decisions),
        detect_review_threshold=REVIEW_BELOW,
        prices=DEMO_PRICES,
        **demo_configuration(),
    )
    if 0 < chats < settings.detect_baseline_first:  # the chat service's baseline is of as many
        fail(f"--chats must be 0 or at least {settings.detect_baseline_first}", EXIT_UNABLE)
    configure_logging(settings.log_level)
    console.rule("Driftline demo")
    started = time.monotonic()
    with _running(settings) as stack:
        _describe(stack)
        try:
            run_demo(stack, console, decisions=decisions, shifted=shifted, chats=chats)
        except DemoFailed as error:
            fail(str(error))
        console.print(f"API docs: {stack.api_url}/docs")
        console.print(f"demo took {time.monotonic() - started:.1f}s")
        if keep_running:
            console.print("serving until Ctrl-C")
            with contextlib.suppress(KeyboardInterrupt):
                stack.wait()
        else:
            store = redacted_url(settings.database_url)
            console.print(f"stopping; [bold]driftline up[/] serves {store} again")


def api(database_url: DatabaseOption = None, api_port: PortOption = None) -> None:
    """Run only the API and web page, as each API replica does.

    It verifies with the public keys alone; with DRIFTLINE_API_SIGNS on it also reads the
    signing key, for the routes that sign (checkpoints, exports, erasure)."""
    settings = load_settings(database_url=database_url, api_port=api_port)
    configure_logging(settings.log_level)
    keys = signing_keys(settings) if settings.api_signs else verifying_keys(settings, None)
    engine = open_store(settings)
    try:
        app_ = services.api(engine, settings, keys, _alerting(settings))
    except ProducerKeyError as error:
        fail(f"{error} (DRIFTLINE_TRUSTED_PRODUCER_KEYS, DRIFTLINE_PRODUCER_KEY_FILE)")
    except PriceFileError as error:
        fail(f"the price table (DRIFTLINE_PRICES) has mistakes:\n{error}", EXIT_UNABLE)
    except AccountabilityConfigError as error:
        fail(f"the accountability map ({SETTING}) has mistakes:\n{error}", EXIT_UNABLE)
    except ContractsFileError as error:
        fail(f"the contracts (DRIFTLINE_INPUT_CONTRACTS) have mistakes:\n{error}", EXIT_UNABLE)
    except ReadinessConfigError as error:
        fail(f"the thresholds (DRIFTLINE_READINESS_CONFIG) have mistakes:\n{error}", EXIT_UNABLE)
    server = services.api_server(app_, settings)
    freeze_startup_heap()
    server.run()


def housekeep(database_url: DatabaseOption = None) -> None:
    """Run only the housekeeper: sign checkpoints, apply retention (holds the signing key)."""
    settings = load_settings(database_url=database_url)
    configure_logging(settings.log_level)
    signing = signing_keys(settings).signer()
    engine = open_store(settings)
    housekeeper = services.housekeeper(engine, settings, signing)
    stale_after_s = max(60.0, 3 * settings.checkpoint_interval_s)
    with _probes(settings, stale_after_s) as heartbeat:
        freeze_startup_heap()
        with contextlib.suppress(KeyboardInterrupt):
            housekeeper.run(threading.Event(), settings.checkpoint_interval_s, heartbeat)


def collect(
    database_url: DatabaseOption = None, kafka_bootstrap_servers: KafkaOption = None
) -> None:
    """Run only the collector: consume the Kafka topic into the ledger and read models."""
    settings = load_settings(
        database_url=database_url, kafka_bootstrap_servers=kafka_bootstrap_servers
    )
    configure_logging(settings.log_level)
    bootstrap_servers = kafka_servers(settings)
    engine = open_store(settings)
    try:
        collector = services.collector(engine, settings, bootstrap_servers)
    except ProducerKeyError as error:
        fail(f"{error} (DRIFTLINE_TRUSTED_PRODUCER_KEYS, DRIFTLINE_PRODUCER_KEY_FILE)")
    freeze_startup_heap()
    stop = threading.Event()
    with _probes(settings, stale_after_s=60) as heartbeat:
        try:
            collector.run(stop, heartbeat)
        except KeyboardInterrupt:
            stop.set()
        except KafkaUnavailable as error:
            fail(f"Kafka at {bootstrap_servers}: {error}")


def detect(
    database_url: DatabaseOption = None, kafka_bootstrap_servers: KafkaOption = None
) -> None:
    """Run only the detector worker: check recent decisions against baselines."""
    settings = load_settings(
        database_url=database_url, kafka_bootstrap_servers=kafka_bootstrap_servers
    )
    configure_logging(settings.log_level)
    bootstrap_servers = kafka_servers(settings)
    require_producer_key(settings)  # its verdicts are signed: no key, no start
    engine = open_store(settings)
    stale_after_s = max(60.0, 3 * settings.detect_interval_s)
    with (
        services.detector_agent(settings, bootstrap_servers) as agent,
        _probes(settings, stale_after_s) as heartbeat,
    ):
        freeze_startup_heap()
        with contextlib.suppress(KeyboardInterrupt):
            services.detector(engine, settings, agent).run(threading.Event(), heartbeat)


@baseline_app.command("fit")
def baseline_fit(
    model: ModelOption,
    version: VersionOption,
    reference: Annotated[
        Path | None, typer.Option(help="A CSV, JSON Lines or Parquet file of inputs.")
    ] = None,
    first: Annotated[
        int | None,
        typer.Option(min=2, metavar="N", help="Fit from the version's first N decisions."),
    ] = None,
    set_by: Annotated[
        str | None, typer.Option(help="Who chose it, for the audit trail [default: you].")
    ] = None,
    reservoir: Annotated[int, typer.Option(min=100, metavar="ROWS", help="Rows kept.")] = 10_000,
    review_threshold: Annotated[
        float | None,
        typer.Option(
            min=0, max=1, metavar="P", help="Confidence under which a human reviews a decision."
        ),
    ] = None,
    database_url: DatabaseOption = None,
    kafka_bootstrap_servers: KafkaOption = None,
) -> None:
    """Fit a baseline and set it for a model version with a baseline_set event."""
    if (reference is None) == (first is None):
        fail("give exactly one of --reference FILE and --first N")
    settings = load_settings(
        database_url=database_url, kafka_bootstrap_servers=kafka_bootstrap_servers
    )
    bootstrap_servers = kafka_servers(settings)  # before fitting: the event must go somewhere
    try:
        if reference is not None:
            fitted = fit_reference(
                reference, reservoir=reservoir, review_threshold=review_threshold
            )
        else:
            assert first is not None
            with Session(read_store(settings)) as session:
                found = fit_first_decisions(
                    session,
                    model,
                    version,
                    first,
                    reservoir=reservoir,
                    review_threshold=review_threshold,
                    refusals=settings.detect_refusal_phrases,
                )
            if found is None:
                fail(f"{model} {version} has fewer than {first} decisions stored")
            fitted = found
    except (ReferenceFileError, ValueError, SQLAlchemyError) as error:
        fail(str(error))
    _publish_baseline(
        settings, bootstrap_servers, model, version, fitted, set_by or getpass.getuser()
    )
    _show_features(fitted.baseline.features())
    if fitted.reservoir_rows < min(reservoir, fitted.baseline.size):
        console.print(
            f"[yellow]kept {fitted.reservoir_rows} rows, not {reservoir}, so that the "
            "baseline fits in one event"
        )


@baseline_app.command("show")
def baseline_show(
    model: ModelOption, version: VersionOption, database_url: DatabaseOption = None
) -> None:
    """Show the baseline in force for a model version."""
    settings = load_settings(database_url=database_url)
    with Session(read_store(settings)) as session:
        record = active_baseline(session, model, version)
    if record is None:
        fail(f"no baseline set for {model} {version}")
    console.print(f"baseline {record.baseline_id}")
    console.print(
        f"set {record.occurred_at:%Y-%m-%d %H:%M:%S}Z by {record.set_by}, from {record.source}, "
        f"summarising {record.size} decisions"
    )
    _show_features(record_features(record.record))


@baseline_app.command("list")
def baseline_list(database_url: DatabaseOption = None) -> None:
    """Every baseline ever set, oldest first per version; the last of each is in force."""
    settings = load_settings(database_url=database_url)
    with Session(read_store(settings)) as session:
        records = all_baselines(session)
    table = Table("model", "version", "baseline", "set at", "set by", "source", "decisions")
    for record in records:
        table.add_row(
            record.model_name,
            record.model_version,
            record.baseline_id[:12],
            f"{record.occurred_at:%Y-%m-%d %H:%M:%S}Z",
            record.set_by,
            record.source,
            str(record.size),
        )
    console.print(table)


def route(database_url: DatabaseOption = None, kafka_bootstrap_servers: KafkaOption = None) -> None:
    """Run only the alert router: drift verdicts to grouped notifications.

    It needs DRIFTLINE_ALERTING_CONFIG, the file of routes, receivers and owners."""
    settings = load_settings(
        database_url=database_url, kafka_bootstrap_servers=kafka_bootstrap_servers
    )
    configure_logging(settings.log_level)
    bootstrap_servers = kafka_servers(settings)
    config = _alerting(settings)
    if config is None:
        fail("DRIFTLINE_ALERTING_CONFIG is not set; it names the alerting file", EXIT_UNABLE)
    require_producer_key(settings)  # its notifications are signed: no key, no start
    engine = open_store(settings)
    with (
        services.router_agent(settings, bootstrap_servers) as agent,
        services.receiver_client() as client,
        _probes(settings, stale_after_s=60) as heartbeat,
    ):
        api_url = f"http://{settings.api_host}:{settings.api_port}"
        try:
            router = services.router(
                engine, settings, config, agent=agent, client=client, api_url=api_url
            )
        except ContractsFileError as error:
            fail(f"the contracts file (DRIFTLINE_INPUT_CONTRACTS) has mistakes:\n{error}")
        freeze_startup_heap()
        with contextlib.suppress(KeyboardInterrupt):
            router.run(threading.Event(), settings, bootstrap_servers, heartbeat)


@silence_app.command("add")
def silence_add(
    matcher: Annotated[
        list[str], typer.Option("--matcher", "-m", help='label="value" (or !=, =~, !~); repeat')
    ],
    comment: Annotated[str, typer.Option(help="Why, for whoever is paged next.")],
    duration: Annotated[str, typer.Option(help="How long: 30m, 2h, 1d.")] = "2h",
    author: Annotated[str | None, typer.Option(help="Who [default: you].")] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Mute the alerts that match every matcher, from now for the duration."""
    settings = load_settings(database_url=database_url)
    now = datetime.now(UTC)
    try:
        with Session(open_store(settings)) as session:
            silence = create_silence(
                session,
                matchers=matcher,
                starts_at=now,
                ends_at=now + parse_duration(duration),
                created_by=author or getpass.getuser(),
                comment=comment,
                now=now,
            )
            session.commit()
            console.print(
                f"[green]✓[/] silence {silence.id} until {silence.ends_at:%Y-%m-%d %H:%M:%S}Z: "
                + ", ".join(silence.matchers)
            )
    except ValueError as error:
        fail(str(error))


@silence_app.command("list")
def silence_list(database_url: DatabaseOption = None) -> None:
    """Every silence, the latest ending first, with its state."""
    settings = load_settings(database_url=database_url)
    now = datetime.now(UTC)
    table = id_table("state", "matchers", "ends", "by", "comment")
    with Session(read_store(settings)) as session:
        for silence in list_silences(session):
            table.add_row(
                str(silence.id),
                state_of(silence, now),
                ", ".join(silence.matchers),
                f"{silence.ends_at:%Y-%m-%d %H:%M:%S}Z",
                silence.created_by,
                silence.comment,
            )
    console.print(table)


@silence_app.command("expire")
def silence_expire(
    silence_id: Annotated[uuid.UUID, typer.Argument(help="The silence's id.")],
    database_url: DatabaseOption = None,
) -> None:
    """End a silence now; it stays listed as expired."""
    settings = load_settings(database_url=database_url)
    with Session(open_store(settings)) as session:
        silence = expire_silence(session, silence_id, datetime.now(UTC))
        if silence is None:
            fail(f"no silence {silence_id}")
        session.commit()
    console.print(f"[green]✓[/] silence {silence_id} expired")


def check_config(
    path: Annotated[Path, typer.Argument(help="The alerting file (routes, receivers, owners).")],
) -> None:
    """Validate an alerting file; name the file, line and key of every mistake."""
    if not path.is_file():  # nothing to check: exit 2, not a check that failed
        fail(f"{path}: no such file")
    try:
        config = load_alerting(path)
    except AlertConfigError as error:
        for problem in error.problems:
            errors.print(f"[red]✗[/] {problem}", highlight=False)
        raise typer.Exit(EXIT_FAILED) from None
    routes = _count_routes(config.route)
    console.print(
        f"[green]✓[/] {path}: {routes} routes, {len(config.receivers)} receivers, "
        f"{len(config.inhibit_rules)} inhibit rules, {len(config.owners)} owners"
    )


def _count_routes(route: Route) -> int:
    return 1 + sum(_count_routes(child) for child in route.routes)


def migrate_command(database_url: DatabaseOption = None) -> None:
    """Create or upgrade the database schema."""
    settings = load_settings(database_url=database_url)
    migrate(open_store(settings.model_copy(update={"migrate_on_start": False})))
    console.print(f"schema up to date at {redacted_url(settings.database_url)}")


@contextlib.contextmanager
def _running(settings: CollectorSettings) -> Iterator[Stack]:
    """The started stack; a start that fails says why and exits instead of a traceback."""
    try:
        stack = Stack(settings).start()
    except (
        SQLAlchemyError, KafkaUnavailable, RuntimeError, AlertConfigError, SigningKeyError,
        ProducerKeyError, PriceFileError, AccountabilityConfigError, ContractsFileError,
        ReadinessConfigError,
    ) as error:  # fmt: skip
        fail(f"could not start: {error}")
    try:
        yield stack
    finally:
        stack.stop()


def _alerting(settings: CollectorSettings) -> AlertingConfig | None:
    """The alerting file, when one is configured; a mistake in it exits naming them."""
    try:
        return services.alerting(settings)
    except AlertConfigError as error:
        fail(f"the alerting file has mistakes (driftline check-config shows them):\n{error}")


@contextlib.contextmanager
def _probes(settings: CollectorSettings, stale_after_s: float) -> Iterator[Heartbeat | None]:
    """The worker's heartbeat, served at DRIFTLINE_HEALTH_PORT when it is set."""
    if settings.health_port is None:
        yield None
        return
    heartbeat = Heartbeat(stale_after_s)
    try:
        server = serve_health(heartbeat, settings.health_host, settings.health_port)
    except OSError as error:
        fail(f"cannot serve probes on {settings.health_host}:{settings.health_port}: {error}")
    try:
        yield heartbeat
    finally:
        server.shutdown()


def _publish_baseline(
    settings: CollectorSettings,
    bootstrap_servers: str,
    model: str,
    version: str,
    fitted: FittedBaseline,
    set_by: str,
) -> None:
    with Driftline(
        service="driftline-cli",
        kafka_bootstrap_servers=bootstrap_servers,
        topic=settings.topic,
        producer_key_file=require_producer_key(settings),
    ) as agent:
        agent.record_component(
            "baseline_set",
            baseline_payload(fitted, version=version, set_by=set_by),
            model=ModelRef(name=model, version=version),
        )
        report = agent.flush(timeout_s=30)
    if report.delivered != 1:
        fail(f"baseline_set was not delivered to Kafka: {report}")
    console.print(
        f"[green]✓[/] baseline {fitted.baseline_id} set for {model} {version} "
        f"({fitted.source}, {fitted.baseline.size} decisions)"
    )


def _show_features(features: dict[str, str]) -> None:
    table = Table("feature", "kind")
    for name, kind in features.items():
        table.add_row(name, kind)
    console.print(table)


def _describe(stack: Stack) -> None:
    where = (
        f"embedded broker (Tansu, memory storage) on {stack.bootstrap_servers}"
        if stack.broker
        else f"Kafka at {stack.bootstrap_servers}"
    )
    console.print(f"[green]✓[/] {where}, topic {stack.settings.topic}")
    console.print(f"[green]✓[/] store {redacted_url(stack.settings.database_url)} (migrated)")
    console.print(f"[green]✓[/] collector consuming; API on {stack.api_url} (docs: /docs)")
    console.print(
        f"[green]✓[/] ledger checkpoints signed every {stack.settings.checkpoint_interval_s:g}s "
        f"with {stack.settings.signing_key_file}; verifiers need only "
        f"{stack.settings.checkpoint_public_key_file}"
    )
    console.print(
        f"[green]✓[/] Driftline's own events signed with {stack.settings.producer_key_file}; "
        "the collector keeps no unsigned one"
    )
    if stack.bootstrap_token:
        console.print(
            "[yellow]![/] the store had no admin token; this one is shown once "
            f"(make more with `driftline token create`): [bold]{stack.bootstrap_token}"
        )


# The command list as `driftline --help` shows it: panel by panel, in this order.
app.command("up", rich_help_panel=RUN)(up)
app.command("demo", rich_help_panel=RUN)(demo)
app.command("collect", rich_help_panel=RUN)(collect)
app.command("detect", rich_help_panel=RUN)(detect)
app.command("route", rich_help_panel=RUN)(route)
app.command("housekeep", rich_help_panel=RUN)(housekeep)
app.command("api", rich_help_panel=RUN)(api)
app.command("agent", rich_help_panel=RUN)(agent_command)
app.add_typer(audit_app, name="audit", rich_help_panel=AUDIT)
app.command("replay", rich_help_panel=AUDIT)(replay)
app.add_typer(readiness_app, name="readiness", rich_help_panel=GO_LIVE)
app.command("loadtest", rich_help_panel=GO_LIVE)(loadtest)
app.command("drill", rich_help_panel=GO_LIVE)(drill)
app.add_typer(eval_app, name="eval", rich_help_panel=GO_LIVE)
app.add_typer(baseline_app, name="baseline", rich_help_panel=CONFIGURE)
app.add_typer(silence_app, name="silence", rich_help_panel=CONFIGURE)
app.add_typer(token_app, name="token", rich_help_panel=CONFIGURE)
app.command("check-config", rich_help_panel=CONFIGURE)(check_config)
app.command("migrate", rich_help_panel=CONFIGURE)(migrate_command)

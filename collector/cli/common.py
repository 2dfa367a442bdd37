"""What every ``driftline`` subcommand shares: consoles, options, settings, failing clearly."""

from __future__ import annotations

import gc
import getpass
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import structlog
import typer
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from pydantic import TypeAdapter, ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Column, Table
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from driftline.agent.contract import ComponentEventType, ModelRef, Name
from driftline.agent.provenance import ProducerKeyError
from driftline.collector.audit.checkpoints import SigningKeyError
from driftline.collector.audit.integrity import KeyRing
from driftline.collector.core.database_url import redacted_url
from driftline.collector.core.producer_keys import producer_key
from driftline.collector.core.settings import CollectorSettings
from driftline.collector.store.database import MIGRATIONS, make_engine, migrate

if TYPE_CHECKING:  # the client loads librdkafka: only the commands that publish need it
    from driftline.agent import Driftline

log = structlog.get_logger(__name__)

console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)

# The panels of `driftline --help`.
RUN = "Run"
AUDIT = "Audit"
GO_LIVE = "Go-live"
CONFIGURE = "Configure"


def typer_app(help: str, epilog: str | None = None) -> typer.Typer:
    """A command group as every one of Driftline's is made: help when run bare, its text as
    Markdown (a docstring's line breaks are not kept; rich markup would eat "[env ...]")."""
    return typer.Typer(help=help, epilog=epilog, no_args_is_help=True, rich_markup_mode="markdown")


# Options named like a setting override its DRIFTLINE_ variable (--database-url:
# DRIFTLINE_DATABASE_URL); the help says so once (SETTINGS_NOTE), not in every option, whose
# column is too narrow at 80 columns for the variables' names.
SETTINGS_NOTE = (
    "An option named like a setting overrides its DRIFTLINE_ variable: --database-url "
    "overrides DRIFTLINE_DATABASE_URL, --kafka-bootstrap-servers "
    "DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS, --api-port DRIFTLINE_API_PORT."
)
DatabaseOption = Annotated[
    str | None, typer.Option(help="The store: sqlite:///path or postgresql://...")
]
KafkaOption = Annotated[str | None, typer.Option(help="The Kafka cluster: host:port,...")]
EmbeddedKafkaOption = Annotated[
    str | None, typer.Option(help="The Kafka cluster: host:port,...; none: an embedded one.")
]
PortOption = Annotated[int | None, typer.Option(help="The API's port.")]
PublicKeyOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--public-key",
        metavar="PEM",
        help="A public key to trust (repeatable); default: the installation's.",
    ),
]
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
        raise typer.Exit(EXIT_UNABLE) from None


# Exit codes, one table for every command (the README's): 0 done, or the check passed;
# EXIT_FAILED the check ran and failed (a broken chain, a no-go, a proof that does not hold);
# EXIT_UNABLE it could not be done or checked (a setting, option or file that is missing or
# bad, a database or broker that is not there). `readiness` adds 3: not enough data.
EXIT_FAILED, EXIT_UNABLE = 1, 2


def id_table(*headers: str) -> Table:
    """A listing whose first column is a UUID that another command takes (`silence expire`,
    `token revoke`, `audit release`): never cut, however narrow the terminal; the other
    columns wrap instead."""
    return Table(Column("id", no_wrap=True, min_width=36), *headers)


def fail(message: str, code: int = EXIT_UNABLE) -> NoReturn:
    """Exit naming the mistake. The message is text, never markup: a model named "[/x]", or an
    option's value, is shown as given (and does not crash the console)."""
    errors.print(f"[red]✗ {escape(message)}", highlight=False)
    raise typer.Exit(code)


def kafka_servers(settings: CollectorSettings) -> str:
    """The Kafka cluster, for a command that needs one; without it, exit 2 naming the setting
    (the one policy: no command guesses at a broker that may not be there)."""
    if settings.kafka_bootstrap_servers is None:
        fail(
            "DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS (--kafka-bootstrap-servers) is not set; this "
            "command needs a Kafka cluster (`driftline up` runs an embedded one)",
            EXIT_UNABLE,
        )
    return settings.kafka_bootstrap_servers


def signing_keys(settings: CollectorSettings) -> KeyRing:
    """The key ring of a command that signs (checkpoints, erasure marks, export manifests)."""
    try:
        return KeyRing.for_signing(settings)
    except SigningKeyError as error:
        fail(f"{error} (DRIFTLINE_SIGNING_KEY_FILE; `driftline audit keygen` makes one)")


def verifying_keys(settings: CollectorSettings, public_keys: list[Path] | None) -> KeyRing:
    """Public keys only, for a command that checks signatures: the private key is never read."""
    try:
        return KeyRing.for_verifying(settings, public_keys or ())
    except SigningKeyError as error:
        fail(str(error))


def require_producer_key(settings: CollectorSettings) -> Path:
    """DRIFTLINE_PRODUCER_KEY_FILE, for a command whose events must be signed: it exits at
    once, naming the file, when the key cannot be used, rather than have every event refused."""
    try:
        producer_key(settings)
    except ProducerKeyError as error:
        fail(str(error))
    return settings.producer_key_file


def who_asks(given: str | None) -> str:
    """Who a recorded evaluation names: as given, else the user; a name no event can carry, or
    no user (a container without a passwd entry), exits 2 asking for it."""
    try:
        name = given or getpass.getuser()
    except (KeyError, OSError):
        fail("no user name to record: give --asked-by (or --registered-by)")
    try:
        return NAME.validate_python(name)
    except ValidationError as error:
        fail(f"{name!r} cannot name who asks: {error.errors(include_url=False)[0]['msg']}")


NAME: TypeAdapter[str] = TypeAdapter(Name)


def publish(agent: Driftline, events: Sequence[tuple[ComponentEventType, Any, str]]) -> str:
    """Record events of a component, each a (type, payload, model name), signed, then wait for
    Kafka; say whether Kafka took them or they wait in the spool, or why they were not
    recorded (the text then starts "not recorded": ``NOT_RECORDED``)."""
    kinds = sorted({kind for kind, _, _ in events})
    for kind, payload, model in events:
        # A payload about one version names it; any other (a set's registration) is about
        # the model as a whole: "*".
        version = getattr(payload, "version", "*")
        agent.record_component(kind, payload, model=ModelRef(name=model, version=version))
    report = agent.flush(timeout_s=30)
    if report.failed or report.dropped:
        reasons = "; ".join(f.reason for f in report.failures) or "dropped: the queue was full"
        return f"{NOT_RECORDED}: {reasons}"
    if report.pending == 0:
        what = f"a {kinds[0]} event" if len(events) == 1 else f"{' and '.join(kinds)} events"
        return f"recorded as {what}"
    if report.pending == report.spooled:
        return "kept in the spool until Kafka takes it"
    return f"{NOT_RECORDED} yet: {report.pending} events wait in memory for Kafka"


NOT_RECORDED = "not recorded"


def progress_bar(*, disable: bool = False) -> Progress:
    """A bar with its count and time, for a command that walks many rows or cases."""
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=disable,
    )


def freeze_startup_heap() -> None:
    """Leave what is alive now (modules, settings, pools, hundreds of MB of objects that live as
    long as the process) out of garbage collection from here on. A long-running command calls
    it before its loop: every full collection walked them all, about 30% of `driftline
    collect`'s time (``python -m bench.collector``: 4,560 events/s before, 6,548 after)."""
    gc.collect()
    gc.freeze()


STORE_WAIT_S = 60.0


def open_store(settings: CollectorSettings) -> Engine:
    """The store, its schema brought up to date unless DRIFTLINE_MIGRATE_ON_START is off, for
    a command that writes."""
    engine = _answering(settings)
    if settings.migrate_on_start:
        migrate(engine)
    return engine


def read_store(settings: CollectorSettings) -> Engine:
    """The store as it is, for a command that only reads: a database that is not there, or
    whose schema is not up to date, is an error naming it; nothing is created or migrated."""
    url = make_url(settings.database_url)
    shown = redacted_url(settings.database_url)
    missing = url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
    if missing and not Path(str(url.database)).is_file():
        fail(f"no database at {shown} (`driftline migrate` creates one)")
    engine = _answering(settings)
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    head = _schema_head()
    if current != head:
        engine.dispose()
        found = f"at revision {current}" if current else "not a Driftline store (no schema)"
        fail(f"the database at {shown} is {found}, not {head}: run `driftline migrate`")
    return engine


def _schema_head() -> str | None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


# What a PostgreSQL server says, refusing a connection, that waiting cannot mend; anything else
# (starting up, a standby not yet consistent, too many clients, another language) is waited for.
LASTING_REFUSALS = (
    re.compile(r'FATAL:\s+(database|role) "[^"]*" does not exist'),
    re.compile(r"FATAL:\s+password authentication failed"),
    re.compile(r"FATAL:\s+no pg_hba\.conf entry"),
)


def _answering(settings: CollectorSettings) -> Engine:
    """The engine, once the database answers. One that does not (restarting, say) is tried
    again for a minute; then the process stops, naming the setting, for its supervisor to
    start it again. A server that answers and refuses for good (no such database or role, a
    wrong password, no pg_hba.conf entry) is not waited for."""
    engine = make_engine(settings.database_url)
    deadline = time.monotonic() + STORE_WAIT_S
    backoff_s = 0.5
    while True:
        try:
            with engine.connect():
                return engine
        except OperationalError as error:
            if any(lasting.search(str(error.orig)) for lasting in LASTING_REFUSALS):
                fail(
                    f"the database at {redacted_url(settings.database_url)} "
                    f"(DRIFTLINE_DATABASE_URL) refuses the connection: {error.orig}"
                )
            if time.monotonic() + backoff_s > deadline:
                fail(
                    f"the database at {redacted_url(settings.database_url)} "
                    f"(DRIFTLINE_DATABASE_URL) does not answer: {error.orig}"
                )
            log.error("the database does not answer; trying again", error=str(error.orig))
            time.sleep(backoff_s)
            backoff_s = min(backoff_s * 2, 8.0)

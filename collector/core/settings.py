"""Settings of the collector process (and of ``driftline up``): one object, validated at start.

Order: command-line option, then DRIFTLINE_* environment variable, then default. With no
Kafka bootstrap servers given, ``driftline up`` starts the embedded broker.
"""

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from driftline.agent.settings import KafkaSecuritySettings
from driftline.collector.core.clock import ClockBounds
from driftline.collector.core.database_url import normalize_url, redacted_url


class CollectorSettings(KafkaSecuritySettings):
    model_config = SettingsConfigDict(env_prefix="DRIFTLINE_", extra="ignore")

    database_url: str = "sqlite:///driftline.db"
    kafka_bootstrap_servers: str | None = None
    embedded_broker_port: int = Field(
        default=9092, ge=0, le=65_535, description="Where `up` puts the embedded broker; 0: any."
    )
    topic: str = "driftline.events"
    consumer_group: str = "driftline-collector"
    partitions: int = Field(default=3, ge=1, description="Partitions when the topic is created.")
    batch_size: int = Field(default=500, ge=1, le=5_000)
    # The embedded broker holds a group join for the whole rebalance timeout, which
    # kafka-python takes from max_poll_interval_ms: keep it short.
    max_poll_interval_ms: int = Field(default=10_000, ge=1_000)
    session_timeout_ms: int = Field(default=6_000, ge=1_000)
    clock_skew_past_s: float = Field(
        default=ClockBounds.past_s,
        gt=0,
        description="An event dated further back than this when recorded is flagged (spooled "
        "events are hours or days old after an outage).",
    )
    clock_skew_future_s: float = Field(
        default=ClockBounds.future_s,
        gt=0,
        description="An event dated further ahead of the collector's clock than this is flagged.",
    )
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=0, le=65_535)
    log_level: str = "info"
    migrate_on_start: bool = Field(
        default=True,
        description="Bring the schema up to date when a process starts; off where a job does it.",
    )
    health_host: str = Field(default="127.0.0.1", description="Where worker probes listen.")
    health_port: int | None = Field(
        default=None,
        ge=1,
        le=65_535,
        description="Serve /healthz and /metrics for `collect`, `detect` and `route`; unset: none.",
    )

    # The detector worker (``driftline detect``, and inside ``driftline up``).
    detect_enabled: bool = Field(default=True, description="Run the worker inside `up`.")
    detect_interval_s: float = Field(default=60.0, gt=0, description="Seconds between checks.")
    detect_window_decisions: int = Field(
        default=2_000, ge=20, description="A window is the last N decisions of a version..."
    )
    detect_window_minutes: float | None = Field(
        default=None, gt=0, description="...or those of the last T minutes, at most N of them."
    )
    detect_min_decisions: int = Field(
        default=200, ge=2, description="Fewer decisions in a window than this: no check."
    )
    detect_false_alarm_rate: float = Field(default=0.01, gt=0, lt=1, description="Per check.")
    detect_correction: Literal["benjamini-hochberg", "bonferroni"] = "benjamini-hochberg"
    detect_min_effect: dict[str, float] = Field(
        default_factory=dict,
        description='Effect floors by feature or effect name, JSON: {"income": 0.2}.',
    )
    detect_stream_arl: float = Field(
        default=1_000_000,
        ge=0,
        description="Decisions between false alarms of the sequential (CUSUM) check; 0: off.",
    )

    @field_validator("detect_stream_arl")
    @classmethod
    def _a_run_length(cls, value: float) -> float:
        if 0 < value < 100:
            raise ValueError("a run length of at least 100 decisions, or 0 to turn it off")
        return value

    detect_stream_interval_s: float = Field(
        default=5.0, gt=0, description="Seconds between the sequential check's rounds."
    )
    detect_stale_after_s: float | None = Field(
        default=21_600.0,
        gt=0,
        description="Seconds without a decision after which a version's open drifts resolve "
        "as stale (saying so); unset: never.",
    )
    detect_raise_after: int = Field(default=1, ge=1, description="Alarming checks in a row.")
    detect_clear_after: int = Field(default=3, ge=1, description="Quiet checks in a row.")
    detect_baseline_first: int = Field(
        default=0,
        ge=0,
        description="Fit a version's baseline from its first N decisions when it has none; 0: off.",
    )
    detect_spool_dir: Path = Field(
        default=Path.home() / ".driftline" / "spool" / "driftline-detector",
        description="Where the worker's verdicts wait while Kafka is unreachable.",
    )
    # The alert router (``driftline route``, and inside ``driftline up`` when configured).
    alerting_config: Path | None = Field(
        default=None, description="The alerting file: routes, receivers, owners."
    )
    prices: Path | None = Field(
        default=None, description="The price table: what generative models' tokens cost."
    )
    input_contracts: Path | None = Field(
        default=None,
        description="The agent's contracts file: drift alerts show the fallback of the source "
        "that supplies the drifted input.",
    )
    router_group: str = "driftline-router"
    external_url: str | None = Field(
        default=None, description="Where people reach the API, for links in alerts."
    )
    router_spool_dir: Path = Field(
        default=Path.home() / ".driftline" / "spool" / "driftline-router",
        description="Where alert_notified events wait while Kafka is unreachable.",
    )
    readiness_config: Path | None = Field(
        default=None, description="The deployment thresholds file for `driftline readiness`."
    )
    accountability_config: Path | None = Field(
        default=None,
        description="The accountability map: who answers for each type of decision, the "
        "escalation path when one is challenged, the audit trail kept, when last reviewed.",
    )
    detect_review_threshold: float | None = Field(
        default=None, ge=0, le=1, description="Confidence under which decisions go to a human."
    )
    detect_refusal_phrases: tuple[str, ...] | None = Field(
        default=None,
        max_length=200,
        description="Phrases that mark a completion a refusal (a JSON list; [] for none), kept "
        "in each baseline fitted after; unset: the built-in English ones.",
    )

    # The audit ledger: signed checkpoints, retention, links to traces.
    # The private key is read only by what signs (the housekeeper, `up`, the audit commands
    # that write, an API with api_signs); verifying needs the public keys alone.
    signing_key_file: Path = Field(
        default=Path.home() / ".driftline" / "signing-key.pem",
        description="Ed25519 private key (PKCS#8 PEM) that signs checkpoints, erasure marks and "
        "export manifests; `up` makes it if missing.",
    )
    signing_public_key_file: Path | None = Field(
        default=None,
        description="Its public key (PEM), which verification trusts; default: beside it, "
        "signing-key.pub.pem (`up` and `audit keygen` write it there).",
    )
    trusted_public_keys: list[Path] = Field(
        default_factory=list,
        description="Public keys (PEM) of earlier signing keys whose signatures still count.",
    )
    api_signs: bool = Field(
        default=False,
        description="`driftline api` reads signing_key_file, to sign checkpoints, exports and "
        "erasures on request; off, it holds public keys only and those routes answer 503.",
    )
    # Provenance: the key Driftline's components sign their events with, and those trusted.
    producer_key_file: Path = Field(
        default=Path.home() / ".driftline" / "producer-key.pem",
        description="Ed25519 private key (PKCS#8 PEM) with which the detector, router and "
        "go-live commands sign their events; `up` makes it if missing.",
    )
    trusted_producer_keys: list[Path] = Field(
        default_factory=list,
        description="Public keys (PEM) whose signed events the collector stores, besides that "
        "of producer_key_file when the file exists.",
    )
    checkpoint_interval_s: float = Field(
        default=300.0, gt=0, description="Seconds between signed checkpoints of every chain."
    )
    retention_days: int = Field(
        default=400,
        ge=183,  # the EU AI Act asks deployers to keep logs at least six months
        description="Decision inputs recorded longer ago are erased, unless under a legal hold.",
    )
    trace_link_template: str | None = Field(
        default=None,
        description="Link to a trace in the tracing backend, e.g. http://jaeger:16686/trace/{trace_id}",
    )

    @property
    def checkpoint_public_key_file(self) -> Path:
        """Where the signing key's public half is: the setting, else beside the private key."""
        return self.signing_public_key_file or public_half(self.signing_key_file)

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _blank_means_embedded(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("trace_link_template")
    @classmethod
    def _names_the_trace(cls, value: str | None) -> str | None:
        if value is not None and "{trace_id}" not in value:
            raise ValueError("must contain {trace_id}")
        return value

    @field_validator(
        "alerting_config",
        "accountability_config",
        "prices",
        "input_contracts",
        "detect_stale_after_s",
        "detect_refusal_phrases",
        mode="before",
    )
    @classmethod
    def _blank_means_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("detect_refusal_phrases")
    @classmethod
    def _plain_phrases(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for n, phrase in enumerate(value or ()):
            if not phrase.strip() or len(phrase) > 200 or not phrase.isprintable():
                raise ValueError(
                    f"phrase {n + 1} must be 1 to 200 printable characters, got {phrase!r:.80}"
                )
        # Each baseline keeps them, within one event: they must not crowd out its sample.
        if sum(len(phrase.encode()) for phrase in value or ()) > 8_192:
            raise ValueError("the phrases may hold 8 KiB in all (UTF-8)")
        return value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        try:
            url = normalize_url(value)
        except ArgumentError:
            # Not echoed: what does not parse may be a password pasted in the wrong place.
            raise ValueError("not a database URL (sqlite:///PATH or postgresql://...)") from None
        try:
            make_url(url).get_dialect()  # an unknown driver (postgresql+nodriver://) too
            known = url.startswith(("sqlite", "postgresql"))
        except ArgumentError:
            known = False
        if not known:
            raise ValueError(
                f"only sqlite:// and postgresql:// are supported, got {redacted_url(value)}"
            )
        return url


def public_half(private_key_file: Path) -> Path:
    """Where the public key of ``signing-key.pem`` goes: ``signing-key.pub.pem`` beside it."""
    return private_key_file.with_name(f"{private_key_file.stem}.pub.pem")

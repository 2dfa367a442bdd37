"""The agent's settings: one object, from constructor arguments, then DRIFTLINE_* variables.

How to reach a Kafka cluster that asks for TLS or SASL is shared with the collector, which
reads the same variables for its consumers."""

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSecuritySettings(BaseSettings):
    """TLS and SASL towards Kafka, for librdkafka: the agent's producers and the collector's
    consumers alike."""

    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_file: Path | None = Field(
        default=None, description="CA bundle (PEM) for the brokers' certificates; none: system's."
    )

    @model_validator(mode="after")
    def _sasl_needs_credentials(self) -> Self:
        sasl = self.kafka_security_protocol.startswith("SASL")
        if sasl and (not self.kafka_sasl_username or self.kafka_sasl_password is None):
            raise ValueError(
                f"kafka_security_protocol {self.kafka_security_protocol} needs "
                "kafka_sasl_username and kafka_sasl_password"
            )
        return self

    def librdkafka_security(self) -> dict[str, str]:
        config = {"security.protocol": self.kafka_security_protocol.lower()}
        if self.kafka_security_protocol.startswith("SASL"):
            assert self.kafka_sasl_password is not None  # checked above
            config |= {
                "sasl.mechanisms": self.kafka_sasl_mechanism,
                "sasl.username": str(self.kafka_sasl_username),
                "sasl.password": self.kafka_sasl_password.get_secret_value(),
            }
        if self.kafka_ssl_ca_file is not None:
            config["ssl.ca.location"] = str(self.kafka_ssl_ca_file)
        return config


class AgentSettings(KafkaSecuritySettings):
    model_config = SettingsConfigDict(env_prefix="DRIFTLINE_", extra="ignore")

    service: str = Field(min_length=1, description="Name of the AI service the agent sits beside.")
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    topic: str = "driftline.events"
    queue_size: int = Field(default=10_000, ge=1, description="Events held before new ones drop.")
    batch_size: int = Field(default=500, ge=1)
    linger_ms: int = Field(default=5, ge=0)
    delivery_timeout_ms: int = Field(
        default=5_000,
        ge=1_000,
        description="How long Kafka may take to accept an event before it goes to the spool.",
    )
    spool_dir: Path | None = Field(
        default=None, description="Where undelivered events wait; ~/.driftline/spool/SERVICE."
    )
    spool_max_bytes: int = Field(default=1024**3, ge=1024)
    spool_fsync: Literal["always", "never"] = "always"
    spool_full_policy: Literal["block", "drop"] = "block"
    spool_block_ms: int = Field(default=1_000, ge=0)
    sidecar_host: str = Field(
        default="127.0.0.1", min_length=1, description="Where the sidecar listens: keep it local."
    )
    sidecar_port: int = Field(default=8686, ge=1, le=65_535, description="The sidecar's port.")
    sidecar_allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host header values (besides localhost, 127.0.0.1 and ::1) the sidecar "
        "takes events under: a guard against DNS rebinding when it listens beyond loopback.",
    )
    sidecar_ack: Literal["queued", "on_disk"] = Field(
        default="queued",
        description="What the sidecar's 202 means: the events are checked and queued in memory "
        "(lost if the process dies before they are sent), or also written to the spool and "
        "synced (they survive a kill; each request then waits for the disk).",
    )
    trace_exporter: Literal["none", "console", "otlp"] | None = Field(
        default=None,
        description="Where decision spans go; unset: the application's global tracer provider "
        "if it has one, else OTEL_TRACES_EXPORTER, else nowhere (driftline.agent.tracing).",
    )

    @field_validator("trace_exporter", mode="before")
    @classmethod
    def _exporter_in_any_case(cls, value: object) -> object:
        """`Console` or ` otlp ` as OTEL_TRACES_EXPORTER takes them; empty as unset."""
        if isinstance(value, str):
            return value.strip().lower() or None
        return value

    redaction_policy: Path | None = Field(
        default=None, description="YAML redaction policy; none: mask e-mails, cards, phones."
    )
    input_contracts: Path | None = Field(
        default=None, description="YAML: model name to the JSON Schema its inputs should meet."
    )
    redaction_key: SecretStr | None = Field(default=None, description="HMAC key for hash rules.")
    producer_key_file: Path | None = Field(
        default=None,
        description="Ed25519 key (PKCS#8 PEM) that signs the events of Driftline's own "
        "components (record_signed, record_deployment); never give it to a service's sidecar.",
    )

    @model_validator(mode="after")
    def _on_disk_means_synced(self) -> Self:
        if self.sidecar_ack == "on_disk" and self.spool_fsync != "always":
            raise ValueError("sidecar_ack on_disk needs spool_fsync always: a 202 means synced")
        return self

    def spool_directory(self) -> Path:
        return self.spool_dir or Path.home() / ".driftline" / "spool" / self.service

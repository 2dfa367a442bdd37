"""The agent's settings: one object, from constructor arguments, then DRIFTLINE_* variables."""

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class AgentSettings(BaseSettings):
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
    trace_exporter: Literal["none", "console", "otlp"] = "none"
    redaction_policy: Path | None = Field(
        default=None, description="YAML redaction policy; none: mask e-mails, cards, phones."
    )
    input_contracts: Path | None = Field(
        default=None, description="YAML: model name to the JSON Schema its inputs should meet."
    )
    redaction_key: SecretStr | None = Field(default=None, description="HMAC key for hash rules.")

    def spool_directory(self) -> Path:
        return self.spool_dir or Path.home() / ".driftline" / "spool" / self.service

"""The agent's settings: one object, from constructor arguments, then DRIFTLINE_* variables."""

from typing import Literal

from pydantic import Field
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
        default=30_000, ge=1_000, description="How long Kafka may take to accept an event."
    )
    trace_exporter: Literal["none", "console", "otlp"] = "none"

"""Secrets seeded into inputs, outputs and review text are found in no Kafka message, exported
span, log line or spool file."""

from pathlib import Path

import pytest
import structlog
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from driftline.agent import Driftline
from driftline.collector.runtime.broker import EmbeddedBroker, free_port
from tests.topic_reader import read_topic

SECRETS = ["jane.doe@example.com", "4111 1111 1111 1111", "4111111111111111", "123-45-6789"]
POLICY = "models:\n  '*':\n    rules:\n      - field: ssn\n        action: drop\n"


def record_with_secrets(agent: Driftline) -> None:
    decision_id = agent.record_decision(
        model="credit-risk",
        version="3",
        inputs={
            "email": "jane.doe@example.com",
            "ssn": "123-45-6789",
            "card": 4111111111111111,
            "notes": "paid with 4111 1111 1111 1111, write to jane.doe@example.com",
        },
        output={"message": "decision sent to jane.doe@example.com"},
        confidence=0.6,
        latency_ms=3.0,
    )
    agent.record_review(
        decision_id,
        model="credit-risk",
        version="3",
        reviewer="a.kim",
        action="override",
        new_output={"to": "jane.doe@example.com"},
        rationale="called +44 20 7946 0958; card 4111 1111 1111 1111 verified",
    )


def test_no_secret_leaves_the_process(
    broker: EmbeddedBroker, topic: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    policy = tmp_path / "redaction.yaml"
    policy.write_text(POLICY)
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    spool_dirs = [tmp_path / "spool-offline", tmp_path / "spool-online"]

    with structlog.testing.capture_logs() as logs:
        offline = Driftline(
            service="s",
            kafka_bootstrap_servers=f"127.0.0.1:{free_port()}",  # all of it goes to the spool
            delivery_timeout_ms=1_000,
            spool_dir=spool_dirs[0],
            redaction_policy=policy,
            tracer_provider=provider,
        )
        record_with_secrets(offline)
        assert offline.close(timeout_s=3).spooled == 2
        with Driftline(
            service="s",
            kafka_bootstrap_servers=broker.bootstrap_servers,
            topic=topic,
            spool_dir=spool_dirs[1],
            redaction_policy=policy,
            tracer_provider=provider,
        ) as online:
            record_with_secrets(online)
            assert online.flush().delivered == 2

    messages = b"".join(record.value for record in read_topic(broker.bootstrap_servers, topic, 2))
    exported = "".join(span.to_json() for span in spans.get_finished_spans())
    spooled = b"".join(f.read_bytes() for d in spool_dirs for f in d.iterdir() if f.is_file())
    log_text = repr(logs) + caplog.text
    assert b"[email]" in messages and b"[card]" in spooled and exported and logs
    for secret in SECRETS:
        assert secret.encode() not in messages, secret
        assert secret not in exported, secret
        assert secret not in log_text, secret
        assert secret.encode() not in spooled, secret

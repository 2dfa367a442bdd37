"""Bad agent configuration: one clear message naming the setting, and the service runs on."""

from pathlib import Path

import pytest
import structlog

from driftline.agent import Driftline
from driftline.agent.settings import KafkaSecuritySettings
from driftline.collector.runtime.broker import free_port

MODEL = {"model": "m", "version": "1"}


def record_one(agent: Driftline) -> None:
    agent.record_decision(**MODEL, inputs={}, output=1, confidence=0.5, latency_ms=1.0)


def refusal(**settings: object) -> str:
    with structlog.testing.capture_logs() as logs:
        agent = Driftline(
            service="s", kafka_bootstrap_servers=f"127.0.0.1:{free_port()}", **settings
        )
        record_one(agent)  # no exception reaches the service
        report = agent.close(timeout_s=1)
    assert (report.recorded, report.failed, report.delivered) == (1, 1, 0)
    errors = [log for log in logs if log["log_level"] == "error"]
    assert len(errors) == 1, logs
    assert errors[0]["problem"] in report.failures[0].reason
    return report.failures[0].reason


def test_an_unknown_redaction_action_is_named_with_its_file_and_key(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("models:\n  '*':\n    rules:\n      - field: ssn\n        action: shred\n")
    reason = refusal(redaction_policy=policy)
    assert "DRIFTLINE_REDACTION_POLICY" in reason
    assert "policy.yaml: models.*.rules.0.action" in reason


def test_a_missing_policy_file_is_named(tmp_path: Path) -> None:
    reason = refusal(redaction_policy=tmp_path / "nowhere.yaml")
    assert "DRIFTLINE_REDACTION_POLICY" in reason and "nowhere.yaml" in reason


def test_hash_rules_without_a_key_are_refused(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("models:\n  '*':\n    rules:\n      - field: name\n        action: hash\n")
    assert "DRIFTLINE_REDACTION_KEY" in refusal(redaction_policy=policy)


def test_a_bad_environment_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTLINE_QUEUE_SIZE", "plenty")
    assert "DRIFTLINE_QUEUE_SIZE" in refusal()


def test_an_unreachable_broker_is_named_once_and_recording_goes_on(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    with structlog.testing.capture_logs() as logs:
        agent = Driftline(
            service="s",
            kafka_bootstrap_servers=f"127.0.0.1:{free_port()}",
            delivery_timeout_ms=1_000,
        )
        for _ in range(3):
            record_one(agent)
            agent.flush(timeout_s=1.5)  # each flush waits out another failed attempt
        report = agent.close(timeout_s=1)

    warnings = [log for log in logs if log["log_level"] == "warning"]
    assert len(warnings) == 1, warnings
    assert "DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS" in warnings[0]["reason"]
    assert (report.recorded, report.spooled) == (3, 3)
    # librdkafka's line per reconnection attempt goes to the debug log, not the service's stderr
    assert "rdkafka" not in capfd.readouterr().err
    assert any(log["event"] == "librdkafka" for log in logs)


def test_sasl_without_credentials_is_refused_naming_the_settings() -> None:
    agent = Driftline(service="s", kafka_security_protocol="SASL_SSL")
    reason = agent.close(timeout_s=0).failures[0].reason
    assert "kafka_sasl_username" in reason and "kafka_sasl_password" in reason


def test_tls_and_sasl_reach_librdkafka(tmp_path: Path) -> None:
    settings = KafkaSecuritySettings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="driftline",
        kafka_sasl_password="s3cret",
        kafka_ssl_ca_file=tmp_path / "ca.pem",
    )
    assert settings.librdkafka_security() == {
        "security.protocol": "sasl_ssl",
        "sasl.mechanisms": "SCRAM-SHA-512",
        "sasl.username": "driftline",
        "sasl.password": "s3cret",
        "ssl.ca.location": str(tmp_path / "ca.pem"),
    }
    assert KafkaSecuritySettings().librdkafka_security() == {"security.protocol": "plaintext"}

"""Each receiver gets its own API's format: Alertmanager's webhook payload v4, Slack blocks with
a text fallback, PagerDuty Events v2 with one dedup_key per group, Alertmanager's
/api/v2/alerts; send_resolved false leaves resolved alerts out."""

from datetime import UTC, datetime, timedelta

from collector.alert_config import (
    AlertmanagerConfig,
    PagerDutyConfig,
    Receiver,
    SlackConfig,
    WebhookConfig,
)
from collector.alerts import Alert
from collector.grouping import Notification
from collector.receivers import messages

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
LABELS = {"alertname": "DriftDetected", "model": "m", "version": "1", "severity": "critical"}
FIRING = Alert(
    LABELS | {"feature": "age"}, {"summary": "age drifted", "runbook_url": "http://rb"}, T0
)
RESOLVED = Alert(LABELS | {"feature": "income"}, {"summary": "income"}, T0, T0 + timedelta(hours=1))
RECEIVER = Receiver(
    name="team",
    webhook_configs=[WebhookConfig(url="http://hook")],
    slack_configs=[SlackConfig(api_url="http://slack", channel="#risk", send_resolved=False)],
    pagerduty_configs=[PagerDutyConfig(routing_key="key", url="http://pd")],
    alertmanager_configs=[AlertmanagerConfig(url="http://am:9093/")],
)


def notification(*alerts: Alert) -> Notification:
    return Notification("team", '{}:{model="m"}', {"model": "m"}, alerts)


def by_integration(*alerts: Alert) -> dict[str, object]:
    return {m.integration: m.body for m in messages(notification(*alerts), RECEIVER, "http://dl")}


def test_the_webhook_gets_alertmanagers_payload() -> None:
    body = by_integration(FIRING, RESOLVED)["webhook[0]"]
    assert isinstance(body, dict)
    assert body["version"] == "4" and body["groupKey"] == '{}:{model="m"}'
    assert body["status"] == "firing" and body["truncatedAlerts"] == 0
    assert body["commonLabels"] == LABELS and body["groupLabels"] == {"model": "m"}
    firing, resolved = body["alerts"]
    assert firing["endsAt"] == "0001-01-01T00:00:00Z" and firing["status"] == "firing"
    assert resolved["endsAt"] == "2026-11-22T10:00:00.000000Z"
    assert firing["fingerprint"] == FIRING.fingerprint != RESOLVED.fingerprint


def test_slack_gets_blocks_a_fallback_and_no_resolved_alerts_when_told() -> None:
    body = by_integration(FIRING, RESOLVED)["slack[0]"]
    assert isinstance(body, dict)
    assert body["channel"] == "#risk" and "age drifted" in body["text"]
    assert body["blocks"][0]["type"] == "header"
    assert len(body["blocks"]) == 2  # the header and the firing alert only
    assert "<http://rb|runbook>" in body["blocks"][1]["text"]["text"]
    assert "slack[0]" not in by_integration(RESOLVED)  # nothing left to say


def test_pagerduty_triggers_and_resolves_one_incident_per_group() -> None:
    trigger = by_integration(FIRING)["pagerduty[0]"]
    resolve = by_integration(RESOLVED)["pagerduty[0]"]
    assert isinstance(trigger, dict) and isinstance(resolve, dict)
    assert trigger["event_action"] == "trigger" and resolve["event_action"] == "resolve"
    assert trigger["dedup_key"] == resolve["dedup_key"]
    assert trigger["payload"]["severity"] == "critical"
    assert trigger["payload"]["summary"] == "[FIRING:1] age drifted"


def test_an_alertmanager_gets_postable_alerts() -> None:
    (message,) = [
        m for m in messages(notification(FIRING, RESOLVED), RECEIVER, "http://dl")
        if m.integration == "alertmanager[0]"
    ]  # fmt: skip
    assert message.url == "http://am:9093/api/v2/alerts"
    assert isinstance(message.body, list)
    assert "endsAt" not in message.body[0] and message.body[1]["endsAt"].startswith("2026")

"""Each receiver gets its own API's format: Alertmanager's webhook payload v4, Slack blocks with
a text fallback, PagerDuty Events v2 with one dedup_key per group, Alertmanager's
/api/v2/alerts; send_resolved false leaves resolved alerts out."""

import json
import random
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Engine
from sqlmodel import Session

from driftline.agent.contract import DriftDetectedEvent, DriftPayload, ModelRef
from driftline.collector.alerting.alerts import Alert, alert_for
from driftline.collector.alerting.config import (
    AlertingConfig,
    AlertmanagerConfig,
    Owner,
    PagerDutyConfig,
    Receiver,
    Route,
    SlackConfig,
    WebhookConfig,
)
from driftline.collector.alerting.grouping import Notification
from driftline.collector.alerting.outbox import OutboxSender, enqueue
from driftline.collector.alerting.receivers import messages
from tests.events import drift_payload
from tests.http_recorder import recording_server

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


def _slack_texts(body: Any) -> list[str]:
    """Every text Slack renders: the fallback and each block's."""
    texts = [body["text"]]
    texts += [block["text"]["text"] for block in body["blocks"] if "text" in block]
    return texts


def test_slack_text_escapes_what_a_service_chose_so_it_cannot_mention_or_link(
    engine: Engine,
) -> None:
    """A service names its model and its features: ``<!channel>`` in one would page a whole
    channel, ``<http://evil|click>`` would show a link Driftline never wrote."""
    hostile = ModelRef(name="<@U123>&co", version="<http://evil|click>")
    event = DriftDetectedEvent(
        service="loan-desk",
        model=hostile,
        payload=DriftPayload(**drift_payload("<!channel> <!here>", version=hostile.version)),
    )
    config = AlertingConfig(
        route=Route(receiver="team"),
        receivers=[Receiver(name="team")],
        owners=[
            Owner(
                matchers=["alertname=DriftDetected"], owner="risk", runbook="http://rb?a=1&b=<2>|x"
            )
        ],
    )
    alert = alert_for(event, config, "http://driftline", "loan-desk")
    with recording_server() as slack, httpx.Client(timeout=5) as client:
        receiver = Receiver(name="team", slack_configs=[SlackConfig(api_url=f"{slack.url}/hook")])
        labels = {"model": hostile.name, "feature": "<!channel> <!here>"}
        notification = Notification("team", "{}:{}", labels, (alert,))
        with Session(engine) as session:
            enqueue(session, notification, receiver, "http://driftline", alert.starts_at)
            session.commit()
        OutboxSender(engine, client, rng=random.Random(1)).send_due(alert.starts_at)
        (body,) = slack.accepted()
    texts = _slack_texts(body)
    everything = json.dumps(texts)
    for control in ("<!channel>", "<!here>", "<@U123>", "<http://evil|click>"):
        assert control not in everything
    assert "&lt;!channel&gt;" in everything and "&lt;@U123&gt;&amp;co" in everything
    # What Driftline writes itself is still markup: the drift page's and the runbook's links,
    # each URL kept whole.
    links = [link for text in texts for link in re.findall(r"<([^<>]*)>", text)]
    page = "http://driftline/ui/drift/%3C%40U123%3E%26co/%3Chttp%3A%2F%2Fevil%7Cclick%3E"
    assert links == [f"{page}|drift page", "http://rb?a=1&amp;b=%3C2%3E%7Cx|runbook"]

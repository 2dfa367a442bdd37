"""What each kind of receiver is sent for a notification, as its own API expects it:

- webhook: Alertmanager's webhook payload, version "4";
- Slack incoming webhook: blocks, with a plain-text fallback;
- PagerDuty Events API v2: trigger or resolve, with a ``dedup_key`` stable per alert group, so
  a retry or a repeat never opens a second incident;
- an existing Alertmanager: its ``/api/v2/alerts``.

A receiver with several integrations gets one message per integration; ``send_resolved: false``
leaves resolved alerts out (and the message out, if nothing else is left).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from driftline.collector.alerting.alerts import Alert
from driftline.collector.alerting.config import Receiver
from driftline.collector.alerting.grouping import Notification, status_of

NEVER = "0001-01-01T00:00:00Z"  # Alertmanager's endsAt of an alert still firing
PAGERDUTY_SEVERITIES = {"critical", "error", "warning", "info"}


@dataclass(frozen=True)
class Message:
    integration: str  # "webhook[0]", "slack[1]"...
    url: str
    body: Any  # JSON


def messages(notification: Notification, receiver: Receiver, external_url: str) -> list[Message]:
    built = []
    for index, webhook in enumerate(receiver.webhook_configs):
        if alerts := _kept(notification, webhook.send_resolved):
            body = _webhook(notification, alerts, external_url, webhook.max_alerts)
            built.append(Message(f"webhook[{index}]", webhook.url, body))
    for index, slack in enumerate(receiver.slack_configs):
        if alerts := _kept(notification, slack.send_resolved):
            built.append(
                Message(
                    f"slack[{index}]", slack.api_url, _slack(notification, alerts, slack.channel)
                )
            )
    for index, pagerduty in enumerate(receiver.pagerduty_configs):
        if _kept(notification, pagerduty.send_resolved):
            body = _pagerduty(notification, pagerduty.routing_key, external_url)
            built.append(Message(f"pagerduty[{index}]", pagerduty.url, body))
    for index, manager in enumerate(receiver.alertmanager_configs):
        if alerts := _kept(notification, manager.send_resolved):
            url = f"{manager.url.rstrip('/')}/api/v2/alerts"
            built.append(Message(f"alertmanager[{index}]", url, [postable(a) for a in alerts]))
    return built


def dedup_key(notification: Notification) -> str:
    """Stable for the group, whatever its alerts do: one incident per group."""
    return hashlib.sha256(f"{notification.receiver}/{notification.group_key}".encode()).hexdigest()


def _kept(notification: Notification, send_resolved: bool) -> tuple[Alert, ...]:
    return tuple(a for a in notification.alerts if send_resolved or not a.resolved)


def _webhook(
    notification: Notification, alerts: tuple[Alert, ...], external_url: str, max_alerts: int
) -> dict[str, Any]:
    shown = alerts[:max_alerts] if max_alerts else alerts
    return {
        "version": "4",
        "groupKey": notification.group_key,
        "truncatedAlerts": len(alerts) - len(shown),
        "status": status_of(alerts),
        "receiver": notification.receiver,
        "groupLabels": notification.group_labels,
        "commonLabels": common_labels([a.labels for a in alerts]),
        "commonAnnotations": common_labels([a.annotations for a in alerts]),
        "externalURL": external_url,
        "alerts": [
            {
                "status": "resolved" if a.resolved else "firing",
                "labels": a.labels,
                "annotations": a.annotations,
                "startsAt": _time(a.starts_at),
                "endsAt": _time(a.ends_at) if a.ends_at else NEVER,
                "generatorURL": a.generator_url,
                "fingerprint": a.fingerprint,
            }
            for a in shown
        ],
    }


def _slack(
    notification: Notification, alerts: tuple[Alert, ...], channel: str | None
) -> dict[str, Any]:
    status = status_of(alerts)
    title = slack_escape(
        f"[{status.upper()}:{len(alerts)}] "
        + " ".join(f"{k}={v}" for k, v in notification.group_labels.items())
    )
    lines = [_slack_line(a) for a in alerts]
    summaries = (slack_escape(a.annotations.get("summary", "")) for a in alerts)
    body: dict[str, Any] = {
        "text": f"{title}\n" + "\n".join(summaries),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
            *(
                {"type": "section", "text": {"type": "mrkdwn", "text": line[:3000]}}
                for line in lines[:48]  # Slack takes at most 50 blocks
            ),
        ],
    }
    if channel:
        body["channel"] = channel
    return body


def _slack_line(alert: Alert) -> str:
    """An alert's summary, description, owner, escalation path, fallback and links."""
    mark = "✅" if alert.resolved else "🔥"
    line = f"{mark} *{slack_escape(alert.annotations.get('summary', ''))}*\n"
    line += slack_escape(alert.annotations.get("description", ""))
    line += f"\nOwner: {slack_escape(alert.labels.get('owner', 'unowned'))}"
    if "escalation" in alert.annotations:
        line += f"; escalation: {slack_escape(alert.annotations['escalation'])}"
    if "fallback" in alert.annotations:
        line += f"\nFallback: {slack_escape(alert.annotations['fallback'])}"
    links = [f"<{_slack_url(alert.generator_url)}|drift page>"] if alert.generator_url else []
    if "runbook_url" in alert.annotations:
        links.append(f"<{_slack_url(alert.annotations['runbook_url'])}|runbook>")
    if links:
        line += "\n" + " · ".join(links)
    return line


def slack_escape(text: str) -> str:
    """Text as Slack shows it, never as markup: a model or feature name is the service's
    choice, and ``<!channel>``, ``<@U123>`` or ``<http://evil|click>`` in one would mention or
    link. Slack's rule: ``&``, ``<`` and ``>`` as HTML entities, and nothing else."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_url(url: str) -> str:
    """A URL inside ``<url|text>``: the three escaped, and what would end it (``|``) or be
    taken as markup percent-encoded."""
    encoded = url.replace("<", "%3C").replace(">", "%3E").replace("|", "%7C")
    return slack_escape(encoded)


def _pagerduty(notification: Notification, routing_key: str, external_url: str) -> dict[str, Any]:
    key = dedup_key(notification)
    if notification.status == "resolved":
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": key}
    firing = [a for a in notification.alerts if not a.resolved]
    common = common_labels([a.labels for a in firing])
    severity = common.get("severity", "warning")
    summary = "; ".join(a.annotations.get("summary", "") for a in firing)
    details = {
        "firing": [a.annotations.get("description", "") for a in firing],
        "owner": common.get("owner", ""),
        "escalation": firing[0].annotations.get("escalation", ""),
    }
    fallbacks = dict.fromkeys(
        a.annotations["fallback"] for a in firing if "fallback" in a.annotations
    )
    if fallbacks:
        details["fallback"] = "; ".join(fallbacks)
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": key,
        "payload": {
            "summary": f"[FIRING:{len(firing)}] {summary}"[:1024],
            "source": common.get("service", "driftline"),
            "severity": severity if severity in PAGERDUTY_SEVERITIES else "warning",
            "component": common.get("model", ""),
            "group": notification.group_key,
            "class": common.get("alertname", ""),
            "custom_details": details,
        },
        "links": [
            {"href": firing[0].generator_url, "text": "drift page"},
            *(
                [{"href": firing[0].annotations["runbook_url"], "text": "runbook"}]
                if "runbook_url" in firing[0].annotations
                else []
            ),
        ],
        "client": "Driftline",
        "client_url": external_url,
    }


def postable(alert: Alert, fresh_until: datetime | None = None) -> dict[str, Any]:
    """An alert as Alertmanager's ``/api/v2/alerts`` takes it. A firing one given
    ``fresh_until`` ends then unless posted again (``refresh.py``); without it Alertmanager
    ends it after its own resolve_timeout."""
    posted: dict[str, Any] = {
        "labels": alert.labels,
        "annotations": alert.annotations,
        "startsAt": _time(alert.starts_at),
        "generatorURL": alert.generator_url,
    }
    ends_at = alert.ends_at or fresh_until
    if ends_at is not None:
        posted["endsAt"] = _time(ends_at)
    return posted


def common_labels(mappings: list[dict[str, str]]) -> dict[str, str]:
    """The labels (or annotations) every one of them has, with the same value."""
    if not mappings:
        return {}
    first = mappings[0]
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in mappings[1:])}


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

"""Alerts made from drift verdicts: labels that say what and whose, annotations that say what
to do, as Alertmanager models them. The same labels always give the same fingerprint, so a
verdict's ``drift_resolved`` resolves the alert its ``drift_detected`` raised.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import quote

from driftline.agent.contract import DriftDetectedEvent, DriftResolvedEvent
from driftline.collector.alerting.config import AlertingConfig, Owner
from driftline.collector.alerting.matchers import all_match

UNOWNED = "unowned"


@dataclass(frozen=True)
class Alert:
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None = None  # set when resolved
    generator_url: str = ""
    fingerprint: str = field(init=False)

    def __post_init__(self) -> None:
        canonical = "\x00".join(f"{k}\x00{v}" for k, v in sorted(self.labels.items()))
        object.__setattr__(self, "fingerprint", hashlib.sha256(canonical.encode()).hexdigest()[:16])

    @property
    def resolved(self) -> bool:
        return self.ends_at is not None


def alert_for(
    event: DriftDetectedEvent | DriftResolvedEvent,
    config: AlertingConfig,
    external_url: str,
    service: str,
    fallbacks: Mapping[str, Mapping[str, str]] | None = None,
) -> Alert:
    """The alert of a verdict about ``service``'s model (the AI service, not the detector that
    sent the verdict), linking to its drift page under ``external_url``. ``fallbacks``: per
    model, per input, what the service does when the input's source fails (from the contracts
    file), shown as the ``fallback`` annotation."""
    p = event.payload
    labels = {
        "alertname": "DriftDetected",
        "service": service,
        "model": event.model.name,
        "version": p.version,
        "feature": p.feature,
        "detector": p.test,
    }
    owner = owner_for(config, labels)
    labels["severity"] = owner.severity if owner else "warning"
    labels["owner"] = owner.owner if owner else UNOWNED
    effect = "unbounded" if p.effect is None else f"{p.effect:.3g}"
    per = "decision" if p.test == "cusum" else "check"  # the sequential check's budget
    annotations = {
        "summary": f"{event.model.name} {p.version}: {p.feature} drifted ({p.test})",
        "description": (
            f"{p.test} on {p.feature}: adjusted p {p.adjusted_p:.3g} (raw {p.p_value:.3g}) at a "
            f"false-alarm rate of {p.false_alarm_rate:g} per {per}, {p.effect_name} {effect}; "
            f"window of {p.current_size} decisions from {p.window_start:%Y-%m-%d %H:%M:%S}Z to "
            f"{p.window_end:%Y-%m-%d %H:%M:%S}Z against baseline {p.baseline_id[:12]} "
            f"({p.baseline_size} decisions)"
        ),
    }
    if owner is not None and owner.runbook:
        annotations["runbook_url"] = owner.runbook
    if owner is not None and owner.escalation:
        annotations["escalation"] = " → ".join(owner.escalation)
    fallback = fallback_for((fallbacks or {}).get(event.model.name, {}), p.feature)
    if fallback is not None:
        annotations["fallback"] = fallback
    drift_url = (
        f"{external_url}/ui/drift/{quote(event.model.name, safe='')}/{quote(p.version, safe='')}"
    )
    resolved = isinstance(event, DriftResolvedEvent)
    return Alert(
        labels=labels,
        annotations=annotations,
        starts_at=event.occurred_at,
        ends_at=event.occurred_at if resolved else None,
        generator_url=drift_url,
    )


def owner_for(config: AlertingConfig, labels: dict[str, str]) -> Owner | None:
    """The first owner entry whose matchers all match."""
    return next((o for o in config.owners if all_match(o.matchers, labels)), None)


def fallback_for(fallbacks: Mapping[str, str], feature: str) -> str | None:
    """The fallback of the input a feature is, or lies in (``applicant.age``: ``applicant``)."""
    if feature in fallbacks:
        return fallbacks[feature]
    return next((text for name, text in fallbacks.items() if feature.startswith(f"{name}.")), None)

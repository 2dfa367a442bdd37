"""What keeps an alert out of a notification, as in Alertmanager:

- a silence: all of its matchers match the alert, between its start and its end;
- an inhibition: another alert that is firing matches a rule's source matchers, this one its
  target matchers, and the two agree on every label the rule lists under ``equal``.

A muted alert stays in its group, so it is notified when the silence ends or the source
resolves, if it still fires then. A stored silence whose matchers no longer parse mutes nothing
and stops nothing: it is left out, and reported with the reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlmodel import Session, col, select

from driftline.collector.alerting.alerts import Alert
from driftline.collector.alerting.config import InhibitRule
from driftline.collector.alerting.grouping import Notification
from driftline.collector.alerting.matchers import Matcher, MatcherError, all_match
from driftline.collector.store.models import Silence


@dataclass(frozen=True)
class ActiveSilence:
    id: uuid.UUID
    matchers: tuple[Matcher, ...]


@dataclass(frozen=True)
class UnreadableSilence:
    id: uuid.UUID
    reason: str  # the MatcherError's message, naming the matcher


@dataclass(frozen=True)
class ActiveSilences:
    silences: list[ActiveSilence]
    unreadable: list[UnreadableSilence]  # active, but their matchers do not parse


def active_silences(session: Session, now: datetime) -> ActiveSilences:
    rows = session.exec(
        select(Silence).where(col(Silence.starts_at) <= now, col(Silence.ends_at) > now)
    ).all()
    found = ActiveSilences([], [])
    for row in rows:
        try:
            matchers = tuple(Matcher.parse(m) for m in row.matchers)
        except MatcherError as error:
            found.unreadable.append(UnreadableSilence(row.id, str(error)))
        else:
            found.silences.append(ActiveSilence(row.id, matchers))
    return found


def mute(
    notification: Notification,
    silences: Sequence[ActiveSilence],
    firing: Iterable[Alert],
    rules: Sequence[InhibitRule],
) -> Notification | None:
    """The notification without its muted alerts; None if none is left."""
    sources = list(firing)
    kept = tuple(
        alert
        for alert in notification.alerts
        if not any(all_match(s.matchers, alert.labels) for s in silences)
        and not (not alert.resolved and _inhibited(alert, sources, rules))
    )
    return replace(notification, alerts=kept) if kept else None


def _inhibited(alert: Alert, sources: Sequence[Alert], rules: Sequence[InhibitRule]) -> bool:
    return any(
        all_match(rule.target_matchers, alert.labels)
        and any(
            source.fingerprint != alert.fingerprint
            and all_match(rule.source_matchers, source.labels)
            and all(source.labels.get(name) == alert.labels.get(name) for name in rule.equal)
            for source in sources
        )
        for rule in rules
    )

"""Alerts gathered into notifications, as Alertmanager's aggregation groups do.

Each route an alert takes puts it in the group of that route and its ``group_by`` labels. A new
group waits ``group_wait`` for more alerts; after its first notification it is looked at every
``group_interval`` and notifies again when its alerts changed (new, or resolved), or when
``repeat_interval`` has passed since it last notified. Resolved alerts go out once, then leave
the group, and only to a receiver that was told something in the group fires; an empty group is
dropped. Time is passed in, so that tests and restarts can drive it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from driftline.collector.alerting.alerts import Alert
from driftline.collector.alerting.config import AlertingConfig
from driftline.collector.alerting.tree import RoutePolicy, route_alert


@dataclass(frozen=True)
class Notification:
    """One message to one receiver about one group."""

    receiver: str
    group_key: str
    group_labels: dict[str, str]
    alerts: tuple[Alert, ...]

    @property
    def status(self) -> str:
        return status_of(self.alerts)


@dataclass
class _Group:
    policy: RoutePolicy
    labels: dict[str, str]
    alerts: dict[str, Alert] = field(default_factory=dict)
    next_flush: datetime | None = None
    last_notified: datetime | None = None
    notified: frozenset[tuple[str, bool]] = frozenset()  # (fingerprint, resolved) last sent


class Grouper:
    def __init__(self, config: AlertingConfig) -> None:
        self._config = config
        self._groups: dict[tuple[str, str], _Group] = {}

    def add(self, alert: Alert, now: datetime) -> None:
        for policy in route_alert(self._config.route, alert.labels):
            key = (policy.receiver, policy.group_key(alert.labels))
            group = self._groups.get(key)
            if group is None:
                group = _Group(policy, policy.group_labels(alert.labels))
                group.next_flush = now + policy.group_wait
                self._groups[key] = group
            known = group.alerts.get(alert.fingerprint)
            if known is not None:  # keep when it started; take its latest state
                alert = replace(alert, starts_at=known.starts_at)
            group.alerts[alert.fingerprint] = alert

    def due(
        self,
        now: datetime,
        mute: Callable[[Notification], Notification | None] = lambda n: n,
    ) -> list[Notification]:
        """The notifications to send now; groups are moved on as if they were sent. ``mute``
        takes muted alerts out; what it leaves is what counts as notified, so an alert whose
        silence ends goes out at its group's next look."""
        notifications = []
        for (receiver, group_key), group in list(self._groups.items()):
            if group.next_flush is None or now < group.next_flush:
                continue
            whole = Notification(receiver, group_key, group.labels, _ordered(group.alerts.values()))
            sent = mute(whole)
            state = (
                frozenset((a.fingerprint, a.resolved) for a in sent.alerts) if sent else frozenset()
            )
            repeat = (
                group.last_notified is not None
                and now - group.last_notified >= group.policy.repeat_interval
            )
            # As Alertmanager's dedup stage: resolved alerts alone are news only to a receiver
            # that was told something fires (one that fired and ended within group_wait, or
            # while silenced, was never news).
            news = sent is not None and (
                bool(group.notified) or any(not a.resolved for a in sent.alerts)
            )
            if sent is not None and news and (state != group.notified or repeat):
                notifications.append(sent)
                group.last_notified = now
            group.notified = frozenset(x for x in state if not x[1])
            for fingerprint in [fp for fp, a in group.alerts.items() if a.resolved]:
                del group.alerts[fingerprint]
            if not group.alerts:
                del self._groups[(receiver, group_key)]
            else:
                group.next_flush = now + group.policy.group_interval
        return notifications

    def groups_of(self, alert: Alert) -> list[tuple[str, str]]:
        """The (receiver, group key) of every group the alert goes to."""
        return [
            (policy.receiver, policy.group_key(alert.labels))
            for policy in route_alert(self._config.route, alert.labels)
        ]

    def remember(
        self, receiver: str, group_key: str, firing: Iterable[str], notified_at: datetime
    ) -> None:
        """Take up what an earlier run last notified to this group (its notification log),
        so that alerts it already told the receiver about are not sent again."""
        group = self._groups.get((receiver, group_key))
        if group is None:
            return
        group.notified = frozenset((fingerprint, False) for fingerprint in firing)
        group.last_notified = notified_at
        if group.next_flush is not None:
            group.next_flush = max(group.next_flush, notified_at + group.policy.group_interval)

    def told_firing(self) -> dict[str, tuple[Alert, ...]]:
        """Per receiver, the alerts its last notification of each group said fire, in their
        state now: firing still, or resolved since (until the group's next look sends it)."""
        told: dict[str, dict[str, Alert]] = {}
        for (receiver, _), group in self._groups.items():
            for fingerprint, _resolved in group.notified:
                if (alert := group.alerts.get(fingerprint)) is not None:
                    told.setdefault(receiver, {})[fingerprint] = alert
        return {receiver: _ordered(alerts.values()) for receiver, alerts in told.items()}

    def firing(self) -> Mapping[str, Alert]:
        """Every alert firing in any group, by fingerprint."""
        return {
            fp: alert
            for group in self._groups.values()
            for fp, alert in group.alerts.items()
            if not alert.resolved
        }


def status_of(alerts: Iterable[Alert]) -> str:
    """A set of alerts is resolved when every one of them is."""
    return "resolved" if all(a.resolved for a in alerts) else "firing"


def _ordered(alerts: Iterable[Alert]) -> tuple[Alert, ...]:
    return tuple(sorted(alerts, key=lambda a: (a.starts_at, a.fingerprint)))

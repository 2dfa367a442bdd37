"""Which receivers an alert goes to, and how it is grouped there: Alertmanager's routing tree.

An alert enters at the root. Children are tried in order; the first that matches takes the
alert, and the search stops there unless that child says ``continue``. A route that no child
takes handles the alert itself. Children inherit receiver, ``group_by`` and the three intervals
from their parent unless they set their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta

from driftline.collector.alerting.config import Route
from driftline.collector.alerting.matchers import all_match

ALL_LABELS = "..."  # group_by: [...] groups by every label, one group per alert


@dataclass(frozen=True)
class RoutePolicy:
    """What a matching route decides for an alert, with everything inherited filled in."""

    receiver: str
    group_by: tuple[str, ...]
    group_wait: timedelta
    group_interval: timedelta
    repeat_interval: timedelta
    route_key: str  # the route's place in the tree, as its matchers from the root

    def group_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        if ALL_LABELS in self.group_by:
            return dict(labels)
        return {name: labels[name] for name in self.group_by if name in labels}

    def group_key(self, labels: Mapping[str, str]) -> str:
        """Alertmanager's ``groupKey``: the route, then the labels the group shares."""
        shared = ",".join(f'{k}="{v}"' for k, v in sorted(self.group_labels(labels).items()))
        return f"{self.route_key}:{{{shared}}}"


ROOT_DEFAULTS = RoutePolicy(
    receiver="",
    group_by=(),
    group_wait=timedelta(seconds=30),
    group_interval=timedelta(minutes=5),
    repeat_interval=timedelta(hours=4),
    route_key="{}",
)


def route_alert(root: Route, labels: Mapping[str, str]) -> list[RoutePolicy]:
    """The policies of every route that takes the alert, in tree order."""
    return _visit(root, _inherit(ROOT_DEFAULTS, root, "{}"), labels)


def _visit(route: Route, policy: RoutePolicy, labels: Mapping[str, str]) -> list[RoutePolicy]:
    taken: list[RoutePolicy] = []
    for child in route.routes:
        if not all_match(child.matchers, labels):
            continue
        key = f"{policy.route_key}/{{{','.join(str(m) for m in child.matchers)}}}"
        taken += _visit(child, _inherit(policy, child, key), labels)
        if not child.continue_:
            break
    return taken or [policy]


def _inherit(parent: RoutePolicy, route: Route, key: str) -> RoutePolicy:
    return replace(
        parent,
        receiver=route.receiver or parent.receiver,
        group_by=tuple(route.group_by) if route.group_by is not None else parent.group_by,
        group_wait=_given(route.group_wait, parent.group_wait),
        group_interval=_given(route.group_interval, parent.group_interval),
        repeat_interval=_given(route.repeat_interval, parent.repeat_interval),
        route_key=key,
    )


def _given(value: timedelta | None, inherited: timedelta) -> timedelta:
    return inherited if value is None else value  # 0s is a setting, not an absence

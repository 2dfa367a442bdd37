"""Alerts become notifications on Alertmanager's timers: a burst is one notification per
receiver after group_wait; changes go out at the next group_interval; an unchanged group
repeats after repeat_interval; resolved alerts go out once, to whoever was told they fire, and
leave."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from driftline.collector.alerting.alerts import Alert
from driftline.collector.alerting.config import AlertingConfig, load_alerting
from driftline.collector.alerting.grouping import Grouper, Notification

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
CONFIG = """\
route:
  receiver: team
  group_by: [model, version]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 1h
  routes:
    - matchers: ['severity="page"']
      receiver: pager
      continue: true
    - receiver: team  # no matchers: takes all the rest, and what pager let continue
receivers:
  - {name: team}
  - {name: pager}
"""


@pytest.fixture
def config(tmp_path: Path) -> AlertingConfig:
    path = tmp_path / "alerting.yaml"
    path.write_text(CONFIG)
    return load_alerting(path)


def alert(feature: str, at: datetime, *, resolved: bool = False, model: str = "m") -> Alert:
    labels = {"model": model, "version": "1", "feature": feature, "severity": "page"}
    return Alert(labels, {"summary": feature}, at, at if resolved else None)


def after(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_burst_of_fifty_is_one_notification_per_receiver(config: AlertingConfig) -> None:
    grouper = Grouper(config)
    for n in range(50):
        grouper.add(alert(f"f{n}", after(n * 0.1)), after(n * 0.1))
    assert grouper.due(after(29)) == []
    sent = grouper.due(after(30))
    assert sorted(n.receiver for n in sent) == ["pager", "team"]
    assert all(len(n.alerts) == 50 and n.status == "firing" for n in sent)
    assert sent[0].group_labels == {"model": "m", "version": "1"}


def test_changes_wait_for_the_group_interval_and_silence_repeats_hourly(
    config: AlertingConfig,
) -> None:
    grouper = Grouper(config)
    grouper.add(alert("age", T0), T0)
    assert len(grouper.due(after(30))) == 2
    grouper.add(alert("income", after(60)), after(60))
    assert grouper.due(after(60)) == []  # the next look is at 30 s + 5 min
    changed = grouper.due(after(330))
    assert [len(n.alerts) for n in changed] == [2, 2]
    assert grouper.due(after(330 + 300)) == []  # nothing new, an hour not yet passed
    repeated = grouper.due(after(330 + 3600))
    assert [len(n.alerts) for n in repeated] == [2, 2]


def test_a_resolved_alert_goes_out_once_and_an_empty_group_ends(config: AlertingConfig) -> None:
    grouper = Grouper(config)
    grouper.add(alert("age", T0), T0)
    grouper.due(after(30))
    grouper.add(alert("age", after(100), resolved=True), after(100))
    team = next(n for n in grouper.due(after(330)) if n.receiver == "team")
    assert team.status == "resolved" and team.alerts[0].starts_at == T0  # kept from firing
    assert team.alerts[0].ends_at == after(100)
    assert grouper.firing() == {}
    assert grouper.due(after(330 + 3600)) == []


def test_an_alert_that_ends_before_anyone_was_told_is_never_sent(
    config: AlertingConfig,
) -> None:
    grouper = Grouper(config)
    grouper.add(alert("age", T0), T0)
    grouper.add(alert("age", after(10), resolved=True), after(10))  # within group_wait
    assert grouper.due(after(30)) == []
    assert grouper.firing() == {}


def test_a_resolve_goes_only_to_receivers_told_it_fires(config: AlertingConfig) -> None:
    grouper = Grouper(config)
    grouper.add(alert("age", T0), T0)

    def not_to_pager(notification: Notification) -> Notification | None:
        return None if notification.receiver == "pager" else notification  # as a silence would

    assert [n.receiver for n in grouper.due(after(30), not_to_pager)] == ["team"]
    grouper.add(alert("age", after(100), resolved=True), after(100))
    resolved = grouper.due(after(330))
    assert [(n.receiver, n.status) for n in resolved] == [("team", "resolved")]


def test_models_are_grouped_apart(config: AlertingConfig) -> None:
    grouper = Grouper(config)
    grouper.add(alert("age", T0, model="a"), T0)
    grouper.add(alert("age", T0, model="b"), T0)
    keys = {n.group_key for n in grouper.due(after(30)) if n.receiver == "team"}
    assert keys == {'{}/{}:{model="a",version="1"}', '{}/{}:{model="b",version="1"}'}

"""Routing follows Alertmanager: first matching child wins unless it continues, a route no
child takes handles the alert, children inherit what they do not set, matchers compare whole
values."""

from datetime import timedelta
from pathlib import Path

import pytest

from driftline.collector.alerting.config import AlertingConfig, load_alerting
from driftline.collector.alerting.matchers import Matcher
from driftline.collector.alerting.tree import route_alert

TREE = """\
route:
  receiver: default
  group_by: [model]
  repeat_interval: 4h
  routes:
    - matchers: ['severity="page"']
      receiver: pager
      group_wait: 0s
      continue: true
      routes:
        - matchers: ['team="risk"']
          receiver: risk-pager
    - matchers: ['model=~"credit-.*"']
      receiver: credit
      group_by: [...]
    - matchers: ['model!="fraud"']
      receiver: not-fraud
receivers:
  - {name: default}
  - {name: pager}
  - {name: risk-pager}
  - {name: credit}
  - {name: not-fraud}
"""


@pytest.fixture
def config(tmp_path: Path) -> AlertingConfig:
    path = tmp_path / "alerting.yaml"
    path.write_text(TREE)
    return load_alerting(path)


def receivers(config: AlertingConfig, **labels: str) -> list[str]:
    return [policy.receiver for policy in route_alert(config.route, labels)]


def test_the_first_matching_child_takes_the_alert(config: AlertingConfig) -> None:
    assert receivers(config, model="credit-risk") == ["credit"]
    assert receivers(config, model="churn") == ["not-fraud"]


def test_a_route_no_child_takes_handles_the_alert_itself(config: AlertingConfig) -> None:
    assert receivers(config, model="fraud") == ["default"]
    assert receivers(config, model="fraud", severity="page") == ["pager"]


def test_continue_lets_later_siblings_match_too(config: AlertingConfig) -> None:
    assert receivers(config, model="credit-risk", severity="page", team="risk") == [
        "risk-pager",
        "credit",
    ]


def test_children_inherit_what_they_do_not_set(config: AlertingConfig) -> None:
    risk, credit = route_alert(
        config.route, {"model": "credit-x", "severity": "page", "team": "risk"}
    )
    assert risk.group_wait == timedelta(0)  # from its parent, which set 0s
    assert risk.repeat_interval == timedelta(hours=4)  # from the root
    assert risk.group_by == ("model",)
    assert credit.group_wait == timedelta(seconds=30)  # Alertmanager's default
    assert credit.group_labels({"model": "credit-x", "feature": "age"}) == {
        "model": "credit-x",
        "feature": "age",
    }


def test_the_group_key_names_the_route_and_the_shared_labels(config: AlertingConfig) -> None:
    (policy,) = route_alert(config.route, {"model": "churn", "feature": "age"})
    assert policy.group_key({"model": "churn", "feature": "age"}) == (
        '{}/{model!="fraud"}:{model="churn"}'
    )


@pytest.mark.parametrize(
    ("matcher", "labels", "expected"),
    [
        ('model="a"', {"model": "a"}, True),
        ('model="a"', {"model": "ab"}, False),
        ("model=~a.*", {"model": "xab"}, False),  # a regex matches the whole value
        ('model=~"a|b"', {"model": "b"}, True),
        ('model!~"a|b"', {}, True),  # an absent label is the empty string
        ('model=""', {}, True),
        ('model!=""', {}, False),
    ],
)
def test_matchers_compare_whole_values(
    matcher: str, labels: dict[str, str], expected: bool
) -> None:
    assert Matcher.parse(matcher).matches(labels) is expected

"""The alerting file: a good one loads; every mistake in a broken one is named with the file,
the line and the key, all of them at once."""

from datetime import timedelta
from pathlib import Path

import pytest

from driftline.collector.alerting.config import AlertConfigError, load_alerting
from driftline.collector.core.durations import parse_duration

GOOD = """\
route:
  receiver: team-webhook
  group_by: [model, version]
  group_wait: 10s
  routes:
    - matchers: ['severity="page"', 'model=~"credit-.*"']
      receiver: pager
      repeat_interval: 1h
      continue: true
receivers:
  - name: team-webhook
    webhook_configs: [{url: "http://127.0.0.1:9/hook"}]
  - name: pager
    pagerduty_configs: [{routing_key: abc123}]
inhibit_rules:
  - source_matchers: ['severity="page"']
    target_matchers: ['severity="ticket"']
    equal: [model]
owners:
  - matchers: ['model="credit-risk"']
    owner: risk-ml-team
    escalation: [a.kim, head-of-risk]
    runbook: https://runbooks.example/credit-risk
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "alerting.yaml"
    path.write_text(text)
    return path


def test_a_good_file_loads(tmp_path: Path) -> None:
    config = load_alerting(write(tmp_path, GOOD))
    child = config.route.routes[0]
    assert child.continue_ and child.repeat_interval == timedelta(hours=1)
    assert [str(m) for m in child.matchers] == ['severity="page"', 'model=~"credit-.*"']
    assert config.receiver("pager").pagerduty_configs[0].routing_key == "abc123"
    assert config.owners[0].escalation == ["a.kim", "head-of-risk"]


BAD_REGEX = 'model=~"credit-(.*": bad regular expression'
BROKEN = [
    ("receiver: pager", "receiver: pagr", ":7: route.routes[0].receiver: unknown receiver 'pagr'"),
    ("credit-.*", "credit-(.*", f":6: route.routes[0].matchers[1]: Value error, {BAD_REGEX}"),
    ("wait: 10s", "wait: 10 seconds", ":4: route.group_wait: Value error, '10 seconds' is not"),
    ("  - name: pager\n", "  - nam: pager\n", ":13: receivers[1].name: Field required"),
    (
        "  - name: pager\n",
        "  - name: pager\n    email_configs: []\n",
        ":14: receivers[1].email_configs: Extra inputs are not permitted",
    ),
    ("    owner: risk-ml-team\n", "", ":20: owners[0].owner: Field required"),
]


@pytest.mark.parametrize(("old", "new", "expected"), BROKEN)
def test_each_mistake_names_the_file_line_and_key(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(AlertConfigError) as raised:
        load_alerting(path)
    assert any(p.startswith(f"{path}{expected}") for p in raised.value.problems), raised.value


def test_every_mistake_is_reported_at_once(tmp_path: Path) -> None:
    text = GOOD.replace("receiver: pager", "receiver: nobody").replace("10s", "ten")
    with pytest.raises(AlertConfigError) as raised:
        load_alerting(write(tmp_path, text))
    assert len(raised.value.problems) == 1  # field errors first: the duration
    fixed = text.replace("ten", "10s")
    with pytest.raises(AlertConfigError) as raised:
        load_alerting(write(tmp_path, fixed))
    assert "unknown receiver 'nobody'; defined: team-webhook, pager" in str(raised.value)


def test_yaml_that_does_not_parse_is_located(tmp_path: Path) -> None:
    with pytest.raises(
        AlertConfigError, match=r"alerting.yaml:4: not valid YAML: expected the node content"
    ):
        load_alerting(write(tmp_path, "route:\n  receiver: x\n  routes: [\n"))


def test_the_root_route_takes_everything_and_needs_a_receiver(tmp_path: Path) -> None:
    text = GOOD.replace("  receiver: team-webhook\n", "  matchers: ['x=\"1\"']\n", 1)
    with pytest.raises(AlertConfigError) as raised:
        load_alerting(write(tmp_path, text))
    problems = "\n".join(raised.value.problems)
    assert ":2: route.receiver: the root route needs a receiver" in problems
    assert ":2: route.matchers: the root route takes every alert" in problems


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h30m", 5_400), ("500ms", 0.5), ("1d", 86_400), ("2w", 1_209_600)],
)
def test_durations_read_as_prometheus_writes_them(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds

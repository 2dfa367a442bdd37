"""The Grafana dashboard (deploy/grafana/driftline-dashboard.json): its panels are laid out
without clashes, each query asks the ${datasource} variable, every metric it names is one a
component or the agent exposes, and every query is PromQL that promtool parses."""

import itertools
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY
from prometheus_client.metrics_core import Metric

import driftline.collector.alerting.metrics
import driftline.collector.consume.metrics
import driftline.collector.drift.metrics
import driftline.collector.web.api.metrics  # noqa: F401 (each registers its metrics)
from driftline.agent import Driftline
from driftline.collector.runtime.broker import free_port

DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "driftline-dashboard.json"
PROMTOOL = shutil.which("promtool")
# The series names a family of each type exposes.
SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("", "_sum", "_count"),
}
METRIC = re.compile(r"\bdriftline_[a-z0-9_]+\b")
# What Grafana fills in before a query reaches Prometheus.
VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}
WIDTH = 24


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels() -> list[dict[str, Any]]:
    """Every panel, those inside a collapsed row too."""
    top: list[dict[str, Any]] = dashboard()["panels"]
    return top + [inner for panel in top for inner in panel.get("panels", [])]


def queries() -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable."""
    found = [
        (f"panel {panel['id']} {target['refId']}", target["expr"])
        for panel in panels()
        for target in panel.get("targets", [])
    ]
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            found.append((f"variable {variable['name']}", variable["query"]["query"]))
    return found


def promql(expr: str) -> str:
    """The query as Prometheus gets it, with every dashboard variable replaced; Grafana's
    label_values(selector, label) as the series query it makes."""
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    expr = re.sub(r"\$\{?\w+\}?", ".*", expr)  # $namespace, $job...: All
    values = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", expr)
    return f"count by ({values[2]}) ({values[1]})" if values else expr


def exposed(families: list[Metric]) -> set[str]:
    return {
        family.name + suffix
        for family in families
        if family.name.startswith("driftline_")
        for suffix in SUFFIXES[family.type]
    }


def test_every_panel_has_a_unique_id_and_a_place_that_no_other_takes() -> None:
    ids = [panel["id"] for panel in panels()]
    assert all(isinstance(i, int) for i in ids) and len(ids) == len(set(ids)), ids
    places = []
    for panel in panels():
        where = panel["gridPos"]
        assert {"h", "w", "x", "y"} <= set(where), panel["title"]
        assert where["w"] > 0 and where["h"] > 0 and where["x"] >= 0 and where["y"] >= 0
        assert where["x"] + where["w"] <= WIDTH, panel["title"]
        places.append((panel["title"], where))
    for (one, a), (other, b) in itertools.combinations(places, 2):
        apart = (
            a["x"] + a["w"] <= b["x"] or b["x"] + b["w"] <= a["x"]
            or a["y"] + a["h"] <= b["y"] or b["y"] + b["h"] <= a["y"]
        )  # fmt: skip
        assert apart, f"{one!r} and {other!r} overlap"


def test_every_query_asks_the_datasource_variable() -> None:
    board = dashboard()
    assert 36 <= board["schemaVersion"] <= 41
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert (variables["datasource"]["type"], variables["datasource"]["query"]) == (
        "datasource",
        "prometheus",
    )
    chosen = {"type": "prometheus", "uid": "${datasource}"}
    for panel in panels():
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == chosen, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == chosen, panel["title"]
    for name in ("namespace", "job", "service", "model"):
        assert variables[name]["includeAll"] and variables[name]["allValue"] == ".*", name


def test_every_metric_a_query_names_is_exposed(tmp_path: Path) -> None:
    """Names from the components' registry (the collector's, detector's, router's and API's
    metrics modules, as `driftline up` holds them in one process) and from an agent's."""
    with Driftline(
        service="s", kafka_bootstrap_servers=f"127.0.0.1:{free_port()}", spool_dir=tmp_path,
        delivery_timeout_ms=1_000,
    ) as agent:  # fmt: skip
        names = exposed(list(REGISTRY.collect())) | exposed(list(agent.metrics.collect()))
    assert "driftline_agent_events_recorded_total" in names  # the agent's own, for one
    used: set[str] = set()
    for where, expr in queries():
        named = set(METRIC.findall(expr))
        assert named or "driftline_" in expr, f"{where} names no Driftline metric: {expr}"
        assert named <= names, f"{where}: {sorted(named - names)} not exposed"
        used |= named
    for prefix in ("collector", "detector", "router", "api", "agent"):
        assert any(name.startswith(f"driftline_{prefix}_") for name in used), prefix


def test_quantiles_are_taken_over_buckets_grouped_by_le() -> None:
    for where, expr in queries():
        for quantile in re.finditer(r"histogram_quantile\(([^,]+),\s*sum by \(([^)]*)\)", expr):
            assert "le" in [label.strip() for label in quantile.group(2).split(",")], where
            assert "_bucket{" in expr, where


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (Debian's prometheus)")
def test_every_query_is_promql_that_promtool_parses(tmp_path: Path) -> None:
    """Each panel's query as a recording rule: `promtool check rules` parses them offline."""
    assert PROMTOOL is not None
    rules = [
        {"record": f"dashboard:{re.sub(r'[^a-z0-9]+', '_', where.lower())}", "expr": promql(expr)}
        for where, expr in queries()
    ]
    file = tmp_path / "dashboard-rules.yaml"
    file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = subprocess.run(
        [PROMTOOL, "check", "rules", str(file)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules)} rules found" in checked.stdout

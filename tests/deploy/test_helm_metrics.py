"""The chart's ServiceMonitors (metrics.serviceMonitor), off by default: one per component that
serves Driftline's metrics, each selecting that component's Service on a port that reaches its
/metrics. kubernetes-validate knows no CRD, so their shape is checked here against the
Prometheus operator's monitoring.coreos.com/v1 fields."""

import re
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest

from tests.deploy.test_helm_chart import CHART, KUBERNETES, containers, production, render

# The fields of monitoring.coreos.com/v1 ServiceMonitor that the chart may use.
SPEC_FIELDS = {"selector", "namespaceSelector", "endpoints", "jobLabel", "targetLabels"}
ENDPOINT_FIELDS = {"port", "path", "interval", "scrapeTimeout", "scheme", "honorLabels"}
DURATION = re.compile(r"^([0-9]+(ms|s|m|h))+$")
UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
LABELS = {"release": "prometheus"}


def monitored(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    monitor = {"enabled": True, "interval": "15s", "scrapeTimeout": "5s", "labels": LABELS}
    return production() | {"metrics": {"serviceMonitor": monitor}} | (extra or {})


def seconds(duration: str) -> float:
    return sum(int(n) * UNITS[unit] for n, unit in re.findall(r"([0-9]+)(ms|s|m|h)", duration))


def of_kind(manifests: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in manifests if m["kind"] == kind]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return selector.items() <= labels.items()


def test_no_service_monitor_by_default() -> None:
    assert of_kind(render(), "ServiceMonitor") == []
    assert of_kind(render(production()), "ServiceMonitor") == []


def test_one_service_monitor_per_component_that_serves_metrics() -> None:
    monitors = of_kind(render(monitored()), "ServiceMonitor")
    components = sorted(m["metadata"]["labels"]["app.kubernetes.io/component"] for m in monitors)
    assert components == ["api", "collector", "detector", "router"]
    without_router = monitored({"alerting": {}})
    monitors = of_kind(render(without_router), "ServiceMonitor")
    assert "driftline-router" not in {m["metadata"]["name"] for m in monitors}


def test_each_service_monitor_selects_its_component_s_service_on_a_metrics_port() -> None:
    """The shape the operator reads, and that what it names exists: the Service its selector
    picks, the port by name on that Service, and behind it a container port of the pods."""
    manifests = render(monitored())
    services = of_kind(manifests, "Service")
    deployments = of_kind(manifests, "Deployment")
    for monitor in of_kind(manifests, "ServiceMonitor"):
        name = monitor["metadata"]["name"]
        assert (monitor["apiVersion"], monitor["kind"]) == (
            "monitoring.coreos.com/v1",
            "ServiceMonitor",
        )
        assert selects(LABELS, monitor["metadata"]["labels"]), name
        spec = monitor["spec"]
        assert set(spec) <= SPEC_FIELDS, name
        assert spec["namespaceSelector"] == {"matchNames": ["driftline"]}
        assert set(spec["selector"]) == {"matchLabels"}, name
        (service,) = [
            s for s in services if selects(spec["selector"]["matchLabels"], s["metadata"]["labels"])
        ]
        (deployment,) = [
            d
            for d in deployments
            if selects(service["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])
        ]
        ports = {port["name"]: port for port in service["spec"]["ports"]}
        container_ports = {p["name"] for c in containers(deployment) for p in c.get("ports", [])}
        for endpoint in spec["endpoints"]:
            assert set(endpoint) <= ENDPOINT_FIELDS, name
            assert endpoint["path"] == "/metrics"
            assert endpoint["port"] in ports, (name, endpoint["port"], list(ports))
            assert ports[endpoint["port"]]["targetPort"] in container_ports, name
            assert DURATION.match(endpoint["interval"]) and DURATION.match(
                endpoint["scrapeTimeout"]
            )
            assert (endpoint["interval"], endpoint["scrapeTimeout"]) == ("15s", "5s")
            assert seconds(endpoint["scrapeTimeout"]) <= seconds(endpoint["interval"])


def test_the_workers_services_are_headless_and_keep_pods_that_are_not_ready() -> None:
    """A collector whose database fails is not ready; its metrics are what says so."""
    for service in of_kind(render(production()), "Service"):
        if service["metadata"]["name"] == "driftline-api":
            continue
        assert service["spec"]["clusterIP"] == "None"
        assert service["spec"]["publishNotReadyAddresses"] is True
        assert [p["name"] for p in service["spec"]["ports"]] == ["metrics"]


def test_everything_else_stays_valid_kubernetes_and_the_chart_lints_clean() -> None:
    for manifest in render(monitored()):
        if manifest["kind"] != "ServiceMonitor":
            kubernetes_validate.validate(manifest, KUBERNETES, strict=True)
    report = helm.lint(CHART, monitored(), strict=True)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize(
    ("monitor", "named"),
    [
        ({"interval": "30 seconds"}, "interval"),
        ({"scrapeTimeout": 10}, "scrapeTimeout"),
        ({"labels": {"release": 1}}, "release"),
        ({"enable": True}, "enable"),
    ],
)
def test_service_monitor_values_of_the_wrong_shape_fail_naming_the_key(
    monitor: dict[str, Any], named: str
) -> None:
    with pytest.raises(helm.HelmError, match=named):
        render({"metrics": {"serviceMonitor": monitor}})

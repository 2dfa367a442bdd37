"""The Helm chart, rendered and linted by the real Helm engine (helm-python-sdk, offline) for
the default values and a production-like file; every manifest is checked against the
Kubernetes schemas (kubernetes-validate, strict); values of the wrong shape fail at install."""

import json
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

CHART = Path(__file__).parents[2] / "helm" / "driftline"
PRODUCTION = Path(__file__).parents[2] / "deploy" / "helm" / "production-values.yaml"
KUBERNETES = kubernetes_validate.latest_version()


def render(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    rendered = helm.Chart.load(CHART).render(
        values, name="driftline", namespace="driftline", is_install=True
    )
    return [
        manifest
        for path, text in rendered.items()
        if path.endswith(".yaml")
        for manifest in yaml.safe_load_all(text)
        if manifest
    ]


def production() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load(PRODUCTION.read_text())
    return values


def containers(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    spec = manifest.get("spec", {}).get("template", {}).get("spec", {})
    found: list[dict[str, Any]] = spec.get("containers", [])
    return found


@pytest.mark.parametrize("values", [None, "production"])
def test_every_manifest_is_valid_kubernetes(values: str | None) -> None:
    manifests = render(production() if values else None)
    kinds = sorted(m["kind"] for m in manifests)
    for manifest in manifests:
        kubernetes_validate.validate(manifest, KUBERNETES, strict=True)
    assert "Secret" not in kinds  # referenced, never inlined
    assert {"Deployment", "Job", "PodDisruptionBudget", "Service"} <= set(kinds)
    if values:
        assert {"HorizontalPodAutoscaler", "Ingress", "ConfigMap", "NetworkPolicy"} <= set(kinds)
        # collector, api, detector, router, housekeeper, workload
        assert kinds.count("Deployment") == 6


@pytest.mark.parametrize("values", [None, "production"])
def test_the_chart_lints_clean(values: str | None) -> None:
    report = helm.lint(CHART, production() if values else None, strict=True)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_every_container_runs_unprivileged_with_probes_and_limits() -> None:
    for manifest in render(production()):
        for container in containers(manifest):
            where = f"{manifest['metadata']['name']}/{container['name']}"
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["allowPrivilegeEscalation"] is False, where
            assert "memory" in container["resources"]["limits"], where
            if manifest["kind"] == "Deployment":
                assert "livenessProbe" in container and "readinessProbe" in container, where
        pod = manifest.get("spec", {}).get("template", {}).get("spec", {})
        if pod:
            assert pod["securityContext"]["runAsNonRoot"] is True


def test_secrets_reach_the_components_by_reference() -> None:
    manifests = render(production())
    collector = next(m for m in manifests if m["metadata"]["name"] == "driftline-collector")
    env = {e["name"]: e for e in containers(collector)[0]["env"]}
    assert env["DRIFTLINE_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == (
        "driftline-database"
    )
    assert env["DRIFTLINE_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == (
        "driftline-kafka"
    )
    assert env["DRIFTLINE_KAFKA_SECURITY_PROTOCOL"]["value"] == "SASL_SSL"
    assert env["DRIFTLINE_MIGRATE_ON_START"]["value"] == "false"  # the hook job migrates
    job = next(m for m in manifests if m["kind"] == "Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert containers(job)[0]["args"] == ["migrate"]


def test_the_producer_key_reaches_the_signers_and_only_its_public_half_the_collector() -> None:
    """Provenance: the detector and router sign with the private key; the collector, which
    checks their events, holds the public key only (and any other it is told to trust)."""
    values = production() | {"producerKey": {
        "secret": "driftline-producer-key", "key": "producer-key.pem",
        "publicKey": "producer-key.pub.pem", "trustedPublicKeysSecret": "pipeline-producer-key",
    }}  # fmt: skip
    manifests = {m["metadata"]["name"]: m for m in render(values) if m["kind"] == "Deployment"}

    def secrets(name: str) -> dict[str, list[str]]:
        volumes = manifests[name]["spec"]["template"]["spec"]["volumes"]
        return {
            v["secret"]["secretName"]: [item["key"] for item in v["secret"].get("items", [])]
            for v in volumes
            if "secret" in v
        }

    def env(name: str) -> dict[str, str]:
        return {e["name"]: e.get("value", "") for e in containers(manifests[name])[0]["env"]}

    for signer in ("driftline-detector", "driftline-router"):
        assert secrets(signer)["driftline-producer-key"] == ["producer-key.pem"]
        assert env(signer)["DRIFTLINE_PRODUCER_KEY_FILE"] == (
            "/etc/driftline/producer/producer-key.pem"
        )
    collector = secrets("driftline-collector")
    assert collector["driftline-producer-key"] == ["producer-key.pub.pem"]
    assert "pipeline-producer-key" in collector
    assert "DRIFTLINE_PRODUCER_KEY_FILE" not in env("driftline-collector")
    assert json.loads(env("driftline-collector")["DRIFTLINE_TRUSTED_PRODUCER_KEYS"]) == [
        "/etc/driftline/producer/producer-key.pub.pem",
        "/etc/driftline/trusted-producers/previous.pem",
    ]
    for other in ("driftline-api", "loan-desk"):  # the service's sidecar least of all
        assert "driftline-producer-key" not in secrets(other)


@pytest.mark.parametrize("api_signs", [False, True])
def test_the_private_signing_key_reaches_the_housekeeper_and_the_api_only_when_it_signs(
    api_signs: bool,
) -> None:
    """Verifying needs the public key alone: every API replica holds that, and the private
    key only with api.signs; the housekeeper, which signs checkpoints, holds both."""
    values = production() | {"api": production()["api"] | {"signs": api_signs}}
    manifests = {m["metadata"]["name"]: m for m in render(values) if m["kind"] == "Deployment"}

    def keys(name: str) -> tuple[list[str], dict[str, str]]:
        pod = manifests[name]["spec"]["template"]["spec"]
        items = [
            item["key"]
            for volume in pod["volumes"]
            if volume.get("secret", {}).get("secretName") == "driftline-signing-key-2026-11"
            for item in volume["secret"]["items"]
        ]
        env = {e["name"]: e.get("value", "") for e in containers(manifests[name])[0]["env"]}
        return items, env

    items, env = keys("driftline-housekeeper")
    assert items == ["signing-key.pem", "signing-key.pub.pem"]
    assert env["DRIFTLINE_SIGNING_KEY_FILE"] == "/etc/driftline/keys/signing-key.pem"
    assert containers(manifests["driftline-housekeeper"])[0]["args"] == ["housekeep"]
    items, env = keys("driftline-api")
    assert ("signing-key.pem" in items) == api_signs == ("DRIFTLINE_SIGNING_KEY_FILE" in env)
    assert env["DRIFTLINE_SIGNING_PUBLIC_KEY_FILE"] == "/etc/driftline/keys/signing-key.pub.pem"
    assert json.loads(env["DRIFTLINE_TRUSTED_PUBLIC_KEYS"]) == [
        "/etc/driftline/trusted/previous.pem"
    ]
    for other in ("driftline-collector", "driftline-detector", "driftline-router", "loan-desk"):
        assert keys(other)[0] == []


def test_the_router_runs_only_with_an_alerting_file() -> None:
    names = {m["metadata"]["name"] for m in render()}
    assert "driftline-router" not in names
    names = {m["metadata"]["name"] for m in render(production())}
    assert {"driftline-router", "driftline-alerting"} <= names


def test_the_router_links_where_people_reach_driftline_and_the_sidecar_reaches_kafka() -> None:
    """The router had no DRIFTLINE_EXTERNAL_URL, so its alerts linked to nowhere reachable; the
    example's sidecar asked for SASL_SSL without credentials or CA, and was never ready."""
    manifests = {
        m["metadata"]["name"]: m for m in render(production()) if m["kind"] == "Deployment"
    }
    (router,) = containers(manifests["driftline-router"])
    env = {e["name"]: e for e in router["env"]}
    assert env["DRIFTLINE_EXTERNAL_URL"]["value"] == "https://driftline.internal"
    workload = manifests[production()["exampleWorkload"]["name"]]
    (sidecar,) = [c for c in containers(workload) if c["name"] == "driftline-agent"]
    env = {e["name"]: e for e in sidecar["env"]}
    assert env["DRIFTLINE_KAFKA_SECURITY_PROTOCOL"]["value"] == "SASL_SSL"
    for secret in ("DRIFTLINE_KAFKA_SASL_USERNAME", "DRIFTLINE_KAFKA_SASL_PASSWORD"):
        assert env[secret]["valueFrom"]["secretKeyRef"]["name"] == "driftline-kafka"
    ca_file = env["DRIFTLINE_KAFKA_SSL_CA_FILE"]["value"]
    mounts = [m["mountPath"] for m in sidecar["volumeMounts"]]
    assert any(ca_file.startswith(path) for path in mounts), (ca_file, mounts)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"collector": {"replicas": "three"}}, "replicas"),
        ({"api": {"port": 70_000}}, "port"),
        ({"kafka": {"securityProtocol": "SASL_SSL", "saslSecret": ""}}, "saslSecret"),
        ({"kafka": {"securityProtocol": "KERBEROS"}}, "securityProtocol"),
        ({"settings": {"LOG_LEVEL": "debug"}}, "LOG_LEVEL"),
        ({"colector": {"replicas": 2}}, "colector"),
    ],
)
def test_values_of_the_wrong_shape_fail_naming_the_key(change: dict[str, Any], named: str) -> None:
    with pytest.raises(helm.HelmError, match=named):
        render(change)


def test_no_pod_gets_kubernetes_service_links() -> None:
    """They would set DRIFTLINE_API_PORT=tcp://... (the chart's driftline-api Service) in every
    pod, over the setting of that name."""
    for manifest in render(production()):
        spec = manifest.get("spec", {}).get("template", {}).get("spec")
        if spec is not None:
            assert spec["enableServiceLinks"] is False, manifest["metadata"]["name"]

"""What the deployment files promise: every setting of every component is documented with its
variable, the example configuration files load, the compose file and the plain manifests run
commands that exist and validate as Kubernetes objects."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml
from typer.main import get_command

from driftline.agent.input_contracts import load_contracts
from driftline.agent.redaction import RedactionPolicy
from driftline.collector.alerting.config import load_alerting
from driftline.collector.cli.main import app
from driftline.collector.core.environment import known_variables
from driftline.collector.runtime.broker import EmbeddedBroker, free_port
from tests.deploy.test_helm_chart import containers, production, render
from tests.waiting import wait_for

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy"
KNOWN = known_variables()


def test_every_setting_is_documented_with_its_variable() -> None:
    readme = (ROOT / "README.md").read_text()
    assert sorted(name for name in KNOWN if f"`{name}`" not in readme) == []


def test_the_example_configuration_files_load() -> None:
    config = load_alerting(DEPLOY / "config" / "alerting.yaml")
    assert config.owners[0].owner == "risk-ml-team"
    assert set(RedactionPolicy.load(DEPLOY / "config" / "redaction.yaml").models) == {
        "*",
        "credit-risk",
    }
    assert "credit-risk" in load_contracts(DEPLOY / "config" / "contracts.yaml")


def test_environment_files_name_only_real_settings() -> None:
    for path in (DEPLOY / "driftline.env", DEPLOY / "config" / "agent.env"):
        names = {
            line.split("=", 1)[0]
            for line in path.read_text().splitlines()
            if line and not line.startswith("#")
        }
        assert {n for n in names if n.startswith("DRIFTLINE_")} <= KNOWN, path


def test_compose_and_the_image_run_commands_that_exist() -> None:
    commands = set(get_command(app).commands)  # type: ignore[attr-defined]
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    driftline = {
        name: service
        for name, service in compose["services"].items()
        if service.get("image", "").startswith("driftline")
    }
    assert {s["command"][0] for s in driftline.values()} <= commands
    assert {"collect", "api", "detect", "route", "migrate", "agent"} <= commands
    assert 'ENTRYPOINT ["driftline"]' in (DEPLOY / "Dockerfile").read_text()
    assert "USER 10001" in (DEPLOY / "Dockerfile").read_text()


def test_every_driftline_variable_the_deployments_set_is_a_setting() -> None:
    """Every command refuses a DRIFTLINE_* variable no setting reads: a deployment that set
    one would not start."""
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    names = {
        line.split("=", 1)[0]
        for line in (DEPLOY / "driftline.env").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for service in compose["services"].values():
        if service.get("image", "").startswith("driftline"):
            names |= set(service.get("environment", {}))
    for values in (None, production()):
        for manifest in render(values):
            for container in containers(manifest):
                if container["name"] != "service":  # the example's own service, not Driftline
                    names |= {variable["name"] for variable in container.get("env", [])}
    driftline = {name for name in names if name.startswith("DRIFTLINE_")}
    assert len(driftline) > 20 and driftline <= KNOWN, driftline - KNOWN


def test_the_plain_manifests_are_valid_kubernetes() -> None:
    version = kubernetes_validate.latest_version()
    for manifest in yaml.safe_load_all((DEPLOY / "kubernetes" / "agent-config.yaml").read_text()):
        kubernetes_validate.validate(manifest, version, strict=True)
    patch: dict[str, Any] = yaml.safe_load(
        (DEPLOY / "kubernetes" / "agent-sidecar-patch.yaml").read_text()
    )
    pod = patch["spec"]["template"]["spec"]
    pod["containers"].insert(0, {"name": "service", "image": "loan-desk:1"})
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "loan-desk"},
        "spec": {
            "selector": {"matchLabels": {"app": "loan-desk"}},
            "template": {"metadata": {"labels": {"app": "loan-desk"}}, "spec": pod},
        },
    }
    kubernetes_validate.validate(deployment, version, strict=True)
    agent = pod["containers"][1]
    assert agent["args"][0] == "agent"


def test_the_sidecar_patch_keeps_the_agent_on_the_pods_loopback_and_its_probes_reach_it(
    broker: EmbeddedBroker, topic: str, tmp_path: Path
) -> None:
    """The service shares the pod's network, so it reaches the agent on 127.0.0.1; nothing
    outside the pod can, with no NetworkPolicy needed. The kubelet's HTTP probes would come
    from outside: the probes run in the agent's container instead, as they are run here."""
    patch = yaml.safe_load((DEPLOY / "kubernetes" / "agent-sidecar-patch.yaml").read_text())
    (agent,) = patch["spec"]["template"]["spec"]["containers"]
    args = agent["args"]
    assert args[args.index("--host") + 1] == "127.0.0.1"
    assert "ports" not in agent  # nothing to publish beyond the pod
    probes = [agent["livenessProbe"], agent["readinessProbe"]]
    assert all("httpGet" not in p and "tcpSocket" not in p for p in probes)
    port = free_port()
    commands = [
        [sys.executable if part == "python" else part.replace(args[args.index("--port") + 1],
         str(port)) for part in probe["exec"]["command"]]
        for probe in probes
    ]  # fmt: skip
    assert all(str(port) in " ".join(command) for command in commands)
    environment = os.environ | {
        "DRIFTLINE_SERVICE": "loan-desk",
        "DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "DRIFTLINE_TOPIC": topic,
        "DRIFTLINE_SPOOL_DIR": str(tmp_path / "spool"),
    }
    for command in commands:
        assert subprocess.run(command, capture_output=True, timeout=30).returncode != 0
    sidecar = subprocess.Popen(
        [sys.executable, "-m", "driftline", *args[:-1], str(port)],
        env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for command in commands:

            def probe(command: list[str] = command) -> int:
                return subprocess.run(command, capture_output=True, timeout=30).returncode

            wait_for(probe, lambda code: code == 0, 60, what=" ".join(command[-1:]))
    finally:
        sidecar.terminate()
        sidecar.wait(timeout=20)

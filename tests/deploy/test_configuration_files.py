"""What the deployment files promise: every setting of every component is documented with its
variable, the example configuration files load, the compose file and the plain manifests run
commands that exist and validate as Kubernetes objects."""

from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml
from typer.main import get_command

from agent.input_contracts import load_contracts
from agent.redaction import RedactionPolicy
from agent.settings import AgentSettings
from collector.alert_config import load_alerting
from collector.cli import app
from collector.settings import CollectorSettings

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy"
KNOWN = {
    f"DRIFTLINE_{name.upper()}"
    for settings in (AgentSettings, CollectorSettings)
    for name in settings.model_fields
}


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

"""A drift alert about an input says what the service does when that input's source fails: the
contracts file's fallback, as an annotation that Slack and PagerDuty show too, escaped as any
text a service chose; the router takes it from DRIFTLINE_INPUT_CONTRACTS, whose mistakes stop
it at start."""

from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from driftline.agent.contract import DriftDetectedEvent, DriftPayload
from driftline.collector.alerting.alerts import alert_for
from driftline.collector.alerting.config import (
    AlertingConfig,
    PagerDutyConfig,
    Receiver,
    Route,
    SlackConfig,
)
from driftline.collector.alerting.grouping import Notification
from driftline.collector.alerting.receivers import messages
from driftline.collector.core.settings import CollectorSettings
from driftline.collector.golive.contracts import ContractsFileError
from driftline.collector.runtime import services
from tests.events import MODEL, drift_payload

CONFIG = AlertingConfig(route=Route(receiver="team"), receivers=[Receiver(name="team")])
CONTRACTS = """\
credit-risk:
  inputs: {type: object}
  sources:
    - name: bureau
      fields: [income, applicant]
      update_every: 1h
      fallback: "scored on the form alone <!channel>"
"""
FALLBACKS = {"credit-risk": {"income": "bureau: scored on the form alone"}}


def detected(feature: str) -> DriftDetectedEvent:
    return DriftDetectedEvent(
        service="driftline-detector", model=MODEL, payload=DriftPayload(**drift_payload(feature))
    )


def test_an_alert_about_a_sources_input_carries_its_fallback() -> None:
    alert = alert_for(detected("income"), CONFIG, "http://d", "loan-desk", FALLBACKS)
    assert alert.annotations["fallback"] == "bureau: scored on the form alone"


def test_a_nested_input_takes_its_parents_fallback_and_others_none() -> None:
    fallbacks = {"credit-risk": {"applicant": "form: refused"}}
    nested = alert_for(detected("applicant.age"), CONFIG, "http://d", "loan-desk", fallbacks)
    assert nested.annotations["fallback"] == "form: refused"
    for feature in ("applicants", "confidence", "age"):
        alert = alert_for(detected(feature), CONFIG, "http://d", "loan-desk", fallbacks)
        assert "fallback" not in alert.annotations
    other_model = {"fraud": {"income": "x: y"}}
    alert = alert_for(detected("income"), CONFIG, "http://d", "loan-desk", other_model)
    assert "fallback" not in alert.annotations


def test_the_fallback_changes_no_label_so_no_fingerprint() -> None:
    without = alert_for(detected("income"), CONFIG, "http://d", "loan-desk")
    with_it = alert_for(detected("income"), CONFIG, "http://d", "loan-desk", FALLBACKS)
    assert with_it.fingerprint == without.fingerprint


def test_slack_and_pagerduty_show_the_fallback_escaped() -> None:
    fallbacks = {"credit-risk": {"income": "bureau: form only <!channel>"}}
    alert = alert_for(detected("income"), CONFIG, "http://d", "loan-desk", fallbacks)
    receiver = Receiver(
        name="team",
        slack_configs=[SlackConfig(api_url="http://slack/hook")],
        pagerduty_configs=[PagerDutyConfig(routing_key="k", url="http://pd/v2/enqueue")],
    )
    slack, pagerduty = messages(Notification("team", "{}", {}, (alert,)), receiver, "http://d")
    (line,) = [b["text"]["text"] for b in slack.body["blocks"] if b["type"] == "section"]
    assert "\nFallback: bureau: form only &lt;!channel&gt;" in line
    details = pagerduty.body["payload"]["custom_details"]
    assert details["fallback"] == "bureau: form only <!channel>"


def test_the_router_shows_the_fallbacks_of_the_contracts_setting(
    tmp_path: Path, engine: Engine
) -> None:
    path = tmp_path / "contracts.yaml"
    path.write_text(CONTRACTS)
    settings = CollectorSettings(input_contracts=path)
    assert CollectorSettings(input_contracts=" ").input_contracts is None
    with httpx.Client() as client:
        router = services.router(
            engine, settings, CONFIG, agent=None, client=client, api_url="http://d"
        )  # type: ignore[arg-type]
        alert = router.take(detected("income"))
        router.close()
    assert alert.annotations["fallback"] == "bureau: scored on the form alone <!channel>"


def test_a_contracts_file_with_mistakes_stops_the_router_naming_them(
    tmp_path: Path, engine: Engine
) -> None:
    path = tmp_path / "contracts.yaml"
    path.write_text(CONTRACTS.replace("update_every: 1h", "update_every: hourly"))
    with pytest.raises(ContractsFileError, match=r"contracts.yaml:6: credit-risk.sources\[0\]"):
        services.fallbacks(CollectorSettings(input_contracts=path))

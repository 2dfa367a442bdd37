"""An alert's labels hold from its firing to its resolve, across restarts (found by a hostile
review): the ``service`` label is the version's first decision in the ledger, so a decision of
another service arriving late with an earlier time does not change it, and alerts told to a
receiver before ``service`` named the AI service keep their earlier labels to their resolve.
A page that changed labels would open a second PagerDuty incident and never resolve the first.
"""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import Engine

from driftline.agent.contract import DriftDetectedEvent, DriftPayload, DriftResolvedEvent
from driftline.agent.provenance import TrustedProducers
from driftline.collector.alerting.config import load_alerting
from driftline.collector.alerting.router import AlertRouter
from tests import events
from tests.collector.test_drift_worker import store
from tests.events import MODEL, drift_payload
from tests.http_recorder import recording_server

CONFIG = """\
route:
  receiver: pager
  group_by: [alertname, service, model, version]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 4h
receivers:
  - name: pager
    pagerduty_configs: [{{routing_key: key-1, url: "{url}/v2/enqueue"}}]
"""


class RecordingNothing:
    """Stands in for the router's agent, which is not what is tested: records nothing."""

    def record_component(self, *a, **k):
        pass


def _router(engine, path, client, clock):
    return AlertRouter(
        engine=engine,
        config=load_alerting(path),
        agent=RecordingNothing(),
        client=client,
        external_url="http://d.example",
        clock=lambda: clock[0],
        producers=TrustedProducers(),
    )


def test_a_late_decision_of_another_service_changes_no_label_across_a_restart(
    tmp_path: Path, engine: Engine
) -> None:
    now = datetime.now(UTC)
    store(engine, [events.decision(service="chat", occurred_at=now - timedelta(minutes=5))])
    detected = DriftDetectedEvent(
        service="driftline-detector", model=MODEL, payload=DriftPayload(**drift_payload("age"))
    )
    store(engine, [detected])
    path = tmp_path / "alerting.yaml"
    with recording_server() as pd, httpx.Client(timeout=5) as client:
        path.write_text(CONFIG.format(url=pd.url))
        clock = [now]
        first = _router(engine, path, client, clock)
        assert first.restore() == 1
        clock[0] = now + timedelta(seconds=2)
        first.tick()
        (trigger,) = pd.accepted()
        assert trigger["event_action"] == "trigger" and trigger["payload"]["source"] == "chat"
        first.close()

        # The search service's agent was offline; its spooled decision (same model version,
        # dated earlier) reaches the store now. Then the router restarts.
        store(engine, [events.decision(service="search", occurred_at=now - timedelta(hours=2))])
        clock[0] = now + timedelta(seconds=10)
        second = _router(engine, path, client, clock)
        assert second.restore() == 1
        clock[0] = now + timedelta(seconds=13)
        second.tick()
        # The drift ends: its resolve goes out.
        resolved = DriftResolvedEvent(
            service="driftline-detector", model=MODEL, payload=DriftPayload(**drift_payload("age"))
        )
        second.take(resolved)
        for s in (15, 17, 19):
            clock[0] = now + timedelta(seconds=s)
            second.tick()
        second.close()
        sent = [(b["event_action"], b["dedup_key"]) for b in pd.accepted()]
        print(sent)
        triggered = {k for a, k in sent if a == "trigger"}
        resolved_keys = {k for a, k in sent if a == "resolve"}
        # What should hold: every incident triggered is resolved, and nothing paged twice.
        assert len([a for a, _ in sent if a == "trigger"]) == 1, f"paged again: {sent}"
        assert triggered <= resolved_keys, f"incident never resolved: {triggered - resolved_keys}"


def test_an_alert_told_before_the_upgrade_resolves_under_its_earlier_labels(
    tmp_path: Path, engine: Engine
) -> None:
    """A router of 27b0352 labelled alerts service=<the detector>
    this change's router, after
    the upgrade, restores them labelled with the AI service: new fingerprints and group keys."""
    now = datetime.now(UTC)
    store(engine, [events.decision(service="chat", occurred_at=now - timedelta(minutes=5))])
    store(
        engine,
        [
            DriftDetectedEvent(
                service="driftline-detector",
                model=MODEL,
                payload=DriftPayload(**drift_payload("age")),
            )
        ],
    )
    path = tmp_path / "alerting.yaml"
    with recording_server() as pd, httpx.Client(timeout=5) as client:
        path.write_text(CONFIG.format(url=pd.url))
        clock = [now]
        old = _router(engine, path, client, clock)
        old._service_of = lambda model, version: "driftline-detector"  # 27b0352: event.service
        old.restore()
        clock[0] = now + timedelta(seconds=2)
        old.tick()
        old.close()
        new = _router(engine, path, client, clock)  # the upgraded router
        clock[0] = now + timedelta(seconds=10)
        new.restore()
        new.take(
            DriftResolvedEvent(
                service="driftline-detector",
                model=MODEL,
                payload=DriftPayload(**drift_payload("age")),
            )
        )
        for s in (13, 15, 17):
            clock[0] = now + timedelta(seconds=s)
            new.tick()
        new.close()
        sent = [(b["event_action"], b["dedup_key"]) for b in pd.accepted()]
        triggered = {k for a, k in sent if a == "trigger"}
        assert triggered <= {k for a, k in sent if a == "resolve"}, f"never resolved: {sent}"

"""Search by every filter an auditor asks by, in either order, page by page; and one
decision's lineage: reviews, feedback, drift and alerts open then, baseline, deployment."""

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlmodel import Session

from driftline.agent.contract import (
    DecisionPayload,
    Event,
    ModelRef,
    encode,
    new_event_id,
    validate,
)
from driftline.collector.alerting.alerts import Alert
from driftline.collector.alerting.config import Receiver, WebhookConfig
from driftline.collector.alerting.grouping import Notification
from driftline.collector.alerting.outbox import enqueue
from driftline.collector.consume.ingest import RawMessage, write_batch
from driftline.collector.drift.baselines import baseline_payload, fit_rows, for_one_event
from driftline.collector.store.search import DecisionFilter
from tests import events
from tests.api_client import api_client

START = datetime(2026, 3, 1, tzinfo=UTC)


def store(engine: Engine, batch: list[Event]) -> None:
    with Session(engine) as session:
        messages = [RawMessage("events", 0, i, None, encode(e)) for i, e in enumerate(batch)]
        write_batch(session, messages)
        session.commit()


def corpus(seed: int = 7) -> tuple[list[Event], list[dict[str, Any]]]:
    """Decisions with reviews and feedback of every kind, and what each one is, as a row."""
    rng = random.Random(seed)
    batch: list[Event] = []
    rows = []
    for i in range(40):
        model = ModelRef(name=rng.choice(["credit-risk", "fraud"]), version=rng.choice(["1", "2"]))
        automated = rng.random() < 0.5
        violations = ["/income: not a number"] if rng.random() < 0.2 else []
        decision = events.decision(
            service=rng.choice(["loan-desk", "cards"]),
            model=model,
            occurred_at=START + timedelta(minutes=rng.randrange(0, 600)),
            payload=DecisionPayload(
                inputs={"income": i},
                output="approve",
                confidence=round(rng.random(), 3),
                latency_ms=1.0,
                automated=automated,
                subject_ref=f"subject-{i % 7}",
                contract_violations=violations,
            ),
        )
        batch.append(decision)
        row = {
            "id": str(decision.decision_id),
            "service": decision.service,
            "model": model.name,
            "version": model.version,
            "at": decision.occurred_at,
            "subject": f"subject-{i % 7}",
            "automated": automated,
            "confidence": decision.payload.confidence,
            "has_violations": bool(violations),
            "reviews": [],
            "feedback": [],
        }
        for _ in range(rng.choice([0, 0, 1, 2])):
            action = rng.choice(["approve", "override", "escalate"])
            reviewer = rng.choice(["a.kim", "b.lee"])
            batch.append(
                events.review(
                    decision.decision_id,
                    model=model,
                    payload={"reviewer": reviewer, "action": action, "new_output": "x"},
                )
            )
            row["reviews"].append((action, reviewer))
        for _ in range(rng.choice([0, 1])):
            correct = rng.choice([True, False, None])
            batch.append(
                events.feedback(
                    decision.decision_id,
                    model=model,
                    payload={"ground_truth": "x", "correct": correct, "reporter": "ops"},
                )
            )
            row["feedback"].append(correct)
        rows.append(row)
    return batch, rows


def expected(rows: list[dict[str, Any]], where: dict[str, Any]) -> list[str]:
    def keep(r: dict[str, Any]) -> bool:
        action, reviewer = where.get("review_action"), where.get("reviewer")
        reviewed = any(
            (action is None or a == action) and (reviewer is None or b == reviewer)
            for a, b in r["reviews"]
        )
        return all(
            [
                where.get("service") in (None, r["service"]),
                where.get("model") in (None, r["model"]),
                where.get("version") in (None, r["version"]),
                where.get("subject") in (None, r["subject"]),
                where.get("automated") in (None, r["automated"]),
                where.get("has_violations") in (None, r["has_violations"]),
                "since" not in where or r["at"] >= where["since"],
                "until" not in where or r["at"] < where["until"],
                "min_confidence" not in where or r["confidence"] >= where["min_confidence"],
                "max_confidence" not in where or r["confidence"] <= where["max_confidence"],
                (action is None and reviewer is None) or reviewed,
                where.get("has_feedback") in (None, bool(r["feedback"])),
                where.get("feedback_wrong") in (None, False in r["feedback"]),
            ]
        )

    chosen = sorted((r for r in rows if keep(r)), key=lambda r: (r["at"], uuid.UUID(r["id"])))
    ids = [r["id"] for r in chosen]
    return ids[::-1] if where.get("order") == "desc" else ids


filters = st.fixed_dictionaries(
    {},
    optional={
        "service": st.sampled_from(["loan-desk", "cards"]),
        "model": st.sampled_from(["credit-risk", "fraud"]),
        "version": st.sampled_from(["1", "2"]),
        "subject": st.sampled_from([f"subject-{i}" for i in range(8)]),
        "automated": st.booleans(),
        "review_action": st.sampled_from(["approve", "override", "escalate"]),
        "reviewer": st.sampled_from(["a.kim", "b.lee"]),
        "has_feedback": st.booleans(),
        "feedback_wrong": st.booleans(),
        "min_confidence": st.sampled_from([0.2, 0.5]),
        "max_confidence": st.sampled_from([0.5, 0.9]),
        "has_violations": st.booleans(),
        "since": st.sampled_from([START + timedelta(hours=h) for h in (2, 5)]),
        "until": st.sampled_from([START + timedelta(hours=h) for h in (4, 8)]),
        "order": st.sampled_from(["asc", "desc"]),
    },
)


@pytest.fixture
def searchable(engine: Engine) -> tuple[Any, list[dict[str, Any]]]:
    batch, rows = corpus()
    store(engine, batch)
    return api_client(engine, role="auditor"), rows


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(where=filters, limit=st.integers(1, 7))
def test_every_filter_selects_what_it_says_page_by_page(
    searchable: tuple[Any, list[dict[str, Any]]], where: dict[str, Any], limit: int
) -> None:
    api, rows = searchable
    params = {k: _in_url(v) for k, v in where.items()} | {"limit": limit}
    seen: list[str] = []
    cursor = None
    for _ in range(100):
        page = api.get("/decisions", params=params | ({"cursor": cursor} if cursor else {}))
        assert page.status_code == 200, page.text
        seen += [item["decision_id"] for item in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == expected(rows, where)


def _in_url(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value).lower() if isinstance(value, bool) else value


def test_the_corpus_exercises_every_filter() -> None:
    _, rows = corpus()
    assert {a for r in rows for a, _ in r["reviews"]} == {"approve", "override", "escalate"}
    assert any(False in r["feedback"] for r in rows) and any(r["has_violations"] for r in rows)


def _event(document: dict[str, Any]) -> Event:
    return validate({"schema": 1, "event_id": str(new_event_id())} | document)


def _drift(kind: str, feature: str, at: datetime, baseline_id: str) -> Event:
    return _event(
        {
            "type": kind,
            "service": "driftline-detector",
            "model": events.MODEL.model_dump(),
            "occurred_at": at,
            "payload": events.drift_payload(feature, baseline_id=baseline_id),
        }
    )


def test_lineage_shows_what_stood_around_the_decision_when_it_was_taken(engine: Engine) -> None:
    decided = START + timedelta(hours=2)
    fitted = for_one_event(fit_rows([[{"income": float(i)} for i in range(50)]]), "reference.csv")
    baseline = _event(
        {
            "type": "baseline_set",
            "service": "loan-desk",
            "model": events.MODEL.model_dump(),
            "occurred_at": START,
            "payload": baseline_payload(fitted, version="3", set_by="ml-lead").model_dump(),
        }
    )
    decision = events.decision(occurred_at=decided, trace_id="ab" * 16)
    bid = fitted.baseline_id
    batch = [
        events.deployment(occurred_at=START - timedelta(days=1)),
        baseline,
        _drift("drift_detected", "income", decided - timedelta(hours=1), bid),
        _drift("drift_detected", "region", decided - timedelta(hours=1), bid),
        _drift("drift_resolved", "region", decided - timedelta(minutes=5), bid),
        _drift("drift_resolved", "income", decided + timedelta(hours=1), bid),  # after: open then
        decision,
        events.review(decision.decision_id, occurred_at=decided + timedelta(minutes=3)),
        events.feedback(decision.decision_id, occurred_at=decided + timedelta(days=2)),
    ]
    store(engine, batch)
    _alert_notified(engine, decided - timedelta(minutes=30))

    api = api_client(engine, trace_link_template="https://jaeger.example/trace/{trace_id}")
    lineage = api.get(f"/decisions/{decision.decision_id}").json()

    assert [(r["reviewer"], r["action"]) for r in lineage["reviews"]] == [("a.kim", "override")]
    assert [f["correct"] for f in lineage["feedback"]] == [False]
    assert [(v["feature"], v["state"]) for v in lineage["drifting"]] == [("income", "detected")]
    assert lineage["baseline"]["baseline_id"] == bid and lineage["baseline"]["set_by"] == "ml-lead"
    assert lineage["deployment"] == {
        "service": "loan-desk",
        "deployed_at": lineage["deployment"]["deployed_at"],
        "owner": "risk-ml",
        "approved_by": "committee",
    }
    assert [(a["receiver"], a["status"], a["labels"]["feature"]) for a in lineage["alerts"]] == [
        ("ml-oncall", "firing", "income")
    ]
    assert lineage["trace_url"] == f"https://jaeger.example/trace/{'ab' * 16}"
    assert lineage["ledger"]["topic"] == "events" and lineage["ledger"]["erased"] is False


def _alert_notified(engine: Engine, at: datetime) -> None:
    """An alert about credit-risk 3 in the outbox, and the alert_notified that says it went."""
    labels = {
        "alertname": "DriftDetected",
        "model": "credit-risk",
        "version": "3",
        "feature": "income",
    }
    notification = Notification(
        receiver="ml-oncall",
        group_key='{}:{model="credit-risk"}',
        group_labels={"model": "credit-risk"},
        alerts=(Alert(labels=labels, annotations={}, starts_at=at),),
    )
    receiver = Receiver(
        name="ml-oncall", webhook_configs=[WebhookConfig(url="http://127.0.0.1:9/")]
    )
    with Session(engine) as session:
        (message,) = enqueue(session, notification, receiver, "http://driftline", at)
        session.commit()
        notified = _event(
            {
                "type": "alert_notified",
                "service": "driftline-router",
                "model": events.MODEL.model_dump(),
                "occurred_at": at,
                "payload": {
                    "notification_id": message.id,
                    "receiver": "ml-oncall",
                    "integration": "webhook[0]",
                    "group_key": message.group_key,
                    "status": "firing",
                    "fingerprints": message.fingerprints,
                    "attempts": 1,
                },
            }
        )
    store(engine, [notified])


@given(number=st.floats() | st.integers(), written=st.sampled_from([str, repr, "{:e}".format]))
def test_a_number_is_never_read_as_a_time(number: float, written: Any) -> None:
    """pydantic reads a number, or text of one (``-4.6e-24``, ``inf``), as seconds since 1970:
    a time must be an ISO 8601 date-time, as the schema says (the fuzzer found ``4.6e-24``)."""
    for value in (number, written(number)):
        with pytest.raises(ValidationError, match="not a number"):
            DecisionFilter(since=value)
    DecisionFilter(since="2026-12-01T00:00:00Z")

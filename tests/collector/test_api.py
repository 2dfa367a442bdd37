"""The API: a decision's trail, filtered search, and cursor pagination that neither skips nor
repeats while new decisions arrive."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from driftline.agent.contract import Event, ModelRef, encode
from driftline.collector.consume.ingest import RawMessage, write_batch
from tests import events
from tests.api_client import api_client

START = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def api(engine: Engine) -> Iterator[TestClient]:
    with api_client(engine) as client:
        yield client


def store(engine: Engine, batch: list[Event]) -> None:
    with Session(engine) as session:
        write_batch(
            session, [RawMessage("events", 0, i, None, encode(e)) for i, e in enumerate(batch)]
        )
        session.commit()


def test_trail_has_the_decision_its_reviews_and_feedback(engine: Engine, api: TestClient) -> None:
    decision = events.decision()
    review = events.review(decision.decision_id)
    feedback = events.feedback(decision.decision_id)
    store(engine, [decision, review, feedback, events.decision()])

    response = api.get(f"/decisions/{decision.decision_id}")

    assert response.status_code == 200
    trail = response.json()
    assert trail["decision"]["decision_id"] == str(decision.decision_id)
    assert trail["decision"]["confidence"] == 0.91
    assert trail["decision"]["inputs"] == {"income": 52_000, "region": "north"}
    assert [r["event_id"] for r in trail["reviews"]] == [str(review.event_id)]
    assert trail["reviews"][0]["new_output"] == "decline"
    assert [f["event_id"] for f in trail["feedback"]] == [str(feedback.event_id)]


def test_unknown_decision_is_404(api: TestClient) -> None:
    response = api.get("/decisions/01a20127-ffa7-7f64-922e-f630180ec2b1")
    assert response.status_code == 404
    assert "no decision" in response.json()["detail"]


def test_search_filters_by_model_version_and_time(engine: Engine, api: TestClient) -> None:
    def at(minutes: int, name: str = "credit-risk", version: str = "3") -> Event:
        model = ModelRef(name=name, version=version)
        return events.decision(occurred_at=START + timedelta(minutes=minutes), model=model)

    wanted = [at(10), at(20)]
    store(engine, [at(0), *wanted, at(30), at(15, version="4"), at(15, name="fraud")])

    response = api.get(
        "/decisions",
        params={
            "model": "credit-risk",
            "version": "3",
            "since": (START + timedelta(minutes=10)).isoformat(),
            "until": (START + timedelta(minutes=30)).isoformat(),
        },
    )

    assert response.status_code == 200
    found = [item["decision_id"] for item in response.json()["items"]]
    assert found == [str(e.decision_id) for e in wanted]
    assert response.json()["next_cursor"] is None


def test_pages_cover_every_decision_once_while_new_ones_arrive(
    engine: Engine, api: TestClient
) -> None:
    first = [events.decision(occurred_at=START + timedelta(seconds=i)) for i in range(23)]
    # Several decisions at the same instant: the id breaks the tie.
    first += [events.decision(occurred_at=START + timedelta(seconds=5)) for _ in range(4)]
    store(engine, first)
    later = [events.decision(occurred_at=START + timedelta(hours=1, seconds=i)) for i in range(5)]

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 6} | ({"cursor": cursor} if cursor else {})
        page = api.get("/decisions", params=params).json()
        seen += [item["decision_id"] for item in page["items"]]
        pages += 1
        if pages == 2:
            store(engine, later)
        cursor = page["next_cursor"]
        if cursor is None:
            break

    expected = sorted(first + later, key=lambda e: (e.occurred_at, e.decision_id))
    assert seen == [str(e.decision_id) for e in expected]


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "not-a-cursor"},
        {"since": "2026-03-01T00:00:00"},  # no timezone: ambiguous
        {"limit": 0},
        {"limit": 10_000},
        {"model": "x" * 500},
    ],
)
def test_bad_search_parameters_are_422(api: TestClient, params: dict[str, object]) -> None:
    assert api.get("/decisions", params=params).status_code == 422


def test_health_reports_the_database(api: TestClient) -> None:
    response = api.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_openapi_docs_are_served(api: TestClient) -> None:
    assert api.get("/docs").status_code == 200
    assert "/decisions/{decision_id}" in api.get("/openapi.json").json()["paths"]

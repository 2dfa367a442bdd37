"""A decision travels agent → Kafka → collector → ledger → API, on SQLite and PostgreSQL."""

from collections.abc import Callable

from sqlalchemy import Engine
from sqlmodel import Session

from driftline.agent import Driftline
from driftline.collector.runtime.broker import EmbeddedBroker
from driftline.collector.store import ledger, queries
from tests.api_client import api_client
from tests.waiting import wait_for

MODEL = {"model": "credit-risk", "version": "3"}


def test_decisions_reviews_and_feedback_are_queryable_through_the_api(
    broker: EmbeddedBroker, topic: str, engine: Engine, run_collector: Callable[[], None]
) -> None:
    run_collector()
    with Driftline(
        service="loan-desk", kafka_bootstrap_servers=broker.bootstrap_servers, topic=topic
    ) as agent:
        agent.record_deployment(**MODEL, owner="risk-ml", approved_by="committee")
        ids = [
            agent.record_decision(
                **MODEL,
                inputs={"income": 40_000 + n, "region": "north"},
                output="approve" if n % 3 else "decline",
                confidence=0.5 + n / 1000,
                latency_ms=10.0,
                automated=n % 2 == 0,
                subject_ref=f"applicant-{n}",
            )
            for n in range(300)
        ]
        for decision_id in ids[::10]:
            agent.record_review(
                decision_id, **MODEL, reviewer="a.kim", action="override", new_output="decline"
            )
            agent.record_feedback(decision_id, **MODEL, reporter="collections", correct=False)
        report = agent.flush(timeout_s=30)
    assert report.ok and report.delivered == 1 + 300 + 60

    def stored() -> int:
        with Session(engine) as session:
            return queries.count_ledger_entries(session=session)

    wait_for(stored, lambda n: n >= 361, what="all events in the ledger")

    with api_client(engine) as api:
        trail = api.get(f"/decisions/{ids[10]}").json()
        assert trail["decision"]["subject_ref"] == "applicant-10"
        assert len(trail["decision"]["trace_id"]) == 32
        assert [r["action"] for r in trail["reviews"]] == ["override"]
        assert [f["correct"] for f in trail["feedback"]] == [False]
        assert api.get(f"/decisions/{ids[11]}").json()["reviews"] == []

        listed: list[str] = []
        cursor = None
        while True:
            params = {"model": "credit-risk", "version": "3", "limit": 100}
            page = api.get("/decisions", params=params | ({"cursor": cursor} if cursor else {}))
            listed += [item["decision_id"] for item in page.json()["items"]]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
        assert sorted(listed) == sorted(str(i) for i in ids)

    with Session(engine) as session:
        verification = ledger.verify(session)
    assert verification.intact and verification.entries == 361
    assert stored() == 361

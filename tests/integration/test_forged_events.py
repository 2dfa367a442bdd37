"""Provenance, attacked from the log itself: events of the types only Driftline's own
components write (a go-live "go", a deployment, a passing load test, an evaluation set, a
passing evaluation run, agreed thresholds), produced straight to the
Kafka topic with a plain producer, bypassing the agent, the sidecar and the SDK. Unsigned, signed
by a key the collector does not trust, or signed and then altered, each is a dead letter naming
why: never in the ledger, never in a read model, never counted by the go-live gate."""

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from sqlalchemy import Engine, func
from sqlmodel import Session, SQLModel, col, select

from driftline.agent import Driftline
from driftline.agent.contract import Event, encode
from driftline.agent.provenance import ProducerKey
from driftline.collector.golive.gate import Evaluation, evaluate
from driftline.collector.golive.thresholds import Technical, Threshold
from driftline.collector.runtime.broker import EmbeddedBroker
from driftline.collector.store.models import (
    AgreedThresholds,
    DeadLetter,
    EvaluationCase,
    EvaluationRun,
    EvaluationSet,
    LedgerEntry,
    LoadTest,
    ModelDeployment,
    ReadinessEvaluation,
)
from tests import events
from tests.api_client import api_client
from tests.waiting import wait_for


def forgeries() -> list[Event]:
    """A go-live "go" no gate gave, a deployment naming any owner, a load test never run, and
    an evaluation set, case and passing run no one registered or ran, thresholds no one agreed."""
    made = [events.readiness(), events.deployment(service="anyone"), events.load_test()]
    return [*made, *events.evaluations()]


def produce(bootstrap_servers: str, topic: str, messages: list[bytes]) -> None:
    """Straight to the topic: no agent, no sidecar, no SDK, just a Kafka client."""
    producer = Producer({"bootstrap.servers": bootstrap_servers, "enable.idempotence": True})
    for value in messages:
        producer.produce(topic, value=value, key=b"model:credit-risk")
    assert producer.flush(30) == 0


def settled(engine: Engine, total: int) -> tuple[int, int]:
    """Wait until ``total`` messages are either in the ledger or dead letters."""

    def counts() -> tuple[int, int]:
        with Session(engine) as session:
            return (
                session.exec(select(func.count()).select_from(LedgerEntry)).one(),
                session.exec(select(func.count()).select_from(DeadLetter)).one(),
            )

    return wait_for(counts, lambda c: sum(c) >= total, what=f"{total} messages consumed")


def rows(engine: Engine, table: type[SQLModel]) -> list[SQLModel]:
    with Session(engine) as session:
        return list(session.exec(select(table)).all())


def gate(engine: Engine) -> Evaluation:
    """The gate's load criteria for credit-risk 3: a load test at 3 x 1,000/s, no errors."""
    threshold = Threshold(
        model="credit-risk", min_decisions=1,
        technical=Technical(load_peak_per_s=1_000.0, max_error_rate=0.0),
    )  # fmt: skip
    with Session(engine) as session:
        return evaluate(
            session, threshold, model="credit-risk", version="3", now=datetime.now(UTC),
            alerting=None, ledger_intact=lambda: True,
        )  # fmt: skip


def assert_never_believed(engine: Engine) -> None:
    """No read model holds a forgery, the gate counts none, the API serves none."""
    assert rows(engine, ModelDeployment) == []
    assert rows(engine, ReadinessEvaluation) == []
    assert rows(engine, LoadTest) == []
    for table in (EvaluationSet, EvaluationCase, EvaluationRun, AgreedThresholds):
        assert rows(engine, table) == []
    criteria = {c.name: c for c in gate(engine).criteria}
    assert criteria["load test"].measured == "none recorded"
    assert criteria["load test"].status == "not enough data"
    assert criteria["error rate"].status == "not enough data"
    with api_client(engine, role="auditor") as api:
        assert api.get("/readiness/credit-risk/3").status_code == 404


def test_unsigned_governance_events_produced_straight_to_kafka_are_dead_letters(
    broker: EmbeddedBroker, topic: str, engine: Engine, run_collector: Callable[[], None]
) -> None:
    forged = forgeries()
    decision = events.decision()
    produce(broker.bootstrap_servers, topic, [encode(e) for e in [*forged, decision]])
    run_collector()

    stored, dead = settled(engine, len(forged) + 1)

    assert (stored, dead) == (1, len(forged))  # the decision needs no signature
    with Session(engine) as session:
        (only,) = session.exec(select(LedgerEntry.event_id)).all()
        letters = session.exec(select(DeadLetter).order_by(col(DeadLetter.kafka_offset))).all()
    assert only == decision.event_id
    reasons = sorted(letter.reason for letter in letters)
    for kind in sorted({event.type for event in forged}):
        wanted = f"{kind}: not signed by a trusted Driftline producer key (forged?)"
        assert any(reason.startswith(wanted) for reason in reasons), reasons
    assert_never_believed(engine)


def signed(event: Event, key: ProducerKey) -> dict[str, Any]:
    document = event.model_dump(mode="json", by_alias=True)
    return document | {"provenance": key.sign(document)}


def test_events_signed_by_a_key_the_collector_does_not_trust_are_dead_letters(
    broker: EmbeddedBroker, topic: str, engine: Engine, run_collector: Callable[[], None]
) -> None:
    stranger = ProducerKey.generate()  # well formed, and valid: just not trusted
    forged = forgeries()
    produce(broker.bootstrap_servers, topic, [json.dumps(signed(e, stranger)).encode()
                                              for e in forged])  # fmt: skip
    run_collector()

    assert settled(engine, len(forged)) == (0, len(forged))
    with Session(engine) as session:
        reasons = [letter.reason for letter in session.exec(select(DeadLetter)).all()]
    assert all("not signed by a trusted Driftline producer key (forged?)" in r for r in reasons)
    assert all(f"key '{stranger.key_id}' is not one the collector trusts" in r for r in reasons)
    assert_never_believed(engine)


def test_a_trusted_signature_over_other_content_is_a_dead_letter(
    broker: EmbeddedBroker, topic: str, engine: Engine, run_collector: Callable[[], None]
) -> None:
    trusted = ProducerKey.load(Path(os.environ["DRIFTLINE_PRODUCER_KEY_FILE"]))
    failed_test = events.load_test(payload=events.load_test().payload.model_copy(
        update={"passed": False, "rate_per_s": 300.0}))  # fmt: skip
    document = signed(failed_test, trusted)
    go = signed(events.readiness(), trusted)
    failed_run = signed(events.evaluation_run(payload=events.evaluation_run().payload.model_copy(
        update={"passed": False})), trusted)  # fmt: skip
    altered = [
        document | {"payload": document["payload"] | {"passed": True, "rate_per_s": 9_000.0}},
        document | {"service": "someone-else"},
        go | {"model": {"name": "credit-risk", "version": "4"},
              "payload": go["payload"] | {"version": "4"}},  # the same "go", for another version
        failed_run | {"payload": failed_run["payload"] | {"passed": True}},
    ]  # fmt: skip
    produce(broker.bootstrap_servers, topic, [json.dumps(d).encode() for d in altered])
    run_collector()

    assert settled(engine, len(altered)) == (0, len(altered))
    with Session(engine) as session:
        reasons = [letter.reason for letter in session.exec(select(DeadLetter)).all()]
    wanted = f"the signature of key {trusted.key_id} does not match the content"
    assert all(wanted in reason for reason in reasons), reasons
    assert_never_believed(engine)


def test_events_signed_by_a_trusted_producer_are_stored_and_counted(
    broker: EmbeddedBroker, topic: str, engine: Engine, run_collector: Callable[[], None]
) -> None:
    """The same kinds of event, from a component: signed by its agent (record_signed), or by
    the key straight (as any JSON of the signed document, here indented)."""
    trusted = ProducerKey.load(Path(os.environ["DRIFTLINE_PRODUCER_KEY_FILE"]))
    with Driftline(
        service="driftline-loadtest", kafka_bootstrap_servers=broker.bootstrap_servers,
        topic=topic,
    ) as component:  # fmt: skip
        made = (events.load_test(), events.deployment(), events.evaluation_run(),
                events.thresholds_agreed())  # fmt: skip
        for event in made:
            document = event.model_dump(mode="json", by_alias=True)
            assert component.record_signed(component.complete_event(document))
        assert component.flush().delivered == len(made)
    straight = json.dumps(signed(events.readiness(), trusted), indent=2, ensure_ascii=True)
    produce(broker.bootstrap_servers, topic, [straight.encode()])
    run_collector()

    assert settled(engine, len(made) + 1) == (len(made) + 1, 0)
    for table in (ModelDeployment, ReadinessEvaluation, EvaluationRun, AgreedThresholds):
        assert len(rows(engine, table)) == 1
    with Session(engine) as session:
        stored = [json.loads(b) for b in session.exec(select(LedgerEntry.event_bytes)).all()]
    assert {entry["provenance"]["key_id"] for entry in stored} == {trusted.key_id}
    criteria = {c.name: c for c in gate(engine).criteria}
    assert criteria["load test"].status == "pass"
    assert criteria["load test"].measured == "passed at 3000/s"
    assert criteria["error rate"].status == "pass"
    with api_client(engine, role="auditor") as api:
        assert api.get("/readiness/credit-risk/3").json()["verdict"] == "go"

"""The evaluation events (a set registered, a case scored, a run completed, go-live thresholds
agreed): each reads back from its bytes, is stored and projected into its read model when a
trusted producer signed it (and only then), is rebuilt from the ledger to the same row, and a
payload that breaks the contract is refused naming the field, on SQLite and PostgreSQL."""

import json
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlmodel import Session, SQLModel, select

from driftline.agent.contract import (
    ContractError,
    EvaluationCaseScoredPayload,
    Event,
    ModelRef,
    component_event,
    decode,
    encode,
    wire_bytes,
)
from driftline.agent.provenance import ProducerKey, TrustedProducers
from driftline.collector.audit import row_verification
from driftline.collector.consume.ingest import BatchOutcome, RawMessage, write_batch
from driftline.collector.store.models import (
    AgreedThresholds,
    EvaluationCase,
    EvaluationRun,
    EvaluationSet,
)
from driftline.collector.store.projections import READ_MODELS, TABLE_OF_TYPE
from driftline.collector.store.replay import rebuild
from tests import events

KEY = ProducerKey.generate()
TRUSTED = TrustedProducers([KEY.public_key])
TABLES: tuple[type[SQLModel], ...] = (
    EvaluationSet, EvaluationCase, EvaluationRun, AgreedThresholds,
)  # fmt: skip
MAKERS: dict[str, Callable[[], Event]] = {
    "evaluation_set_registered": events.evaluation_set,
    "evaluation_case_scored": events.evaluation_case,
    "evaluation_completed": events.evaluation_run,
    "thresholds_agreed": events.thresholds_agreed,
}


def store(engine: Engine, batch: list[Event]) -> BatchOutcome:
    """Through the collector's own write path, with the provenance check in force."""
    with Session(engine) as session:
        messages = [RawMessage("events", 0, n, None, encode(e)) for n, e in enumerate(batch)]
        outcome = write_batch(session, messages, producers=TRUSTED)
        session.commit()
    return outcome


def tables(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    with Session(engine) as session:
        return {
            str(table.__tablename__): sorted(
                (row.model_dump(mode="json") for row in session.exec(select(table))),
                key=json.dumps,
            )
            for table in TABLES
        }


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_each_evaluation_event_reads_back_from_its_canonical_and_wire_bytes(kind: str) -> None:
    event = KEY.seal(MAKERS[kind]())
    assert event.type == kind
    assert decode(encode(event)) == event
    assert encode(decode(wire_bytes(event))) == encode(event)


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_a_component_builds_each_evaluation_event_around_its_payload(kind: str) -> None:
    made = MAKERS[kind]()
    built = component_event(kind, made.payload, service="driftline-evaluate", model=made.model)
    assert type(built) is type(made) and built.payload == made.payload


def test_a_payload_of_another_type_or_version_is_the_components_mistake() -> None:
    case = events.evaluation_case().payload
    with pytest.raises(ValidationError):
        component_event("evaluation_completed", case, service="s", model=events.MODEL)
    with pytest.raises(ValidationError, match=r"differs from model\.version"):
        component_event(
            "evaluation_case_scored", case, service="s", model=ModelRef(name="m", version="4")
        )


def test_each_evaluation_event_goes_to_its_own_read_model() -> None:
    assert [TABLE_OF_TYPE[kind] for kind in MAKERS] == list(TABLES)
    assert set(TABLES) <= set(READ_MODELS)


def test_signed_evaluation_events_are_stored_and_projected_into_their_tables(
    engine: Engine,
) -> None:
    completed, agreed_event = events.evaluation_run(), events.thresholds_agreed()
    batch = [KEY.seal(e) for e in (events.evaluation_set(), events.evaluation_case(),
                                   completed, agreed_event)]  # fmt: skip
    assert store(engine, batch).stored == len(batch)
    with Session(engine) as session:
        registered = session.exec(select(EvaluationSet)).one()
        case = session.exec(select(EvaluationCase)).one()
        run = session.exec(select(EvaluationRun)).one()
        agreed = session.exec(select(AgreedThresholds)).one()
        check = row_verification.check_all(session)
    assert check.intact and check.rows == len(batch), check.tampering  # each row as projected

    assert (registered.model_name, registered.set_name, registered.set_version) == (
        "credit-risk", "loans-golden", "2",
    )  # fmt: skip
    assert registered.sha256 == case.set_sha256 == run.set_sha256 == events.EVALUATION_SET_SHA256
    assert (registered.cases, registered.must_refuse) == (120, 20)
    assert registered.thresholds[1] == {
        "metric": "refusal_recall", "tag": "refusal", "minimum": 0.95, "maximum": None,
    }  # fmt: skip

    assert case.run_id == run.run_id == events.EVALUATION_RUN
    assert (case.model_name, case.model_version, case.case_id) == ("credit-risk", "3", "refuse-007")
    assert (case.must_refuse, case.refused, case.passed, case.error) == (True, True, True, None)
    assert case.output == '{"answer":"I cannot help with that."}'
    assert case.scores == [{"name": "judge", "value": 0.92, "source": "model", "kind": "numeric"}]

    assert (run.cases, run.errors, run.passed) == (120, 1, True)
    assert run.started_at == completed.payload.started_at
    assert [(f["metric"], f["tag"], f["value"], f["status"]) for f in run.figures] == [
        ("pass_rate", None, 0.95, "pass"),
        ("refusal_recall", "refusal", 1.0, "pass"),
        ("score:judge", None, None, None),
    ]

    assert (agreed.model_name, agreed.model_version) == ("credit-risk", "*")
    assert (agreed.threshold, agreed.deadline) == (
        agreed_event.payload.threshold, agreed_event.payload.deadline,
    )  # fmt: skip
    assert agreed.stage == "go-live"
    assert agreed.decision_maker == "head-of-credit"


def test_rebuilding_from_the_ledger_gives_the_same_evaluation_rows(engine: Engine) -> None:
    failing = events.evaluation_case(
        payload=events.evaluation_case().payload.model_copy(
            update={"refused": False, "passed": False, "output": None, "latency_ms": None,
                    "error": "timed out after 30 s", "reason": "no answer", "scores": None}
        )
    )  # fmt: skip
    batch = [*events.evaluations(), failing]
    store(engine, [KEY.seal(event) for event in batch])
    live = tables(engine)
    assert [len(rows) for rows in live.values()] == [1, 2, 1, 1]
    with Session(engine) as session:
        assert rebuild(session) == len(batch)
        session.commit()
    assert tables(engine) == live


def test_unsigned_evaluation_events_are_dead_letters_and_reach_no_table(engine: Engine) -> None:
    stranger = ProducerKey.generate()
    batch = [*events.evaluations(), *(stranger.seal(e) for e in events.evaluations())]
    outcome = store(engine, batch)
    assert (outcome.stored, outcome.dead_letters, outcome.unproven) == (0, 8, 8)
    assert all(rows == [] for rows in tables(engine).values())


def _set_threshold(**fields: Any) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        document["payload"]["thresholds"][0] = {"metric": "pass_rate", **fields}

    return change


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = document
        for step in parents:
            node = node[int(step)] if isinstance(node, list) else node[step]
        node[last] = value

    return change


@pytest.mark.parametrize(
    ("kind", "change", "field", "reason"),
    [
        ("evaluation_set_registered", _set_threshold(), "payload.thresholds.0",
         "the threshold on pass_rate must give minimum or maximum"),
        ("evaluation_set_registered", _set_threshold(minimum=0.9, maximum=0.5),
         "payload.thresholds.0", "the threshold on pass_rate has minimum 0.9 over maximum 0.5"),
        ("evaluation_set_registered", _set("payload.sha256", "E5" * 32), "payload.sha256",
         "should match pattern"),
        ("evaluation_set_registered", _set("payload.tags", ["a"] * 1_001), "payload.tags",
         "at most 1000 items"),
        ("evaluation_case_scored", _set("payload.output", "x" * 4_001), "payload.output",
         "at most 4000 characters"),
        ("evaluation_case_scored", _set("payload.latency_ms", -1.0), "payload.latency_ms",
         "greater than or equal to 0"),
        ("evaluation_case_scored", _set("payload.scores", [{"name": "judge", "value": 1,
         "source": "model"}] * 2), "payload", "each score is named once; twice: judge"),
        ("evaluation_case_scored", _set("payload.version", "4"), "message",
         "payload.version '4' differs from model.version '3'"),
        ("evaluation_completed", _set("payload.version", "4"), "message",
         "payload.version '4' differs from model.version '3'"),
        ("evaluation_completed", _set("payload.figures.0.status", "ok"),
         "payload.figures.0.status", "Input should be 'pass', 'fail' or 'not enough data'"),
        ("evaluation_completed", _set("payload.figures.0.p99", 1.0), "payload.figures.0.p99",
         "Extra inputs are not permitted"),
        ("thresholds_agreed", _set("model.version", "3"), "message",
         "payload.version '*' differs from model.version '3'"),
        ("thresholds_agreed", _set("payload.deadline", "2026-09-30T00:00:00"),
         "payload.deadline", "must carry a timezone"),
    ],
)  # fmt: skip
def test_an_evaluation_event_breaking_the_contract_is_refused_naming_the_field(
    kind: str, change: Callable[[dict[str, Any]], None], field: str, reason: str
) -> None:
    document = MAKERS[kind]().model_dump(mode="json", by_alias=True)
    change(document)
    with pytest.raises(ContractError) as refused:
        decode(json.dumps(document).encode())
    assert [name for name, _ in refused.value.problems] == [field]
    assert reason in refused.value.problems[0][1]


def test_an_output_of_exactly_4000_characters_is_kept() -> None:
    payload = events.evaluation_case().payload.model_copy(update={"output": "x" * 4_000})
    assert EvaluationCaseScoredPayload.model_validate(payload.model_dump()).output == "x" * 4_000

"""The agent SDK against the real embedded broker: what it sends, the spans it makes, and how
it reports what it could not deliver without ever raising into the service."""

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from driftline.agent import Driftline, Embeddings, Score
from driftline.agent.contract import (
    DecisionEvent,
    FeedbackEvent,
    ModelDeployedEvent,
    ReviewEvent,
    decode,
)
from driftline.collector.runtime.broker import EmbeddedBroker, free_port
from tests import events
from tests.topic_reader import read_topic

MODEL = {"model": "credit-risk", "version": "3"}
MODEL_REF = {"name": "credit-risk", "version": "3"}


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def client(broker: EmbeddedBroker, topic: str, spans: InMemorySpanExporter) -> Iterator[Driftline]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    with Driftline(
        service="loan-desk",
        kafka_bootstrap_servers=broker.bootstrap_servers,
        topic=topic,
        tracer_provider=provider,
    ) as driftline:
        yield driftline


def test_every_kind_of_event_reaches_the_topic_keyed_by_decision(
    client: Driftline, broker: EmbeddedBroker, topic: str
) -> None:
    client.record_deployment(**MODEL, owner="risk-ml", approved_by="committee")
    decision_id = client.record_decision(
        **MODEL, inputs={"income": 52_000}, output="approve", confidence=0.91, latency_ms=12.5
    )
    client.record_review(decision_id, **MODEL, reviewer="a.kim", action="approve")
    client.record_feedback(decision_id, **MODEL, reporter="collections", correct=True)

    report = client.flush()

    assert report.ok and report.delivered == 4
    records = read_topic(broker.bootstrap_servers, topic, 4)
    decoded = [decode(record.value) for record in records]
    kinds = {type(event) for event in decoded}
    assert kinds == {ModelDeployedEvent, DecisionEvent, ReviewEvent, FeedbackEvent}
    about_decision = [r for r in records if r.key == str(decision_id).encode()]
    assert len(about_decision) == 3
    assert len({r.partition for r in about_decision}) == 1
    ordered = [type(decode(r.value)) for r in sorted(about_decision, key=lambda r: r.offset)]
    assert ordered == [DecisionEvent, ReviewEvent, FeedbackEvent]


def test_a_decision_gets_one_span_whose_ids_are_in_the_event(
    client: Driftline, broker: EmbeddedBroker, topic: str, spans: InMemorySpanExporter
) -> None:
    decision_id = client.record_decision(
        **MODEL, inputs={}, output="approve", confidence=0.9, latency_ms=40.0, automated=False
    )
    assert client.flush().ok

    event = decode(read_topic(broker.bootstrap_servers, topic, 1)[0].value)
    (span,) = spans.get_finished_spans()
    assert span.context is not None and span.start_time is not None and span.end_time is not None
    assert event.trace_id == format(span.context.trace_id, "032x")
    assert event.span_id == format(span.context.span_id, "016x")
    assert span.attributes is not None
    assert span.name == "decision credit-risk"
    assert span.attributes["driftline.model.name"] == "credit-risk"
    assert not any(name.startswith("gen_ai.") for name in span.attributes)  # not generative
    assert span.attributes["driftline.decision_id"] == str(decision_id)
    assert span.attributes["driftline.automated"] is False
    assert (span.end_time - span.start_time) == pytest.approx(40e6, rel=1e-3)


def test_a_decision_joins_the_callers_trace(
    client: Driftline, broker: EmbeddedBroker, topic: str, spans: InMemorySpanExporter
) -> None:
    service_tracer = TracerProvider().get_tracer("the-service")
    with service_tracer.start_as_current_span("handle request") as request_span:
        client.record_decision(**MODEL, inputs={}, output=1, confidence=0.5, latency_ms=1.0)
    assert client.flush().ok

    (span,) = spans.get_finished_spans()
    assert span.parent is not None
    assert span.parent.span_id == request_span.get_span_context().span_id
    assert span.context is not None
    assert span.context.trace_id == request_span.get_span_context().trace_id


def test_the_context_manager_times_the_call_and_keeps_what_it_was_told(
    client: Driftline, broker: EmbeddedBroker, topic: str
) -> None:
    with client.decision(**MODEL, inputs={"x": 1}, subject_ref="applicant-7") as scope:
        time.sleep(0.05)
        scope.output = "decline"
        scope.confidence = 0.66
    assert client.flush().ok

    event = decode(read_topic(broker.bootstrap_servers, topic, 1)[0].value)
    assert isinstance(event, DecisionEvent)
    assert event.decision_id == scope.decision_id
    assert event.payload.output == "decline"
    assert event.payload.confidence == 0.66
    assert event.payload.subject_ref == "applicant-7"
    assert 50 <= event.payload.latency_ms < 1000


def test_a_call_that_raises_is_not_a_decision(client: Driftline) -> None:
    with pytest.raises(ZeroDivisionError), client.decision(**MODEL, inputs={}) as scope:
        scope.output = 1 / 0
    assert client.flush().recorded == 0


def test_the_decorator_records_arguments_result_and_confidence(
    client: Driftline, broker: EmbeddedBroker, topic: str
) -> None:
    @client.traced(**MODEL, confidence=lambda result: result[1], output=lambda result: result[0])
    def predict(income: int, region: str = "north") -> tuple[str, float]:
        return ("approve", 0.8)

    assert predict(52_000) == ("approve", 0.8)
    assert client.flush().ok

    event = decode(read_topic(broker.bootstrap_servers, topic, 1)[0].value)
    assert isinstance(event, DecisionEvent)
    assert event.payload.inputs == {"income": 52_000}
    assert (event.payload.output, event.payload.confidence) == ("approve", 0.8)


def test_invalid_data_is_reported_by_flush_not_raised(client: Driftline) -> None:
    client.record_decision(**MODEL, inputs={}, output=1, confidence=1.7, latency_ms=1.0)
    client.record_decision(**MODEL, inputs={}, output=1, confidence=0.7, latency_ms=1.0)

    report = client.flush()

    assert (report.delivered, report.failed) == (1, 1)
    assert "payload.confidence" in report.failures[0].reason
    assert not report.ok


def test_an_unreachable_broker_never_blocks_the_caller_and_events_wait_on_disk() -> None:
    nobody = f"127.0.0.1:{free_port()}"
    client = Driftline(service="s", kafka_bootstrap_servers=nobody, delivery_timeout_ms=1_000)
    started = time.perf_counter()
    ids = [
        client.record_decision(**MODEL, inputs={}, output=1, confidence=0.5, latency_ms=1.0)
        for _ in range(20)
    ]
    recording_s = time.perf_counter() - started

    report = client.close(timeout_s=3)

    assert len(set(ids)) == 20
    assert recording_s < 1.0  # generous: the point is that no call waits for the network
    assert (report.delivered, report.failed, report.spooled, report.pending) == (0, 0, 20, 20)
    assert not report.ok


def test_a_full_queue_drops_and_counts_instead_of_blocking() -> None:
    nobody = f"127.0.0.1:{free_port()}"
    client = Driftline(
        service="s", kafka_bootstrap_servers=nobody, delivery_timeout_ms=1_000, queue_size=5
    )
    for _ in range(200):
        client.record_decision(**MODEL, inputs={}, output=1, confidence=0.5, latency_ms=1.0)

    report = client.close(timeout_s=3)

    assert report.dropped > 0
    assert report.recorded + report.dropped == 200
    assert report.spooled == report.recorded


def test_returned_ids_are_uuid7(client: Driftline) -> None:
    decision_id = client.record_decision(**MODEL, inputs={}, output=1, confidence=0.5, latency_ms=1)
    assert isinstance(decision_id, uuid.UUID) and decision_id.version == 7


def test_without_an_exporter_the_event_still_carries_the_callers_trace(
    broker: EmbeddedBroker, topic: str
) -> None:
    service_tracer = TracerProvider().get_tracer("the-service")
    with Driftline(
        service="s", kafka_bootstrap_servers=broker.bootstrap_servers, topic=topic
    ) as agent:
        with service_tracer.start_as_current_span("handle request") as request_span:
            agent.record_decision(**MODEL, inputs={}, output=1, confidence=0.5, latency_ms=1.0)
        agent.record_decision(**MODEL, inputs={}, output=1, confidence=0.5, latency_ms=1.0)
        assert agent.flush().ok

    events = [decode(r.value) for r in read_topic(broker.bootstrap_servers, topic, 2)]
    trace_ids = {event.trace_id for event in events}
    assert format(request_span.get_span_context().trace_id, "032x") in trace_ids
    assert len(trace_ids) == 2  # the call outside any span started a trace of its own
    assert all(event.span_id and len(event.span_id) == 16 for event in events)


def test_reviews_and_feedback_are_evaluation_results_in_the_decisions_trace(
    client: Driftline, broker: EmbeddedBroker, topic: str, spans: InMemorySpanExporter
) -> None:
    decision_id = client.record_decision(
        **MODEL, inputs={}, output="approve", confidence=0.6, latency_ms=5.0
    )
    client.record_review(
        decision_id, **MODEL, reviewer="a.kim", action="override", new_output="decline",
        rationale="applicant wrote from jane.doe@example.com",
    )  # fmt: skip
    client.record_feedback(decision_id, **MODEL, reporter="collections", correct=False)
    assert client.flush().ok

    decision_span, review_span, feedback_span = spans.get_finished_spans()
    for evaluation in (review_span, feedback_span):
        assert evaluation.parent is not None and decision_span.context is not None
        assert evaluation.parent.span_id == decision_span.context.span_id
        assert evaluation.context is not None
        assert evaluation.context.trace_id == decision_span.context.trace_id
        (event,) = evaluation.events
        assert event.name == "gen_ai.evaluation.result"
        assert event.attributes is not None
        assert event.attributes["gen_ai.response.id"] == str(decision_id)
    assert dict(review_span.events[0].attributes or {}) == {
        "gen_ai.evaluation.name": "human_review",
        "gen_ai.evaluation.score.label": "override",
        "gen_ai.evaluation.explanation": "applicant wrote from [email]",
        "gen_ai.response.id": str(decision_id),
    }
    feedback_attributes = feedback_span.events[0].attributes or {}
    assert feedback_attributes["gen_ai.evaluation.score.label"] == "incorrect"
    assert feedback_attributes["gen_ai.evaluation.score.value"] == 0.0
    events = [decode(r.value) for r in read_topic(broker.bootstrap_servers, topic, 3)]
    assert len({event.trace_id for event in events}) == 1


def test_without_an_exporter_a_review_still_joins_its_decisions_trace(
    broker: EmbeddedBroker, topic: str
) -> None:
    with Driftline(
        service="s", kafka_bootstrap_servers=broker.bootstrap_servers, topic=topic
    ) as agent:
        decision_id = agent.record_decision(
            **MODEL, inputs={}, output=1, confidence=0.5, latency_ms=1.0
        )
        agent.record_review(decision_id, **MODEL, reviewer="r", action="approve")
        assert agent.flush().ok

    events = [decode(r.value) for r in read_topic(broker.bootstrap_servers, topic, 2)]
    assert len({event.trace_id for event in events}) == 1
    assert len({event.span_id for event in events}) == 2


def test_a_generative_call_carries_its_operation_and_token_usage(
    client: Driftline, broker: EmbeddedBroker, topic: str, spans: InMemorySpanExporter
) -> None:
    client.record_decision(
        **MODEL, inputs={"prompt": "summarise"}, output="...", confidence=0.8, latency_ms=900,
        operation="chat", input_tokens=120, output_tokens=48,
    )  # fmt: skip
    assert client.flush().ok

    (span,) = spans.get_finished_spans()
    assert span.name == "chat credit-risk"
    assert span.attributes is not None
    assert span.attributes["gen_ai.operation.name"] == "chat"
    assert span.attributes["gen_ai.request.model"] == "credit-risk"
    assert span.attributes["gen_ai.response.id"] == span.attributes["driftline.decision_id"]
    assert span.attributes["gen_ai.usage.input_tokens"] == 120
    assert span.attributes["gen_ai.usage.output_tokens"] == 48
    event = decode(read_topic(broker.bootstrap_servers, topic, 1)[0].value)
    assert isinstance(event, DecisionEvent) and event.payload.usage is not None
    assert (event.payload.usage.input_tokens, event.payload.usage.output_tokens) == (120, 48)


def component_documents() -> list[dict[str, Any]]:
    """Valid events of types only Driftline's own components write, as a caller would pass them
    to ``record_event``: a deployment, a drift verdict, a go-live "go", a passing load test, and
    an evaluation set, case, passing run and agreed thresholds."""
    drift = {"type": "drift_detected", "model": {"name": "credit-risk", "version": "3"},
             "payload": events.drift_payload("income")}  # fmt: skip
    made = [events.deployment(), events.readiness(), events.load_test(), *events.evaluations()]
    return [drift, *(e.model_dump(mode="json", by_alias=True) for e in made)]


def test_the_public_record_call_refuses_what_only_driftlines_components_write(
    client: Driftline, broker: EmbeddedBroker, topic: str
) -> None:
    documents = component_documents()
    before = client.record_decision(
        model="credit-risk", version="3", inputs={}, output="approve", confidence=0.9,
        latency_ms=1.0,
    )  # fmt: skip
    alone = [client.record_event(client.complete_event(d)) for d in documents]
    mixed = [client.complete_event(d) for d in documents[:2]]
    review = client.complete_event(
        {"type": "review", "model": MODEL_REF, "decision_id": str(before),
         "payload": {"reviewer": "a.kim", "action": "approve"}}
    )  # fmt: skip
    together = client.record_events([mixed[0], review, mixed[1]])

    report = client.flush()

    assert alone == [False] * len(documents)
    assert together == [False, True, False]
    # the decision and the review go on
    assert (report.delivered, report.failed) == (2, len(documents) + 2)
    reasons = [failure.reason for failure in report.failures]
    for kind in {document["type"] for document in documents}:
        assert any(r.startswith(f"{kind} events are written by Driftline's own") for r in reasons)
    sent = [decode(r.value) for r in read_topic(broker.bootstrap_servers, topic, 2)]
    assert sorted(type(e).__name__ for e in sent) == ["DecisionEvent", "ReviewEvent"]


def test_a_deployment_is_refused_without_a_producer_key(
    broker: EmbeddedBroker, topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DRIFTLINE_PRODUCER_KEY_FILE", raising=False)
    with Driftline(
        service="loan-desk", kafka_bootstrap_servers=broker.bootstrap_servers, topic=topic
    ) as service:
        recorded = service.record_deployment(
            model="credit-risk", version="3", owner="anyone", approved_by="anyone"
        )
        report = service.flush()
    assert recorded.queued is False and recorded.version == 7
    assert (report.delivered, report.failed) == (0, 1)
    assert "model_deployed" in report.failures[0].reason
    assert "DRIFTLINE_PRODUCER_KEY_FILE" in report.failures[0].reason


def test_a_generative_decision_and_its_scores_follow_the_genai_conventions(
    client: Driftline, broker: EmbeddedBroker, topic: str, spans: InMemorySpanExporter
) -> None:
    """No confidence, the provider, the answering model, the finish reason, every token count
    and embeddings travel in the event; the span names them as the conventions do; each named
    score is its own evaluation result, its comment redacted like any free text."""
    decision_id = client.record_decision(
        model="support-bot", version="7", inputs={"prompt": "reset my password"},
        output="Here is how...", latency_ms=850.0, operation="chat", provider="openai",
        response_model="gpt-4o-2024-08-06", finish_reason="length", input_tokens=120,
        output_tokens=40, cached_input_tokens=100, reasoning_tokens=8,
        embeddings=Embeddings(model="e5", dimensions=3, input=[0.1, 0.2, 0.3]),
    )  # fmt: skip
    client.record_feedback(
        decision_id, model="support-bot", version="7", reporter="judge",
        scores=[Score(name="faithfulness", value=0.83, source="model",
                      comment="quotes jane.doe@example.com"),
                {"name": "toxic", "value": False, "source": "rule"},
                Score(name="tone", value="warm", source="human")],
    )  # fmt: skip
    assert client.flush().ok

    decision, feedback = [decode(r.value) for r in read_topic(broker.bootstrap_servers, topic, 2)]
    assert decision.schema_version == 2 and decision.payload.confidence is None  # type: ignore[union-attr]
    assert decision.payload.usage is not None  # type: ignore[union-attr]
    assert decision.payload.usage.reasoning_tokens == 8  # type: ignore[union-attr]
    assert decision.payload.embeddings.input == [0.1, 0.2, 0.3]  # type: ignore[union-attr]
    assert feedback.payload.scores[0].comment == "quotes [email]"  # type: ignore[union-attr]
    decision_span, feedback_span = spans.get_finished_spans()
    attributes = dict(decision_span.attributes or {})
    assert {k: v for k, v in attributes.items() if k.startswith("gen_ai.")} == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "support-bot",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.response.id": str(decision_id),
        "gen_ai.response.finish_reasons": ("length",),
        "gen_ai.usage.input_tokens": 120,
        "gen_ai.usage.output_tokens": 40,
        "gen_ai.usage.cache_read.input_tokens": 100,
        "gen_ai.usage.reasoning.output_tokens": 8,
    }
    assert "driftline.confidence" not in attributes
    results = [dict(event.attributes or {}) for event in feedback_span.events]
    assert [r["gen_ai.evaluation.name"] for r in results] == ["faithfulness", "toxic", "tone"]
    assert results[0]["gen_ai.evaluation.score.value"] == 0.83
    assert results[0]["gen_ai.evaluation.explanation"] == "quotes [email]"
    assert (
        results[1]["gen_ai.evaluation.score.label"],
        results[1]["gen_ai.evaluation.score.value"],
    ) == ("false", 0.0)
    assert results[2]["gen_ai.evaluation.score.label"] == "warm"
    assert "gen_ai.evaluation.score.value" not in results[2]


def test_scores_that_break_the_contract_are_reported_not_raised(client: Driftline) -> None:
    decision_id = client.record_decision(**MODEL, inputs={}, output=1, latency_ms=1.0)
    twice = [{"name": "x", "value": 1, "source": "human"}] * 2
    client.record_feedback(decision_id, **MODEL, reporter="qa", scores=twice)
    report = client.flush()
    assert report.failed == 1
    assert "each score is named once; twice: x" in report.failures[0].reason
    # An integer no float holds: tracing, which runs first, must leave the contract to say so.
    huge = [{"name": "x", "value": 10**400, "source": "human"}]
    client.record_feedback(decision_id, **MODEL, reporter="qa", scores=huge)
    report = client.flush()
    assert report.failed == 2
    assert "payload.scores.0.value" in report.failures[-1].reason, report.failures[-1]

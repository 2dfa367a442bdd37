"""OpenTelemetry for the agent: its own tracer provider, one span per decision, and an
evaluation result per review or feedback.

The agent never touches the global provider (the service may own it); its spans join the
service's trace through the context captured when the decision was recorded. Spans are for
observing only: the BatchSpanProcessor may drop them, and the Kafka event is the record.
"""

from collections import OrderedDict
from datetime import datetime
from typing import Any, Literal

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

ExporterName = Literal["none", "console", "otlp"]
IDS = RandomIdGenerator()


def make_tracer_provider(service: str, exporter: ExporterName) -> TracerProvider | None:
    """None for exporter "none": a span nobody exports is not built, only its ids."""
    span_exporter = _exporter(exporter)
    if span_exporter is None:
        return None
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    provider.add_span_processor(BatchSpanProcessor(span_exporter))
    return provider


def _exporter(name: ExporterName) -> SpanExporter | None:
    if name == "console":
        return ConsoleSpanExporter()
    if name == "otlp":
        # Imported here so that a service without OTLP never pays for protobuf.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()  # endpoint, headers, timeout: the standard OTEL_* variables
    return None


class DecisionTracing:
    """Spans for decisions, and ``gen_ai.evaluation.result`` events for their reviews and
    feedback, parented to the decision's span so they share its trace.

    Runs on the agent's worker only, after redaction and before the contract check, so it reads
    documents defensively: whatever is malformed, the contract check reports. Without a
    provider, events still get ids: the caller's trace, the decision's, or a new one.
    """

    def __init__(self, provider: TracerProvider | None, remember: int = 10_000) -> None:
        self._provider = provider
        self._tracer = provider.get_tracer("driftline.agent") if provider else None
        self._recent: OrderedDict[str, SpanContext] = OrderedDict()
        self._remember = remember

    def decision(self, parent: Context, document: dict[str, Any]) -> None:
        model, payload, occurred_at = _parts(document)
        if occurred_at is None:
            return
        decision_id = str(document.get("decision_id"))
        if self._tracer is None:
            ids = _ids_only(parent)
        else:
            end_ns = int(occurred_at.timestamp() * 1e9)
            latency_ms = payload.get("latency_ms")
            start_ns = (
                end_ns - int(latency_ms * 1e6) if isinstance(latency_ms, int | float) else end_ns
            )
            operation = payload.get("operation")
            name = f"{operation or 'decision'} {model.get('name')}"  # GenAI: "{op} {model}"
            attributes = _decision_attributes(decision_id, model, payload)
            ids = self._span(name, parent, attributes, start_ns, end_ns)
        self._keep(decision_id, ids)
        _stamp(document, ids)

    def evaluation(self, parent: Context, document: dict[str, Any]) -> None:
        """A review or feedback, as the GenAI conventions' evaluation result."""
        model, payload, occurred_at = _parts(document)
        if occurred_at is None:
            return
        decision_id = str(document.get("decision_id"))
        evaluated = self._recent.get(decision_id)
        if evaluated is not None:
            parent = trace.set_span_in_context(NonRecordingSpan(evaluated))
        end_ns = int(occurred_at.timestamp() * 1e9)
        attributes = _evaluation_attributes(document.get("type"), payload)
        attributes["gen_ai.response.id"] = decision_id
        ids = self._span(
            f"evaluation {model.get('name')}", parent, {}, end_ns, end_ns, event=attributes
        )
        _stamp(document, ids)

    def _span(
        self,
        name: str,
        parent: Context,
        attributes: dict[str, str | float | bool],
        start_ns: int,
        end_ns: int,
        event: dict[str, str | float | bool] | None = None,
    ) -> SpanContext:
        if self._tracer is None:
            return _ids_only(parent)
        span = self._tracer.start_span(
            name, context=parent, kind=SpanKind.INTERNAL, start_time=start_ns, attributes=attributes
        )
        if event is not None:
            span.add_event("gen_ai.evaluation.result", attributes=event, timestamp=end_ns)
        span.end(end_time=end_ns)
        return span.get_span_context()

    def _keep(self, decision_id: str, ids: SpanContext) -> None:
        self._recent[decision_id] = ids
        if len(self._recent) > self._remember:
            self._recent.popitem(last=False)


def _ids_only(parent: Context) -> SpanContext:
    """Ids for an event no span is built for: in the caller's trace, or a new one."""
    caller = trace.get_current_span(parent).get_span_context()
    trace_id = caller.trace_id if caller.is_valid else IDS.generate_trace_id()
    return SpanContext(trace_id, IDS.generate_span_id(), False, TraceFlags(1))


def _decision_attributes(
    decision_id: str, model: dict[str, Any], payload: dict[str, Any]
) -> dict[str, str | float | bool]:
    name = str(model.get("name"))
    attributes: dict[str, str | float | bool] = {
        "gen_ai.request.model": name,
        "gen_ai.response.model": name,
        "gen_ai.response.id": decision_id,
        "driftline.model.version": str(model.get("version")),
        "driftline.decision_id": decision_id,
        "driftline.automated": bool(payload.get("automated")),
    }
    confidence = payload.get("confidence")
    if isinstance(confidence, int | float):
        attributes["driftline.confidence"] = float(confidence)
    operation = payload.get("operation")
    if isinstance(operation, str):
        attributes["gen_ai.operation.name"] = operation
    usage = payload.get("usage")
    for tokens in ("input_tokens", "output_tokens"):
        if isinstance(usage, dict) and isinstance(usage.get(tokens), int):
            attributes[f"gen_ai.usage.{tokens}"] = usage[tokens]
    return attributes


def _parts(document: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], datetime | None]:
    model = document.get("model")
    payload = document.get("payload")
    occurred_at = document.get("occurred_at")
    if isinstance(occurred_at, str):  # as a sidecar caller sent it
        try:
            occurred_at = datetime.fromisoformat(occurred_at)
        except ValueError:
            occurred_at = None
    return (
        model if isinstance(model, dict) else {},
        payload if isinstance(payload, dict) else {},
        occurred_at if isinstance(occurred_at, datetime) else None,
    )


def _evaluation_attributes(
    event_type: object, payload: dict[str, Any]
) -> dict[str, str | float | bool]:
    if event_type == "review":
        attributes: dict[str, str | float | bool] = {
            "gen_ai.evaluation.name": "human_review",
            "gen_ai.evaluation.score.label": str(payload.get("action")),
        }
        explanation = payload.get("rationale")
    else:
        correct = payload.get("correct")
        attributes = {"gen_ai.evaluation.name": "feedback"}
        if isinstance(correct, bool):
            attributes["gen_ai.evaluation.score.label"] = "correct" if correct else "incorrect"
            attributes["gen_ai.evaluation.score.value"] = 1.0 if correct else 0.0
        explanation = payload.get("comment")
    if isinstance(explanation, str):
        attributes["gen_ai.evaluation.explanation"] = explanation  # already redacted
    return attributes


def _stamp(document: dict[str, Any], ids: SpanContext) -> None:
    document["trace_id"] = format(ids.trace_id, "032x")
    document["span_id"] = format(ids.span_id, "016x")

"""OpenTelemetry for the agent: its own tracer provider and one span per decision.

The agent never touches the global provider (the service may own it); its spans join the
service's trace through the context captured when the decision was recorded. Spans are for
observing only: the BatchSpanProcessor may drop them, and the Kafka event is the record.
"""

from datetime import datetime
from typing import Any, Literal

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import SpanKind

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


def add_decision_span(
    provider: TracerProvider | None, parent: Context, document: dict[str, Any]
) -> None:
    """Record the span of a decision that has already happened and put its ids on the event.

    Runs on the agent's worker, after redaction and before the contract check, so it reads the
    document defensively: whatever is malformed, the contract check reports. Without a provider
    the event still gets ids: the caller's trace, or a new one.
    """
    if provider is None:
        caller = trace.get_current_span(parent).get_span_context()
        trace_id = caller.trace_id if caller.is_valid else IDS.generate_trace_id()
        document["trace_id"] = format(trace_id, "032x")
        document["span_id"] = format(IDS.generate_span_id(), "016x")
        return
    model = document.get("model") if isinstance(document.get("model"), dict) else {}
    payload = document.get("payload") if isinstance(document.get("payload"), dict) else {}
    occurred_at = document.get("occurred_at")
    if isinstance(occurred_at, str):  # as a sidecar caller sent it
        try:
            occurred_at = datetime.fromisoformat(occurred_at)
        except ValueError:
            return
    if not isinstance(occurred_at, datetime) or not isinstance(model, dict):
        return
    latency_ms = payload.get("latency_ms") if isinstance(payload, dict) else None
    confidence = payload.get("confidence") if isinstance(payload, dict) else None
    end_ns = int(occurred_at.timestamp() * 1e9)
    start_ns = end_ns - int(latency_ms * 1e6) if isinstance(latency_ms, int | float) else end_ns
    name = str(model.get("name"))
    attributes: dict[str, str | float | bool] = {
        "gen_ai.request.model": name,
        "gen_ai.response.model": name,
        "driftline.model.version": str(model.get("version")),
        "driftline.decision_id": str(document.get("decision_id")),
        "driftline.automated": bool(isinstance(payload, dict) and payload.get("automated")),
    }
    if isinstance(confidence, int | float):
        attributes["driftline.confidence"] = float(confidence)
    span = provider.get_tracer("driftline.agent").start_span(
        f"decision {name}",
        context=parent,
        kind=SpanKind.INTERNAL,
        start_time=start_ns,
        attributes=attributes,
    )
    span.end(end_time=end_ns)
    ids = span.get_span_context()
    document["trace_id"] = format(ids.trace_id, "032x")
    document["span_id"] = format(ids.span_id, "016x")

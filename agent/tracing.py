"""OpenTelemetry for the agent: its own tracer provider and one span per decision.

The agent never touches the global provider (the service may own it); its spans join the
service's trace through the context captured when the decision was recorded. Spans are for
observing only: the BatchSpanProcessor may drop them, and the Kafka event is the record.
"""

from typing import Literal

from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import SpanContext, SpanKind

ExporterName = Literal["none", "console", "otlp"]


def make_tracer_provider(service: str, exporter: ExporterName) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    span_exporter = _exporter(exporter)
    if span_exporter is not None:
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


def decision_span(
    provider: TracerProvider,
    *,
    parent: Context,
    model: str,
    version: str,
    attributes: dict[str, str | float | bool],
    start_ns: int,
    end_ns: int,
) -> SpanContext:
    """Record the span of a decision that has already happened; return its ids."""
    tracer = provider.get_tracer("driftline.agent")
    span = tracer.start_span(
        f"decision {model}",
        context=parent,
        kind=SpanKind.INTERNAL,
        start_time=start_ns,
        attributes={
            "gen_ai.request.model": model,
            "driftline.model.version": version,
            **attributes,
        },
    )
    span.end(end_time=end_ns)
    return span.get_span_context()

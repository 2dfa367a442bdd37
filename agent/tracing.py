"""OpenTelemetry for the agent: one span per decision, and an evaluation result per review or
feedback, on the provider the standard settings say.

Where spans go, first match wins:

1. a ``tracer_provider`` handed to ``Driftline`` (a service's own pipeline);
2. ``DRIFTLINE_TRACE_EXPORTER`` (``none``, ``console`` or ``otlp``): a provider of the agent's own;
3. the application's global provider, when it has set one (``trace.set_tracer_provider``),
   before or after the agent started;
4. ``OTEL_TRACES_EXPORTER`` (``otlp``, ``console``, ``none``; a list takes its first), with the
   OTLP protocol from ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`` or ``OTEL_EXPORTER_OTLP_PROTOCOL``
   (``http/protobuf``; ``grpc`` when its exporter package is installed) and the endpoint,
   headers and timeout from the other standard ``OTEL_EXPORTER_OTLP_*`` variables;
5. nowhere: events still get trace and span ids.

A provider of the agent's own names the service by ``OTEL_SERVICE_NAME`` or
``OTEL_RESOURCE_ATTRIBUTES`` when they say, else by Driftline's service name. The agent never
sets the global provider. Its spans join the service's trace through the context captured when
the decision was recorded. Spans are for observing only: the BatchSpanProcessor may drop them,
and the Kafka event is the record. A tracing setting that cannot be met is logged, naming the
variable, and the agent goes on without spans: it never stops recording over one.

A generative decision (one with an ``operation``) follows the GenAI conventions: span name
``{operation} {model}``, ``gen_ai.operation.name``, ``gen_ai.request.model``,
``gen_ai.provider.name``, ``gen_ai.response.*`` and ``gen_ai.usage.*``; a classic model's
decision span carries ``driftline.*`` attributes only. A review, a feedback and each named score
is a ``gen_ai.evaluation.result`` event.
"""

import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from opentelemetry.util.types import AttributeValue

from driftline.agent.logs import agent_logger

ExporterName = Literal["none", "console", "otlp"]
EXPORTERS: tuple[ExporterName, ...] = ("none", "console", "otlp")
IDS = RandomIdGenerator()
log = agent_logger("driftline.agent.tracing")


@dataclass(frozen=True)
class TracingChoice:
    """Where the agent's spans go: a provider of its own, the application's global one, or
    nowhere (``provider`` None and ``follow_global`` False)."""

    provider: TracerProvider | None
    follow_global: bool


def choose_tracing(service: str, exporter: ExporterName | None) -> TracingChoice:
    """Steps 2 to 5 of the module's order, for a given ``DRIFTLINE_TRACE_EXPORTER``; no spans,
    logged, when the SDK refuses its own settings (``OTEL_BSP_*`` out of range, say)."""
    try:
        return _choose(service, exporter)
    except Exception as error:
        log.error("tracing settings refused; no spans", error=repr(error))
        return TracingChoice(None, False)


def _choose(service: str, exporter: ExporterName | None) -> TracingChoice:
    if exporter is not None:
        return TracingChoice(_own_provider(service, exporter, "DRIFTLINE_TRACE_EXPORTER"), False)
    if _global_provider() is not None:
        return TracingChoice(None, True)
    named = os.environ.get("OTEL_TRACES_EXPORTER", "").split(",")[0].strip().lower()
    if not named:
        return TracingChoice(None, True)
    if named not in EXPORTERS:
        log.error(
            "unknown trace exporter; no spans", variable="OTEL_TRACES_EXPORTER", value=named,
            known=list(EXPORTERS),
        )  # fmt: skip
        return TracingChoice(None, False)
    return TracingChoice(_own_provider(service, named, "OTEL_TRACES_EXPORTER"), False)


def _own_provider(service: str, exporter: ExporterName, variable: str) -> TracerProvider | None:
    """None for exporter "none", or when the exporter cannot be made: a span nobody exports is
    not built, only its ids."""
    span_exporter = _exporter(exporter, variable)
    if span_exporter is None:
        return None
    resource = Resource.create({})  # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = Resource.create({SERVICE_NAME: service})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(span_exporter))
    return provider


def _exporter(name: ExporterName, variable: str) -> SpanExporter | None:
    if name == "console":
        return ConsoleSpanExporter()
    if name != "otlp":
        return None
    protocol_variable = next(
        (v for v in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
         if os.environ.get(v)),
        None,
    )  # fmt: skip
    protocol = os.environ.get(protocol_variable or "", "http/protobuf").strip().lower()
    # Imported here so that a service without OTLP never pays for protobuf (or gRPC).
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()  # endpoint, headers, timeout: the standard OTEL_* variables
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found,unused-ignore]
                OTLPSpanExporter as GrpcSpanExporter,
            )
        except ImportError:
            log.error(
                "OTLP over gRPC needs the package opentelemetry-exporter-otlp-proto-grpc; "
                "no spans", variable=protocol_variable, exporter_from=variable,
            )  # fmt: skip
            return None
        exporter: SpanExporter = GrpcSpanExporter()
        return exporter
    log.error(
        "OTLP protocol not supported (http/protobuf, grpc); no spans",
        variable=protocol_variable, value=protocol,
    )  # fmt: skip
    return None


def _global_provider() -> trace.TracerProvider | None:
    """The application's global provider, if it has set one."""
    try:
        provider = trace.get_tracer_provider()
    except Exception:  # e.g. OTEL_PYTHON_TRACER_PROVIDER naming no provider
        return None
    unset = isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)
    return None if unset else provider


class DecisionTracing:
    """Spans for decisions, and ``gen_ai.evaluation.result`` events for their reviews and
    feedback, parented to the decision's span so they share its trace.

    Runs on the agent's worker only, after redaction and before the contract check, so it reads
    documents defensively: whatever is malformed, the contract check reports. Without a
    provider, events still get ids: the caller's trace, the decision's, or a new one.
    """

    def __init__(
        self,
        provider: trace.TracerProvider | None,
        remember: int = 10_000,
        *,
        follow_global: bool = False,
    ) -> None:
        self._own = provider.get_tracer("driftline.agent") if provider else None
        self._follow_global = follow_global
        self._global: tuple[trace.TracerProvider, trace.Tracer] | None = None
        self._recent: OrderedDict[str, SpanContext] = OrderedDict()
        self._remember = remember
        self._failures = 0

    @property
    def _tracer(self) -> trace.Tracer | None:
        if self._own is not None or not self._follow_global:
            return self._own
        provider = _global_provider()
        if provider is None:
            return None
        if self._global is None or self._global[0] is not provider:  # set, or set again
            self._global = (provider, provider.get_tracer("driftline.agent"))
        return self._global[1]

    def decision(self, parent: Context, document: dict[str, Any]) -> None:
        model, payload, occurred_at = _parts(document)
        if occurred_at is None:
            return
        decision_id = str(document.get("decision_id"))
        end_ns = int(occurred_at.timestamp() * 1e9)
        latency_ms = payload.get("latency_ms")
        start_ns = end_ns - int(latency_ms * 1e6) if isinstance(latency_ms, int | float) else end_ns
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
        results = _evaluation_results(document.get("type"), payload)
        for result in results:
            result["gen_ai.response.id"] = decision_id
        ids = self._span(
            f"evaluation {model.get('name')}", parent, {}, end_ns, end_ns, events=results
        )
        _stamp(document, ids)

    def _span(
        self,
        name: str,
        parent: Context,
        attributes: dict[str, AttributeValue],
        start_ns: int,
        end_ns: int,
        events: Sequence[dict[str, AttributeValue]] = (),
    ) -> SpanContext:
        try:
            tracer = self._tracer
            if tracer is None:
                return _ids_only(parent)
            span = tracer.start_span(
                name, context=parent, kind=SpanKind.INTERNAL, start_time=start_ns,
                attributes=attributes,
            )  # fmt: skip
            for event in events:
                span.add_event("gen_ai.evaluation.result", attributes=event, timestamp=end_ns)
            span.end(end_time=end_ns)
            context = span.get_span_context()
        except Exception as error:  # a provider's own fault must not cost the event its record
            self._failures += 1
            if self._failures == 1:  # once: a broken provider would repeat it every event
                log.error("tracer provider failed; the event keeps ids, without a span",
                          error=repr(error))  # fmt: skip
            return _ids_only(parent)
        return context if context.is_valid else _ids_only(parent)

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
) -> dict[str, AttributeValue]:
    name = str(model.get("name"))
    attributes: dict[str, AttributeValue] = {
        "driftline.model.name": name,
        "driftline.model.version": str(model.get("version")),
        "driftline.decision_id": decision_id,
        "driftline.automated": bool(payload.get("automated")),
    }
    confidence = payload.get("confidence")
    if isinstance(confidence, int | float):
        attributes["driftline.confidence"] = float(confidence)
    operation = payload.get("operation")
    if not isinstance(operation, str):
        return attributes  # a classic model's decision: the GenAI conventions do not apply
    response_model = payload.get("response_model")
    attributes |= {
        "gen_ai.operation.name": operation,
        "gen_ai.request.model": name,
        "gen_ai.response.model": response_model if isinstance(response_model, str) else name,
        "gen_ai.response.id": decision_id,
    }
    for field, attribute in (("provider", "gen_ai.provider.name"),
                             ("finish_reason", "gen_ai.response.finish_reasons")):  # fmt: skip
        value = payload.get(field)
        if isinstance(value, str):
            attributes[attribute] = [value] if field == "finish_reason" else value
    usage = payload.get("usage")
    for field, attribute in _USAGE_ATTRIBUTES.items():
        if isinstance(usage, dict) and type(usage.get(field)) is int:
            attributes[attribute] = usage[field]
    return attributes


# The contract's token counts as the GenAI conventions name them (the cache and reasoning ones
# are in development there).
_USAGE_ATTRIBUTES = {
    "input_tokens": "gen_ai.usage.input_tokens",
    "output_tokens": "gen_ai.usage.output_tokens",
    "cached_input_tokens": "gen_ai.usage.cache_read.input_tokens",
    "reasoning_tokens": "gen_ai.usage.reasoning.output_tokens",
}


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


def _evaluation_results(
    event_type: object, payload: dict[str, Any]
) -> list[dict[str, AttributeValue]]:
    """One ``gen_ai.evaluation.result`` per judgement: the review's action or the feedback's
    right-or-wrong (when it gives one), then each named score."""
    results = []
    judged = payload.get("correct") is not None or payload.get("ground_truth") is not None
    if event_type == "review" or judged:
        results.append(_judgement(event_type, payload))
    scores = payload.get("scores")
    for score in scores if isinstance(scores, list) else ():
        if isinstance(score, dict):
            results.append(_score_result(score))
    return results


def _score_result(score: dict[str, Any]) -> dict[str, AttributeValue]:
    value = score.get("value")
    result: dict[str, AttributeValue] = {"gen_ai.evaluation.name": str(score.get("name"))}
    if isinstance(value, bool):
        result["gen_ai.evaluation.score.label"] = str(value).lower()
        result["gen_ai.evaluation.score.value"] = float(value)
    elif isinstance(value, float) or (isinstance(value, int) and abs(value) < 2**1023):
        result["gen_ai.evaluation.score.value"] = float(value)
    elif isinstance(value, str):
        result["gen_ai.evaluation.score.label"] = value
    # Anything else (an integer no float holds) the contract refuses after this runs: no value
    # here, and nothing raised, so that the contract's error names the field.
    result["driftline.evaluation.source"] = str(score.get("source"))
    if isinstance(score.get("comment"), str):
        result["gen_ai.evaluation.explanation"] = score["comment"]
    return result


def _judgement(event_type: object, payload: dict[str, Any]) -> dict[str, AttributeValue]:
    if event_type == "review":
        attributes: dict[str, AttributeValue] = {
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

"""Where the agent's spans go, by the standard settings: the application's global provider (set
before or after the agent), ``OTEL_TRACES_EXPORTER`` with OTLP over HTTP to a receiver on
loopback (standing in for an OpenTelemetry Collector) naming the service by
``OTEL_SERVICE_NAME``, and a setting that cannot be met logged by name without stopping the
agent recording."""

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once
from structlog.testing import capture_logs

from driftline.agent import Driftline
from driftline.agent.contract import decode
from driftline.agent.settings import AgentSettings
from driftline.agent.tracing import choose_tracing
from driftline.collector.runtime.broker import EmbeddedBroker
from tests.topic_reader import read_topic

MODEL = {"model": "support-bot", "version": "7"}
OTEL_VARIABLES = (
    "OTEL_TRACES_EXPORTER",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_PYTHON_TRACER_PROVIDER",
)


@pytest.fixture(autouse=True)
def clean_otel(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No OTEL_* variable from the machine, and a global provider that can be set again: the
    API lets a process set it once, so each test gets (and leaves) an unset one."""
    for variable in OTEL_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(trace, "_TRACER_PROVIDER_SET_ONCE", Once())
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
    yield


class Receiver(ThreadingHTTPServer):
    """An OTLP/HTTP endpoint: keeps each export request it is sent."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[ExportTraceServiceRequest] = []
        self.arrived = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1/traces"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        self.server.requests.append(request)
        self.server.arrived.set()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def agent(broker: EmbeddedBroker, topic: str, **settings: Any) -> Driftline:
    return Driftline(
        service="support", kafka_bootstrap_servers=broker.bootstrap_servers, topic=topic,
        **settings,
    )  # fmt: skip


def chat(driftline: Driftline) -> None:
    driftline.record_decision(
        **MODEL, inputs={"prompt": "reset my password"}, output="Here is how...",
        confidence=0.7, latency_ms=850.0, operation="chat", input_tokens=12, output_tokens=40,
    )  # fmt: skip
    assert driftline.flush().ok


@pytest.mark.parametrize("set_after_the_agent", [False, True])
def test_spans_go_to_the_applications_global_provider(
    broker: EmbeddedBroker, topic: str, set_after_the_agent: bool
) -> None:
    spans = InMemorySpanExporter()
    application = TracerProvider()
    application.add_span_processor(SimpleSpanProcessor(spans))
    if not set_after_the_agent:
        trace.set_tracer_provider(application)
    with agent(broker, topic) as driftline:
        if set_after_the_agent:
            trace.set_tracer_provider(application)
        chat(driftline)
    (span,) = spans.get_finished_spans()
    assert span.name == "chat support-bot"
    assert span.attributes is not None
    assert span.attributes["gen_ai.operation.name"] == "chat"
    event = decode(read_topic(broker.bootstrap_servers, topic, 1)[0].value)
    assert span.context is not None
    assert event.trace_id == format(span.context.trace_id, "032x")


def test_an_explicit_none_keeps_spans_from_the_global_provider(
    broker: EmbeddedBroker, topic: str
) -> None:
    spans = InMemorySpanExporter()
    application = TracerProvider()
    application.add_span_processor(SimpleSpanProcessor(spans))
    trace.set_tracer_provider(application)
    with agent(broker, topic, trace_exporter="none") as driftline:
        chat(driftline)
    assert spans.get_finished_spans() == ()
    event = decode(read_topic(broker.bootstrap_servers, topic, 1)[0].value)
    assert event.trace_id is not None and len(event.trace_id) == 32  # ids all the same


def test_otel_traces_exporter_sends_otlp_over_http_named_by_otel_service_name(
    broker: EmbeddedBroker, topic: str, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", receiver.url)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "support-frontend")
    with agent(broker, topic) as driftline:
        chat(driftline)
    assert receiver.arrived.wait(10), "no export reached the receiver"
    (resource_spans,) = [r for request in receiver.requests for r in request.resource_spans]
    names = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert names["service.name"] == "support-frontend"
    (span,) = [s for scope in resource_spans.scope_spans for s in scope.spans]
    assert span.name == "chat support-bot"
    attributes = {a.key: a.value for a in span.attributes}
    assert attributes["gen_ai.operation.name"].string_value == "chat"
    assert attributes["gen_ai.usage.output_tokens"].int_value == 40


def test_without_otel_service_name_the_service_is_driftlines() -> None:
    chosen = choose_tracing("support", "console")
    assert chosen.provider is not None
    assert chosen.provider.resource.attributes["service.name"] == "support"
    chosen.provider.shutdown()


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
         "OTEL_EXPORTER_OTLP_PROTOCOL"),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"},
         "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"),
    ],
)  # fmt: skip
def test_a_setting_that_cannot_be_met_is_logged_by_name_and_recording_goes_on(
    broker: EmbeddedBroker,
    topic: str,
    monkeypatch: pytest.MonkeyPatch,
    variables: dict[str, str],
    named: str,
) -> None:
    for variable, value in variables.items():
        monkeypatch.setenv(variable, value)
    with capture_logs() as logs, agent(broker, topic) as driftline:
        chat(driftline)
    assert any(entry.get("variable") == named and entry["log_level"] == "error" for entry in logs)
    event = decode(read_topic(broker.bootstrap_servers, topic, 1)[0].value)
    assert event.trace_id is not None  # recorded, with ids, and no spans


class BrokenProvider(trace.TracerProvider):
    """An application's provider with a fault of its own."""

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        raise RuntimeError("the vendor's provider is broken")


def test_a_failing_global_provider_costs_no_event(broker: EmbeddedBroker, topic: str) -> None:
    with capture_logs() as logs, agent(broker, topic) as driftline:
        trace.set_tracer_provider(BrokenProvider())
        chat(driftline)
        chat(driftline)
    events = [decode(r.value) for r in read_topic(broker.bootstrap_servers, topic, 2)]
    assert all(event.trace_id is not None for event in events)
    assert sum("tracer provider failed" in entry["event"] for entry in logs) == 1  # once


@pytest.mark.parametrize(
    "variables",
    [
        {"OTEL_TRACES_EXPORTER": "console", "OTEL_BSP_MAX_QUEUE_SIZE": "0"},
        {"OTEL_TRACES_EXPORTER": "console", "OTEL_BSP_SCHEDULE_DELAY": "-5"},
        {"OTEL_PYTHON_TRACER_PROVIDER": "no-such-provider"},
    ],
)
def test_settings_the_sdk_refuses_never_raise_into_the_service(
    broker: EmbeddedBroker, topic: str, monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]
) -> None:
    for variable, value in variables.items():
        monkeypatch.setenv(variable, value)
    with agent(broker, topic) as driftline:
        chat(driftline)
    assert decode(read_topic(broker.bootstrap_servers, topic, 1)[0].value).trace_id is not None


@pytest.mark.parametrize(
    ("given", "read"), [("Console", "console"), (" OTLP ", "otlp"), ("", None)]
)
def test_the_exporter_setting_takes_any_case_and_empty_as_unset(
    given: str, read: str | None
) -> None:
    assert AgentSettings(service="s", trace_exporter=given).trace_exporter == read

"""The agent SDK: what an AI service calls to record its decisions, reviews and feedback.

Every ``record_*`` call returns at once: it stamps ids and time on the caller's thread and
queues the event; validation, the OpenTelemetry span, encoding and the network happen on the
agent's worker thread. Nothing here raises into the service for bad data or an absent broker:
``flush()`` and ``close()`` report what was not delivered and why.

A service records its own decisions, reviews and feedback. Every other type (deployments,
baselines, drift verdicts, readiness, load tests, drills, alerts) is written by Driftline's own
components only, with a producer key (DRIFTLINE_PRODUCER_KEY_FILE; ``driftline.agent.provenance``):
through ``record_component``, from the contract's payload models, or ``record_signed``, from a
complete document. ``record_event`` refuses it: counted as failed, logged, never raised.

    with Driftline(service="loans") as driftline:
        decision_id = driftline.record_decision(
            model="credit-risk", version="3", inputs={"income": 52_000},
            output="approve", confidence=0.91, latency_ms=12.5,
        )
"""

from __future__ import annotations

import functools
import inspect
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from jsonschema.protocols import Validator
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry, Histogram
from pydantic import ValidationError

from driftline.agent.contract import (
    COMPONENT_EVENT_TYPES,
    SCHEMA_VERSION,
    ComponentEventType,
    ComponentPayload,
    Embeddings,
    EventType,
    ModelRef,
    ReviewAction,
    Score,
    component_event,
    new_event_id,
)
from driftline.agent.direct import DirectSender
from driftline.agent.dispatcher import DeliveryReport, Dispatcher, Record, RefusingDispatcher
from driftline.agent.input_contracts import ContractCheck, InputContractError, load_contracts
from driftline.agent.labels import LabelCap
from driftline.agent.logs import agent_logger
from driftline.agent.metrics import AgentMetrics
from driftline.agent.provenance import ProducerKey, ProducerKeyError
from driftline.agent.publisher import KafkaPublisher, KafkaTarget
from driftline.agent.redaction import RedactionError, RedactionPolicy, Redactor
from driftline.agent.settings import AgentSettings
from driftline.agent.spool import Spool, SpoolError
from driftline.agent.spooling import SpoolingPublisher
from driftline.agent.tracing import DecisionTracing, choose_tracing

log = agent_logger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


class Recorded(uuid.UUID):
    """The id a ``record_*`` call returns: a UUID like any other, that also says whether the
    agent took the event. ``queued`` is False when it could not (its queue was full, it is
    misconfigured, or the event needs a producer key it lacks): that event is lost, and counted
    as dropped or failed."""

    __slots__ = ("queued",)
    queued: bool

    @classmethod
    def of(cls, value: uuid.UUID, *, queued: bool) -> Recorded:
        recorded = cls(int=value.int)
        object.__setattr__(recorded, "queued", queued)  # a UUID refuses attribute writes
        return recorded


class Driftline:
    def __init__(
        self,
        settings: AgentSettings | None = None,
        *,
        tracer_provider: TracerProvider | None = None,
        **overrides: Any,
    ) -> None:
        """Settings come from ``settings``, else from keyword overrides and DRIFTLINE_* vars.

        Spans go to ``tracer_provider`` when given (a service's own pipeline), else where
        ``driftline.agent.tracing`` says (``DRIFTLINE_TRACE_EXPORTER``, the application's global
        provider, then the standard ``OTEL_*`` variables). Bad settings never raise into the
        service: the agent logs what is wrong, records nothing, and every report repeats the
        reason.
        """
        self._owns_tracer_provider = tracer_provider is None
        self._tracer_provider: TracerProvider | None
        self._dispatcher: Dispatcher | RefusingDispatcher
        self._spooling: SpoolingPublisher | None = None
        self._ack_on_disk = False
        self._producer_key: ProducerKey | None = None
        self._unsigned = "the agent is misconfigured"  # why it cannot sign, when it cannot
        self.metrics = CollectorRegistry()  # what `driftline agent` serves at /metrics
        cap = LabelCap()  # the (service, model) pairs every event counter tells apart
        try:
            self.settings = settings or AgentSettings(**overrides)
            redactor = _redactor(self.settings, cap)
        except (ValidationError, RedactionError) as error:
            reason = _configuration_problem(error)
            log.error("Driftline agent misconfigured; recording nothing", problem=reason)
            named = overrides.get("service") or os.environ.get("DRIFTLINE_SERVICE")
            self._service = str(named or "misconfigured")
            self._tracer_provider = tracer_provider
            self._tracing = DecisionTracing(tracer_provider)
            self._dispatcher = RefusingDispatcher(reason)
            return
        self._service = self.settings.service
        self._ack_on_disk = self.settings.sidecar_ack == "on_disk"
        self._producer_key, self._unsigned = _producer_key(self.settings)
        contract_check = ContractCheck(_input_contracts(self.settings), cap)
        if tracer_provider is None:
            chosen = choose_tracing(self.settings.service, self.settings.trace_exporter)
            self._tracer_provider = chosen.provider
            self._tracing = DecisionTracing(chosen.provider, follow_global=chosen.follow_global)
        else:
            self._tracer_provider = tracer_provider
            self._tracing = DecisionTracing(tracer_provider)
        kafka = KafkaTarget(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            topic=self.settings.topic,
            delivery_timeout_ms=self.settings.delivery_timeout_ms,
            security=self.settings.librdkafka_security(),
        )
        self._spooling = spooling = SpoolingPublisher(
            DirectSender(kafka),
            KafkaPublisher(kafka),
            _open_spool(self.settings),
            full_policy=self.settings.spool_full_policy,
            block_ms=self.settings.spool_block_ms,
            send_latency=Histogram(
                "driftline_agent_send_latency_seconds",
                "From recording an event to Kafka acknowledging it (events sent straight).",
                buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
                registry=self.metrics,
            ),
        )
        self._dispatcher = Dispatcher(
            spooling,
            queue_size=self.settings.queue_size,
            batch_size=self.settings.batch_size,
            linger_ms=self.settings.linger_ms,
            processors=[contract_check, redactor],  # the contract sees inputs before redaction
            cap=cap,
        )
        self.metrics.register(AgentMetrics(self._dispatcher, spooling, redactor, contract_check))

    def record_decision(
        self,
        *,
        model: str,
        version: str,
        inputs: dict[str, Any],
        output: Any,
        latency_ms: float,
        confidence: float | None = None,
        automated: bool = True,
        class_scores: dict[str, float] | None = None,
        subject_ref: str | None = None,
        decision_id: uuid.UUID | None = None,
        operation: str | None = None,
        provider: str | None = None,
        response_model: str | None = None,
        finish_reason: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cached_input_tokens: int | None = None,
        reasoning_tokens: int | None = None,
        embeddings: Embeddings | dict[str, Any] | None = None,
    ) -> Recorded:
        """Record a decision the model took; return its decision id (``.queued`` False if the
        agent could not take it).

        ``confidence`` in [0, 1], where the model gives one; without it the confidence checks
        and the go-live gate's review coverage leave the decision out. The rest are for
        generative models, as the OpenTelemetry GenAI conventions name them: ``operation``
        ("chat"...), ``provider`` ("openai"...), the ``response_model`` if another answered,
        the ``finish_reason`` and the tokens (``input_tokens`` including the cached ones,
        ``output_tokens`` the reasoning ones), and the ``embeddings`` the service computed.
        """
        decision_id = decision_id or new_event_id()
        occurred_at = datetime.now(UTC)
        parent = otel_context.get_current()
        document = self._envelope("decision", model, version, decision_id, occurred_at)
        document["payload"] = {
            "inputs": dict(inputs),
            "output": output,
            "confidence": confidence,
            "class_scores": class_scores,
            "latency_ms": latency_ms,
            "automated": automated,
            "subject_ref": subject_ref,
            "operation": operation,
            "usage": _usage(input_tokens, output_tokens, cached_input_tokens, reasoning_tokens),
            "provider": provider,
            "response_model": response_model,
            "finish_reason": finish_reason,
            "embeddings": embeddings.model_dump()
            if isinstance(embeddings, Embeddings)
            else embeddings,
        }

        queued = self._dispatcher.submit(Record(document, finish=self._finisher(document, parent)))
        return Recorded.of(decision_id, queued=queued)

    def _finisher(
        self, document: dict[str, Any], parent: otel_context.Context
    ) -> Callable[[dict[str, Any]], None] | None:
        """What the worker does to finish an event: the decision's span, or the evaluation
        result of a review or feedback, in the trace of its decision."""
        if document.get("type") == "decision":
            return functools.partial(self._tracing.decision, parent)
        if document.get("type") in ("review", "feedback"):
            return functools.partial(self._tracing.evaluation, parent)
        return None

    def decision(
        self,
        *,
        model: str,
        version: str,
        inputs: dict[str, Any],
        automated: bool = True,
        subject_ref: str | None = None,
    ) -> DecisionScope:
        """A context manager that times the model call; set ``output`` (and ``confidence``)."""
        return DecisionScope(
            self,
            model=model,
            version=version,
            inputs=inputs,
            automated=automated,
            subject_ref=subject_ref,
        )

    def traced(
        self,
        *,
        model: str,
        version: str,
        confidence: Callable[[R], float] | None = None,
        output: Callable[[R], Any] = lambda result: result,
        automated: bool = True,
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Decorate a prediction function: its arguments are the inputs, its result the output."""

        def decorate(function: Callable[P, R]) -> Callable[P, R]:
            signature = inspect.signature(function)

            @functools.wraps(function)
            def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
                inputs = dict(signature.bind(*args, **kwargs).arguments)
                with self.decision(
                    model=model, version=version, inputs=inputs, automated=automated
                ) as scope:
                    result = function(*args, **kwargs)
                    scope.output = output(result)
                    scope.confidence = None if confidence is None else confidence(result)
                return result

            return wrapper

        return decorate

    def record_review(
        self,
        decision_id: uuid.UUID,
        *,
        model: str,
        version: str,
        reviewer: str,
        action: ReviewAction,
        new_output: Any = None,
        rationale: str | None = None,
        scores: list[Score] | list[dict[str, Any]] | None = None,
    ) -> Recorded:
        """Record a human review of a decision, with any named ``scores`` the reviewer gave;
        return the review's event id."""
        payload = {
            "reviewer": reviewer,
            "action": action,
            "new_output": new_output,
            "rationale": rationale,
            "scores": _scores(scores),
        }
        return self._record("review", model, version, decision_id, payload)

    def record_feedback(
        self,
        decision_id: uuid.UUID,
        *,
        model: str,
        version: str,
        reporter: str,
        ground_truth: Any = None,
        correct: bool | None = None,
        comment: str | None = None,
        scores: list[Score] | list[dict[str, Any]] | None = None,
    ) -> Recorded:
        """Record what was later learned about a decision (the ground truth, whether it was
        right, named scores such as ``Score(name="faithfulness", value=0.83, source="model")``);
        return the event id."""
        payload = {
            "ground_truth": ground_truth,
            "correct": correct,
            "reporter": reporter,
            "comment": comment,
            "scores": _scores(scores),
        }
        return self._record("feedback", model, version, decision_id, payload)

    def record_deployment(
        self, *, model: str, version: str, owner: str, approved_by: str
    ) -> Recorded:
        """Record that a model version went live, who owns it and who approved it: signed, so
        only from a release pipeline holding a producer key (DRIFTLINE_PRODUCER_KEY_FILE);
        without one it is refused (``.queued`` False, counted as failed)."""
        document = self._envelope("model_deployed", model, version, None, datetime.now(UTC))
        document["payload"] = {"version": version, "owner": owner, "approved_by": approved_by}
        return Recorded.of(document["event_id"], queued=self.record_signed(document))

    @property
    def service(self) -> str:
        """The AI service this agent records for."""
        return self._service

    def complete_event(self, document: dict[str, Any]) -> dict[str, Any]:
        """An event document as a sidecar caller sends it, with what the agent stamps added
        where missing: schema, event id, time, service, and a decision id for a decision."""
        completed = {
            "schema": SCHEMA_VERSION,
            "event_id": new_event_id(),
            "occurred_at": datetime.now(UTC),
            "service": self._service,
        } | document
        if completed.get("type") == "decision":
            completed.setdefault("decision_id", new_event_id())
        return completed

    def record_event(
        self, document: dict[str, Any], parent: otel_context.Context | None = None
    ) -> bool:
        """Queue a complete event document; ``parent`` is the caller's trace context, which a
        decision's span joins. False if the queue was full and it was dropped, or if it is of a
        type only Driftline's own components write (refused, counted as failed and logged)."""
        if self._refused_here(document):
            return False
        finish = self._finisher(document, parent or otel_context.get_current())
        return self._dispatcher.submit(Record(document, finish=finish))

    def record_signed(
        self, document: dict[str, Any], parent: otel_context.Context | None = None
    ) -> bool:
        """Queue a complete event of one of Driftline's own components, signed with the
        agent's producer key on the worker after every other step, so that the signature covers
        exactly what travels. False, counted as failed and logged, when the agent has no usable
        producer key or the event is a service's own type, or if the queue was full."""
        kind = document.get("type")
        if not (isinstance(kind, str) and kind in COMPONENT_EVENT_TYPES):
            reason = f"{kind} events are a service's own: record_event records them, unsigned"
            self._dispatcher.refuse(document, reason)
            return False
        if self._producer_key is None:
            reason = f"{kind} events must be signed, and {self._unsigned}"
            self._dispatcher.refuse(document, reason)
            return False
        finish = self._finisher(document, parent or otel_context.get_current())
        return self._dispatcher.submit(Record(document, finish, seal=self._producer_key.seal))

    def record_component(
        self, kind: ComponentEventType, payload: ComponentPayload, *, model: ModelRef
    ) -> Recorded:
        """Record an event of one of Driftline's own components, signed as ``record_signed``
        signs it, around a payload built from the contract's models; return its event id.

        The event is validated here, on the caller's thread: a component's mistake (a payload
        of another type, a version that is not ``model``'s) raises ValidationError where it is
        written, not later on the worker. ``.queued`` False: refused or dropped (a full queue)
        and counted; a component that must have it recorded sends it again.
        """
        event = component_event(kind, payload, service=self._service, model=model)
        document = event.model_dump(by_alias=True, exclude={"provenance"})  # sealed on the worker
        return Recorded.of(event.event_id, queued=self.record_signed(document))

    def record_events(
        self, documents: list[dict[str, Any]], parent: otel_context.Context | None = None
    ) -> list[bool]:
        """Record complete event documents as DRIFTLINE_SIDECAR_ACK says: queued in memory
        (True: queued), or processed now and written to the spool, synced, before this returns
        (True: on disk). False: dropped or refused (as ``record_event`` refuses), and counted."""
        caller = parent or otel_context.get_current()
        taken = [n for n, document in enumerate(documents) if not self._refused_here(document)]
        records = [Record(documents[n], finish=self._finisher(documents[n], caller)) for n in taken]
        if self._ack_on_disk:
            kept = self._dispatcher.submit_on_disk(records)
        else:
            kept = [self._dispatcher.submit(record) for record in records]
        answers = [False] * len(documents)
        for position, ok in zip(taken, kept, strict=True):
            answers[position] = ok
        return answers

    def _refused_here(self, document: dict[str, Any]) -> bool:
        """Refuse (count and log) an event of a type only Driftline's own components write,
        which the public record calls never take: True if it was refused."""
        kind = document.get("type")
        if not (isinstance(kind, str) and kind in COMPONENT_EVENT_TYPES):
            return False
        reason = (
            f"{kind} events are written by Driftline's own components only, signed with a "
            "producer key; the public record call refuses them"
        )
        self._dispatcher.refuse(document, reason)
        return True

    def readiness(self) -> tuple[bool, str]:
        """Ready when Kafka takes events, or the spool has room for them and its disk writes."""
        if self._spooling is None:
            return False, self._dispatcher.report().failures[0].reason
        spool = self._spooling.spool
        fault = self._spooling.disk_fault
        spool_needed = self._ack_on_disk or not self._spooling.connected or spool.count > 0
        if fault is not None and spool_needed:
            return False, fault  # the spool is needed now, and its disk refuses it
        if self._spooling.connected:
            return True, "Kafka reachable" + (f"; but {fault}" if fault else "")
        if spool.size_bytes < spool.max_bytes:
            return True, f"Kafka unreachable; spooling ({spool.count} events waiting)"
        return False, f"Kafka unreachable and the spool at {spool.directory} is full"

    def flush(self, timeout_s: float = 10.0) -> DeliveryReport:
        """Wait for every event recorded so far to be delivered or fail; report the totals."""
        return self._dispatcher.flush(timeout_s)

    def close(self, timeout_s: float = 10.0) -> DeliveryReport:
        """Deliver what is queued within the deadline, stop, and report what was not sent."""
        report = self._dispatcher.close(timeout_s)
        if self._owns_tracer_provider and self._tracer_provider is not None:
            self._tracer_provider.shutdown()
        return report

    def __enter__(self) -> Driftline:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _record(
        self,
        event_type: EventType,
        model: str,
        version: str,
        decision_id: uuid.UUID | None,
        payload: dict[str, Any],
    ) -> Recorded:
        document = self._envelope(event_type, model, version, decision_id, datetime.now(UTC))
        caller = otel_context.get_current()
        document["payload"] = payload
        queued = self._dispatcher.submit(Record(document, finish=self._finisher(document, caller)))
        return Recorded.of(document["event_id"], queued=queued)

    def _envelope(
        self,
        event_type: EventType,
        model: str,
        version: str,
        decision_id: uuid.UUID | None,
        occurred_at: datetime,
    ) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "event_id": new_event_id(),
            "type": event_type,
            "occurred_at": occurred_at,
            "service": self._service,
            "model": {"name": model, "version": version},
            "decision_id": decision_id,
        }


def _usage(
    input_tokens: int | None,
    output_tokens: int | None,
    cached_input_tokens: int | None,
    reasoning_tokens: int | None,
) -> dict[str, int | None] | None:
    usage = {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cached_input_tokens": cached_input_tokens,
        "reasoning_tokens": reasoning_tokens,
    }
    return None if all(count is None for count in usage.values()) else usage


def _scores(scores: list[Score] | list[dict[str, Any]] | None) -> list[Any] | None:
    if scores is None:
        return None
    return [s.model_dump() if isinstance(s, Score) else s for s in scores]


def _producer_key(settings: AgentSettings) -> tuple[ProducerKey | None, str]:
    """The configured producer key, or None and why the agent cannot sign; a key that cannot
    be used refuses only the events that need it, after saying why."""
    if settings.producer_key_file is None:
        return None, "this agent has no producer key (DRIFTLINE_PRODUCER_KEY_FILE)"
    try:
        return ProducerKey.load(settings.producer_key_file), ""
    except ProducerKeyError as error:
        log.error(
            "DRIFTLINE_PRODUCER_KEY_FILE unusable; Driftline's own events will be refused",
            problem=str(error),
        )
        return None, f"DRIFTLINE_PRODUCER_KEY_FILE is unusable: {error}"


def _input_contracts(settings: AgentSettings) -> dict[str, Validator]:
    """The configured contracts; if they cannot be used, none, after saying why."""
    if settings.input_contracts is None:
        return {}
    try:
        return load_contracts(settings.input_contracts)
    except InputContractError as error:
        log.error(
            "DRIFTLINE_INPUT_CONTRACTS unusable; recording without data contracts",
            problem=str(error),
        )
        return {}


def _redactor(settings: AgentSettings, cap: LabelCap) -> Redactor:
    policy = (
        RedactionPolicy.load(settings.redaction_policy)
        if settings.redaction_policy
        else RedactionPolicy()
    )
    key = settings.redaction_key.get_secret_value().encode() if settings.redaction_key else None
    return Redactor(policy, key, cap)


def _configuration_problem(error: ValidationError | RedactionError) -> str:
    if isinstance(error, RedactionError):
        return f"DRIFTLINE_REDACTION_POLICY {error}"
    return "; ".join(
        f"DRIFTLINE_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
        for e in error.errors(include_url=False)
    )


def _open_spool(settings: AgentSettings) -> Spool:
    """The configured spool; if it cannot be used, a temporary one, so the service runs on."""
    directory = settings.spool_directory()
    try:
        return Spool(directory, max_bytes=settings.spool_max_bytes, fsync=settings.spool_fsync)
    except (SpoolError, OSError) as error:
        fallback = Path(tempfile.mkdtemp(prefix="driftline-spool-"))
        log.error(
            "DRIFTLINE_SPOOL_DIR unusable; spooling to a temporary directory that a restart "
            "will not find",
            spool_dir=str(directory),
            error=str(error),
            fallback=str(fallback),
        )
        return Spool(fallback, max_bytes=settings.spool_max_bytes, fsync=settings.spool_fsync)


class DecisionScope:
    """Times one model call and records it as a decision when the block ends without error.

    A block that raises records nothing: a failed call is not a decision.
    """

    def __init__(
        self,
        client: Driftline,
        *,
        model: str,
        version: str,
        inputs: dict[str, Any],
        automated: bool,
        subject_ref: str | None,
    ) -> None:
        self._client = client
        self._model, self._version = model, version
        self._inputs, self._automated, self._subject_ref = inputs, automated, subject_ref
        self.decision_id = new_event_id()
        self.output: Any = None
        self.confidence: float | None = None
        self.class_scores: dict[str, float] | None = None
        self._started_ns = 0

    def __enter__(self) -> DecisionScope:
        self._started_ns = time.perf_counter_ns()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            return
        latency_ms = (time.perf_counter_ns() - self._started_ns) / 1e6
        self._client.record_decision(
            model=self._model,
            version=self._version,
            inputs=self._inputs,
            output=self.output,
            confidence=self.confidence,
            latency_ms=latency_ms,
            automated=self._automated,
            class_scores=self.class_scores,
            subject_ref=self._subject_ref,
            decision_id=self.decision_id,
        )

"""Event contract v2: the one definition of Driftline's wire format.

The agent emits these events; the collector and the API import them from here. An event is an
envelope (identity, time, service, model, decision and trace ids) around a payload whose type
the envelope's ``type`` names. ``encode`` gives canonical JSON bytes (sorted keys, no
whitespace, UTC timestamps with microseconds), so the same event always hashes the same;
``wire_bytes`` gives the faster compact JSON the agent sends; ``decode`` turns either back into
an event or raises ``ContractError`` naming every bad field.

Every event is bounded, so that one event can never stall a queue behind it: at most
``MAX_EVENT_BYTES`` of JSON (Kafka refuses about 1 MB by default), nested at most ``MAX_DEPTH``
deep, and no NUL character in any key or string (PostgreSQL cannot store one, and refuses the
whole batch that holds it). ``wire_bytes`` and ``decode`` both enforce the bounds.

Version 2 adds, for generative services: cached and reasoning tokens, the provider, the response
model, the finish reason and embeddings on a decision, whose ``confidence`` becomes optional;
and named scores on reviews and feedback. Version 1 is still read, and nothing of version 2 may
appear in it. A field version 2 added is left out of the JSON when unset, so that a version 1
event, delivered again, gives the very bytes (and digest) the ledger already holds.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    PlainSerializer,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import from_json
from uuid_utils.compat import uuid7

SCHEMA_VERSION: Final = 2
READ_VERSIONS: Final = (1, 2)
MAX_EVENT_BYTES: Final = 512 * 1024
# Far beyond any real request, and within what JSON carries exactly and a store's BIGINT sums.
MAX_TOKENS: Final = 2**53
MAX_DEPTH: Final = 64  # of the whole document: the envelope takes three levels
# "\u0000" in JSON text is a NUL unless its backslash is itself escaped ("\\u0000").
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")

# What a service records about its own decisions; every other type is written by Driftline's own
# components only, signed with a producer key (``driftline.agent.provenance``), and the collector
# keeps one of those only when a producer key it trusts signed it.
ServiceEventType = Literal["decision", "review", "feedback"]
ComponentEventType = Literal[
    "model_deployed",
    "baseline_set",
    "drift_detected",
    "drift_resolved",
    "alert_notified",
    "readiness_evaluated",
    "load_tested",
    "drill_completed",
    "evaluation_set_registered",
    "evaluation_case_scored",
    "evaluation_completed",
    "thresholds_agreed",
]
EventType = Literal[ServiceEventType, ComponentEventType]
SERVICE_EVENT_TYPES: Final = frozenset(get_args(ServiceEventType))
COMPONENT_EVENT_TYPES: Final = frozenset(get_args(ComponentEventType))
ReviewAction = Literal["approve", "override", "escalate"]
ReadinessArea = Literal["technical", "data", "organisational", "governance"]
CriterionStatus = Literal["pass", "fail", "not enough data"]
ReadinessVerdict = Literal["go", "no-go", "not enough data"]
DriftTest = Literal[
    "ks",
    "chi-square",
    "unseen-share",
    "cusum",
    "g-test",  # categorical verdicts before chi-square replaced it; kept so they still read
    "missing-rate",
    "flag-rate",
    "mean-shift",
    "review-share",
    "pca-reconstruction",
    "domain-classifier",  # a text feature's words (schema 2)
]

Name = Annotated[str, Field(min_length=1, max_length=200)]
Probability = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0)]
Tokens = Annotated[int, Field(ge=0, le=MAX_TOKENS)]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Label = Annotated[str, Field(min_length=1, max_length=100)]
Comment = Annotated[str, Field(max_length=10_000)]
MAX_EMBEDDING_DIMENSIONS: Final = 8_192  # 8,192 floats are about 170 kB of JSON


def _unset(value: object) -> bool:
    return value is None or value == []


def added_in_v2() -> Any:
    """A field version 2 added: optional, and absent from the JSON when unset."""
    return Field(default=None, exclude_if=_unset)


def _in_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("must carry a timezone (UTC)")
    return value.astimezone(UTC)


def _utc_text(value: datetime) -> str:
    # isoformat is twice as fast as strftime, and pads years before 1000 as ISO 8601 wants.
    return value.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


# Always UTC, always with microseconds and Z, so that the same instant gives the same bytes.
Timestamp = Annotated[
    datetime, AfterValidator(_in_utc), PlainSerializer(_utc_text, when_used="json")
]


class ContractError(ValueError):
    """A message that is not a valid event; ``problems`` pairs each field path with why."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{field}: {reason}" for field, reason in problems))


def new_event_id() -> uuid.UUID:
    """A UUIDv7: unique, and ordered by creation time (about 1 µs, on the caller's thread)."""
    return uuid7()


def utc_now() -> datetime:
    return datetime.now(UTC)


class _Frozen(BaseModel):
    # No infinity or NaN anywhere, inputs and outputs included: JSON has no such numbers.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class ModelRef(_Frozen):
    name: Name
    version: Name


class TokenUsage(_Frozen):
    """Tokens as OpenTelemetry counts them (``gen_ai.usage.*``): ``input_tokens`` includes the
    cached ones and ``output_tokens`` the reasoning ones. (Anthropic's API reports cache reads
    apart from its ``input_tokens``: add them.)"""

    # Unbounded in version 1, which read any count: from version 2, at most MAX_TOKENS.
    input_tokens: Count | None = None
    output_tokens: Count | None = None
    cached_input_tokens: Tokens | None = added_in_v2()  # read from the provider's prompt cache
    reasoning_tokens: Tokens | None = added_in_v2()

    @model_validator(mode="after")
    def _parts_within_totals(self) -> TokenUsage:
        for part, total in (("cached_input_tokens", "input_tokens"),
                            ("reasoning_tokens", "output_tokens")):  # fmt: skip
            have, of = getattr(self, part), getattr(self, total)
            if have is not None and of is None:
                raise ValueError(f"{part} needs {total}, which include them")
            if have is not None and have > of:
                raise ValueError(f"{part} ({have}) is more than {total} ({of}), which include them")
        return self


Vector = Annotated[list[Finite], Field(min_length=1, max_length=MAX_EMBEDDING_DIMENSIONS)]


class Embeddings(_Frozen):
    """Vectors the service computed of its input and/or output, with one embedding model
    (``model``) of a stated dimension, which every vector has."""

    model: Name
    dimensions: Annotated[int, Field(ge=1, le=MAX_EMBEDDING_DIMENSIONS)]
    input: Vector | None = None
    output: Vector | None = None

    @model_validator(mode="after")
    def _vectors_of_the_stated_dimension(self) -> Embeddings:
        if self.input is None and self.output is None:
            raise ValueError("embeddings must give input or output")
        for side in ("input", "output"):
            vector = getattr(self, side)
            if vector is not None and len(vector) != self.dimensions:
                raise ValueError(f"{side} has {len(vector)} dimensions, not {self.dimensions}")
        return self


ScoreSource = Literal["human", "rule", "model"]  # model: a model as judge


class Score(_Frozen):
    """A named evaluation of a decision, as Langfuse and ``gen_ai.evaluation.result`` carry:
    numeric (a number), boolean (true or false) or categorical (a label), from its source."""

    name: Label
    value: bool | Finite | Label
    source: ScoreSource
    comment: Comment | None = added_in_v2()

    @property
    def kind(self) -> Literal["boolean", "numeric", "categorical"]:
        if isinstance(self.value, bool):
            return "boolean"
        return "categorical" if isinstance(self.value, str) else "numeric"


def _none_if_empty(scores: list[Score]) -> list[Score] | None:
    return scores or None  # no scores is one thing, whichever way it is written


Scores = Annotated[list[Score], Field(max_length=100), AfterValidator(_none_if_empty)]


def _names_once(scores: list[Score] | None) -> None:
    names = [score.name for score in scores or ()]
    if twice := sorted({name for name in names if names.count(name) > 1}):
        raise ValueError(f"each score is named once; twice: {', '.join(twice)}")


class DecisionPayload(_Frozen):
    """A model decision: what went in (as redacted by policy), what came out, how sure it was."""

    inputs: dict[str, JsonValue]
    output: JsonValue
    confidence: Probability | None = None  # required in version 1
    class_scores: dict[str, Probability] | None = None
    latency_ms: Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
    automated: bool
    subject_ref: Annotated[str, Field(max_length=200)] | None = None
    # For generative models: the GenAI operation ("chat", "text_completion"...) and tokens.
    operation: Annotated[str, Field(max_length=100)] | None = None
    usage: TokenUsage | None = None
    # How the inputs break the model's data contract, if it has one; set by the agent.
    contract_violations: list[str] = Field(default_factory=list, max_length=100)
    # gen_ai.provider.name ("openai", "aws.bedrock"...), the model that answered if it is not
    # the one asked (gen_ai.response.model), and why it stopped ("stop", "length"...).
    provider: Label | None = added_in_v2()
    response_model: Name | None = added_in_v2()
    finish_reason: Label | None = added_in_v2()
    embeddings: Embeddings | None = added_in_v2()


class ReviewPayload(_Frozen):
    """A human looked at a decision and approved, overrode or escalated it."""

    reviewer: Name
    action: ReviewAction
    new_output: JsonValue = None
    rationale: str | None = None
    scores: Scores | None = added_in_v2()

    @model_validator(mode="after")
    def _override_says_what_instead(self) -> ReviewPayload:
        if self.action == "override" and self.new_output is None:
            raise ValueError("an override must give new_output")
        _names_once(self.scores)
        return self


class FeedbackPayload(_Frozen):
    """What was later learned about a decision: the ground truth, or just right or wrong."""

    ground_truth: JsonValue = None
    correct: bool | None = None
    reporter: Name
    comment: str | None = None
    scores: Scores | None = added_in_v2()

    @model_validator(mode="after")
    def _says_something(self) -> FeedbackPayload:
        if self.ground_truth is None and self.correct is None and not self.scores:
            raise ValueError("feedback must give ground_truth, correct or scores")
        _names_once(self.scores)
        return self


class ModelDeployedPayload(_Frozen):
    """A model version went live, with who is accountable for it and who approved it."""

    version: Name
    owner: Name
    approved_by: Name


class BaselineSetPayload(_Frozen):
    """A baseline became what a model version's decisions are compared with.

    ``record`` is the baseline itself (``driftline.detectors.baseline.Baseline.to_record``) and
    ``baseline_id`` the SHA-256 of its canonical JSON, so the ledger proves which one was used.
    """

    version: Name
    baseline_id: Sha256
    source: Annotated[str, Field(min_length=1, max_length=500)]
    set_by: Name
    size: Count
    record: dict[str, JsonValue]

    @model_validator(mode="after")
    def _id_is_the_digest(self) -> BaselineSetPayload:
        if self.baseline_id != baseline_digest(self.record):
            raise ValueError("baseline_id is not the SHA-256 of the record")
        return self


class DriftPayload(_Frozen):
    """A detector's verdict on one feature of a model version, and the evidence for it."""

    version: Name
    baseline_id: Sha256
    feature: Name
    test: DriftTest
    statistic: Finite
    p_value: Probability
    adjusted_p: Probability  # after correction across the check's features
    false_alarm_rate: Probability  # the rate per check the verdict was judged at
    effect_name: Name
    effect: Finite | None  # None: unbounded, as any move off a constant baseline
    window_start: Timestamp
    window_end: Timestamp
    baseline_size: Count
    current_size: Count
    # What changed, in words, where the check can say: a text check's n-grams that moved most.
    evidence: list[Annotated[str, Field(max_length=500)]] | None = Field(
        default=None, max_length=20, exclude_if=_unset
    )


class AlertNotifiedPayload(_Frozen):
    """A receiver accepted a notification: who was told what, and when (the event's time)."""

    notification_id: uuid.UUID
    receiver: Name
    integration: Annotated[str, Field(min_length=1, max_length=40)]
    group_key: Annotated[str, Field(min_length=1, max_length=4_000)]
    status: Literal["firing", "resolved"]
    fingerprints: list[Annotated[str, Field(max_length=64)]] = Field(max_length=10_000)
    attempts: Annotated[int, Field(ge=1)]


class ReadinessCriterion(_Frozen):
    area: ReadinessArea
    name: Name
    threshold: Annotated[str, Field(max_length=500)]
    measured: Annotated[str, Field(max_length=2_000)] | None
    sample: Count | None
    status: CriterionStatus


class ReadinessPayload(_Frozen):
    """A go-live gate's evaluation: who asked, every criterion with its figure, the verdict."""

    version: Name
    asked_by: Name
    window_start: Timestamp
    window_end: Timestamp
    verdict: ReadinessVerdict
    criteria: list[ReadinessCriterion] = Field(max_length=100)


class LoadTestedPayload(_Frozen):
    """A stability audit of a version: the agent driven at a steady rate through the pipeline."""

    version: Name
    synthetic_version: Name
    rate_per_s: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    duration_s: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    peak_per_s: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    sent: Count
    lost: Count
    error_rate: Probability
    achieved_per_s: Finite
    call_median_us: Finite
    call_p99_us: Finite
    delay_median_ms: Finite | None
    delay_p99_ms: Finite | None
    recovery_s: Finite | None
    passed: bool


class DrillCompletedPayload(_Frozen):
    """An incident drill: a labelled synthetic incident, and whether its alert reached people."""

    version: Name
    synthetic_version: Name
    passed: bool
    reason: Annotated[str, Field(max_length=2_000)]
    seconds_to_notification: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None
    receivers: list[Name] = Field(max_length=100)


class EvaluationThreshold(_Frozen):
    """An acceptance threshold of an evaluation set: a metric (of the whole set, or of one tag's
    cases) and its bound."""

    metric: Name  # e.g. "pass_rate", "refusal_recall", "recall:approve", "latency_p95_ms"
    tag: Label | None = None  # None: the whole set
    minimum: Finite | None = None
    maximum: Finite | None = None

    @model_validator(mode="after")
    def _bounds_something(self) -> EvaluationThreshold:
        if self.minimum is None and self.maximum is None:
            raise ValueError(f"the threshold on {self.metric} must give minimum or maximum")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(
                f"the threshold on {self.metric} has minimum {self.minimum} over "
                f"maximum {self.maximum}"
            )
        return self


class EvaluationSetRegisteredPayload(_Frozen):
    """An evaluation set became known: its content's SHA-256, so that the ledger says which set a
    run used."""

    set_name: Name
    set_version: Name
    sha256: Sha256
    cases: Count
    must_refuse: Count  # how many of the cases are rejection cases
    tags: list[Label] = Field(max_length=1_000)
    thresholds: list[EvaluationThreshold] = Field(max_length=200)
    registered_by: Name
    source: Annotated[str, Field(min_length=1, max_length=500)]  # the file it was read from


class EvaluationCaseScoredPayload(_Frozen):
    """One case of an evaluation run: what the target answered and whether it passed."""

    version: Name
    run_id: uuid.UUID
    set_sha256: Sha256
    case_id: Name
    tags: list[Label] = Field(max_length=20)
    must_refuse: bool
    refused: bool
    passed: bool
    output: Annotated[str, Field(max_length=4_000)] | None  # the answer as JSON text, cut to fit
    latency_ms: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] | None
    error: Annotated[str, Field(max_length=2_000)] | None  # the target failed: why
    reason: Annotated[str, Field(max_length=2_000)]  # why the case failed; "" when it passed
    scores: Scores | None = None

    @model_validator(mode="after")
    def _scores_named_once(self) -> EvaluationCaseScoredPayload:
        _names_once(self.scores)
        return self


class EvaluationFigure(_Frozen):
    """One metric of an evaluation run, of the whole set or of one tag's cases, with the bound
    the set put on it and whether the figure held it."""

    metric: Name
    tag: Label | None = None
    value: Finite | None  # None: no case measured it
    sample: Count
    minimum: Finite | None = None
    maximum: Finite | None = None
    status: CriterionStatus | None = None  # None: no threshold on it


class EvaluationCompletedPayload(_Frozen):
    """An evaluation run of a set against a model version: its figures per metric and tag, and
    whether it passed the set's thresholds."""

    version: Name
    run_id: uuid.UUID
    set_name: Name
    set_version: Name
    set_sha256: Sha256
    target: Annotated[str, Field(min_length=1, max_length=500)]
    asked_by: Name
    started_at: Timestamp
    cases: Count
    errors: Count
    passed: bool
    figures: list[EvaluationFigure] = Field(max_length=5_000)
    # Per-tag figures without a threshold left out, when all would not fit in one event.
    figures_omitted: Count = 0


class ThresholdsAgreedPayload(_Frozen):
    """A named decision-maker agreed a model's go-live thresholds and the deadline of its
    decision; ``version`` "*" agrees them for every version of the model."""

    version: Name
    sha256: Sha256  # of the threshold's canonical JSON
    threshold: dict[str, JsonValue]  # the agreed threshold, as the file gave it
    decision_maker: Name
    stage: Label  # e.g. "go-live"
    deadline: Timestamp
    source: Annotated[str, Field(min_length=1, max_length=500)]


class Provenance(_Frozen):
    """Who wrote an event: the id of a producer key, and its Ed25519 signature (base64) over
    the event without this field (``driftline.agent.provenance``). Only Driftline's own components
    sign."""

    key_id: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]
    signature: Annotated[str, Field(pattern=r"^[A-Za-z0-9+/]{86}==$")]


def baseline_digest(record: dict[str, JsonValue]) -> str:
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class _Envelope(_Frozen):
    schema_version: Literal[1, 2] = Field(default=SCHEMA_VERSION, alias="schema")
    event_id: uuid.UUID = Field(default_factory=new_event_id)
    occurred_at: Timestamp = Field(default_factory=utc_now)
    service: Name
    model: ModelRef
    decision_id: uuid.UUID | None = None
    trace_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")] | None = None
    span_id: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")] | None = None

    model_config = ConfigDict(populate_by_name=True)

    @field_validator("event_id")
    @classmethod
    def _is_uuid7(cls, value: uuid.UUID) -> uuid.UUID:
        if value.version != 7:
            raise ValueError(f"must be a UUIDv7, got version {value.version}")
        return value

    def kafka_key(self) -> bytes:
        """The partition key: a decision and its reviews and feedback share one partition."""
        if self.decision_id is not None:
            return str(self.decision_id).encode()
        return f"model:{self.model.name}".encode()


class _AboutDecision(_Envelope):
    decision_id: uuid.UUID


class DecisionEvent(_AboutDecision):
    type: Literal["decision"] = "decision"
    payload: DecisionPayload


class ReviewEvent(_AboutDecision):
    type: Literal["review"] = "review"
    payload: ReviewPayload


class FeedbackEvent(_AboutDecision):
    type: Literal["feedback"] = "feedback"
    payload: FeedbackPayload


class _Component(_Envelope):
    """An event only Driftline's own components write: signed by a producer key."""

    # Left out of the JSON when absent, so that an unsigned event's bytes are what they were.
    provenance: Provenance | None = Field(default=None, exclude_if=lambda value: value is None)


class _AboutVersion(_Component):
    """An event about a model version as a whole; its payload names the version again."""

    payload: (
        ModelDeployedPayload
        | BaselineSetPayload
        | DriftPayload
        | ReadinessPayload
        | LoadTestedPayload
        | DrillCompletedPayload
        | EvaluationCaseScoredPayload
        | EvaluationCompletedPayload
        | ThresholdsAgreedPayload
    )

    @model_validator(mode="after")
    def _versions_agree(self) -> _AboutVersion:
        if self.payload.version != self.model.version:
            raise ValueError(
                f"payload.version {self.payload.version!r} differs from "
                f"model.version {self.model.version!r}"
            )
        return self


class ModelDeployedEvent(_AboutVersion):
    type: Literal["model_deployed"] = "model_deployed"
    payload: ModelDeployedPayload


class BaselineSetEvent(_AboutVersion):
    type: Literal["baseline_set"] = "baseline_set"
    payload: BaselineSetPayload


class DriftDetectedEvent(_AboutVersion):
    type: Literal["drift_detected"] = "drift_detected"
    payload: DriftPayload


class DriftResolvedEvent(_AboutVersion):
    type: Literal["drift_resolved"] = "drift_resolved"
    payload: DriftPayload


class ReadinessEvaluatedEvent(_AboutVersion):
    type: Literal["readiness_evaluated"] = "readiness_evaluated"
    payload: ReadinessPayload


class LoadTestedEvent(_AboutVersion):
    type: Literal["load_tested"] = "load_tested"
    payload: LoadTestedPayload


class DrillCompletedEvent(_AboutVersion):
    type: Literal["drill_completed"] = "drill_completed"
    payload: DrillCompletedPayload


class EvaluationCaseScoredEvent(_AboutVersion):
    type: Literal["evaluation_case_scored"] = "evaluation_case_scored"
    payload: EvaluationCaseScoredPayload


class EvaluationCompletedEvent(_AboutVersion):
    type: Literal["evaluation_completed"] = "evaluation_completed"
    payload: EvaluationCompletedPayload


class ThresholdsAgreedEvent(_AboutVersion):
    type: Literal["thresholds_agreed"] = "thresholds_agreed"
    payload: ThresholdsAgreedPayload


class AlertNotifiedEvent(_Component):
    """About the alert group's model when it has one; ``model.name`` is "*" when it spans
    several."""

    type: Literal["alert_notified"] = "alert_notified"
    payload: AlertNotifiedPayload


class EvaluationSetRegisteredEvent(_Component):
    """About a model as a whole, not one version: ``model.version`` is "*"."""

    type: Literal["evaluation_set_registered"] = "evaluation_set_registered"
    payload: EvaluationSetRegisteredPayload


# Driftline's own components' events: a plain union, so that ``Event`` is built from it.
_ComponentEvents = (
    ModelDeployedEvent
    | BaselineSetEvent
    | DriftDetectedEvent
    | DriftResolvedEvent
    | AlertNotifiedEvent
    | ReadinessEvaluatedEvent
    | LoadTestedEvent
    | DrillCompletedEvent
    | EvaluationSetRegisteredEvent
    | EvaluationCaseScoredEvent
    | EvaluationCompletedEvent
    | ThresholdsAgreedEvent
)
Event = Annotated[
    DecisionEvent | ReviewEvent | FeedbackEvent | _ComponentEvents, Field(discriminator="type")
]
_EVENT = TypeAdapter[Event](Event)
ComponentEvent = Annotated[_ComponentEvents, Field(discriminator="type")]
ComponentPayload = (
    ModelDeployedPayload
    | BaselineSetPayload
    | DriftPayload
    | AlertNotifiedPayload
    | ReadinessPayload
    | LoadTestedPayload
    | DrillCompletedPayload
    | EvaluationSetRegisteredPayload
    | EvaluationCaseScoredPayload
    | EvaluationCompletedPayload
    | ThresholdsAgreedPayload
)
# Titled, so that its errors name "ComponentEvent", not the union pydantic builds.
_COMPONENT_EVENT = TypeAdapter[ComponentEvent](
    ComponentEvent, config=ConfigDict(title="ComponentEvent")
)


def component_event(
    kind: ComponentEventType, payload: ComponentPayload, *, service: str, model: ModelRef
) -> ComponentEvent:
    """A new event (its id and time now) of one of Driftline's own components, around a payload
    already built from these models. Raise ValidationError, a mistake of the component that
    writes it, when the payload is not of the type's model or names another version than
    ``model`` does."""
    document = {"type": kind, "service": service, "model": model, "payload": payload}
    return _COMPONENT_EVENT.validate_python(document)


def encode(event: Event) -> bytes:
    """Canonical JSON bytes: sorted keys, no whitespace, UTF-8, no NaN. The ledger's form."""
    return json.dumps(
        event.model_dump(mode="json", by_alias=True),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    ).encode()


def wire_bytes(event: Event) -> bytes:
    """Compact UTF-8 JSON in field order, as the agent sends it: pydantic's serializer, three
    times faster than ``encode``. Any JSON of an event decodes to the same event, and the
    collector stores the canonical form, so the wire need not be canonical.

    Raise ContractError for an event out of bounds, ValueError (PydanticSerializationError) for
    text UTF-8 cannot carry: a lone surrogate.
    """
    raw = event.__pydantic_serializer__.to_json(event, by_alias=True)
    check_bounds(raw)
    return raw


class EventTooLarge(ContractError):
    """An event over MAX_EVENT_BYTES: what a sidecar answers with 413."""


def check_bounds(raw: bytes, document: Any = None) -> None:
    """Raise ContractError if the JSON text of an event is too large, holds a NUL or nests too
    deep; ``document`` is the text already parsed, if it was. Cheap for an ordinary event: each
    check is a scan in C unless the text is suspect."""
    if len(raw) > MAX_EVENT_BYTES:
        reason = f"is {len(raw):,} bytes, over the limit of {MAX_EVENT_BYTES:,} bytes"
        raise EventTooLarge([("message", reason)])
    suspect_nul = b"\\u0000" in raw and _NUL_ESCAPE.search(raw) is not None
    suspect_depth = raw.count(b"[") + raw.count(b"{") > MAX_DEPTH
    if not (suspect_nul or suspect_depth):
        return
    if document is None:
        try:
            document = from_json(raw)
        except ValueError as error:  # past the parser's own depth limit
            if "recursion limit" in str(error):
                reason = f"nests deeper than {MAX_DEPTH} levels"
                raise ContractError([("message", reason)]) from None
            raise ContractError([("message", f"not valid JSON: {error}")]) from None
    if problem := _out_of_bounds(document):
        raise ContractError([problem])


def _out_of_bounds(document: Any) -> tuple[str, str] | None:
    """The first key or string holding a NUL, or the first value nested too deep, with its
    path; walked without recursion, so that depth itself cannot break the walk."""
    stack: list[tuple[Any, tuple[str, ...]]] = [(document, ())]
    while stack:
        value, path = stack.pop()
        where = ".".join(path) or "message"
        if isinstance(value, str) and "\x00" in value:
            return where, "holds a NUL character (\\u0000), which stores cannot keep"
        if isinstance(value, dict | list):
            if len(path) >= MAX_DEPTH:
                return where, f"nests deeper than {MAX_DEPTH} levels"
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, child in items:
                if "\x00" in str(key):
                    return f"{where}.{key!r}", "key holds a NUL character (\\u0000)"
                stack.append((child, (*path, str(key))))
    return None


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def decode(raw: bytes) -> Event:
    """Parse and validate one message; raise ContractError saying which fields are wrong."""
    if len(raw) > MAX_EVENT_BYTES:  # refused before parsing: its size is the problem
        check_bounds(raw)
    try:
        # pydantic's parser is twice as fast as json's; what it refuses, json reads or explains.
        document = from_json(raw, allow_inf_nan=False)
    except ValueError:
        document = _parse_or_explain(raw)
    check_bounds(raw, document)
    return validate(document)


def _parse_or_explain(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as error:
        reason = f"not UTF-8 text ({error.reason} at byte {error.start})"
        raise ContractError([("message", reason)]) from None
    except ValueError as error:
        raise ContractError([("message", f"not valid JSON: {error}")]) from None
    except RecursionError:
        raise ContractError([("message", f"nests deeper than {MAX_DEPTH} levels")]) from None


def validate(document: Any) -> Event:
    """Validate an already parsed JSON document as an event of a version this build reads."""
    if not isinstance(document, dict):
        raise ContractError([("message", f"expected a JSON object, got {type(document).__name__}")])
    version = document.get("schema")
    if version not in READ_VERSIONS or isinstance(version, bool):
        reason = "missing" if version is None else f"unsupported version {version!r}"
        readable = " and ".join(map(str, READ_VERSIONS))
        raise ContractError([("schema", f"{reason}; this build reads versions {readable}")])
    try:
        event = _EVENT.validate_python(document)
    except ValidationError as error:
        raise ContractError(_problems(error, document.get("type"))) from None
    if problems := _of_its_version(event):
        raise ContractError(problems)
    return event


def _of_its_version(event: Event) -> list[tuple[str, str]]:
    """What the event's own version refuses that the models let through: in version 1, a field
    version 2 added (even null) or no confidence; from version 2, token counts over MAX_TOKENS."""
    if not isinstance(event, _AboutDecision):
        return []
    payload: BaseModel = event.payload
    if event.schema_version != 1:
        usage = getattr(payload, "usage", None)
        return [
            (f"payload.usage.{name}", f"is more than {MAX_TOKENS:,} tokens")
            for name in ("input_tokens", "output_tokens")
            if (getattr(usage, name, None) or 0) > MAX_TOKENS
        ]
    problems = [(field, "added in schema 2; this event says schema 1")
                for field in _added_in_v2(payload)]  # fmt: skip
    if isinstance(payload, DecisionPayload) and payload.confidence is None:
        problems.append(("payload.confidence", "required in schema 1"))
    return problems


def _added_in_v2(model: BaseModel, path: str = "payload") -> list[str]:
    """The fields of version 2 that the document gave ``model`` (and the models it holds),
    null or empty ones too: version 1 knew no such key."""
    used = []
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        if field.exclude_if is _unset and name in model.model_fields_set:
            used.append(f"{path}.{name}")
        elif isinstance(value, BaseModel):
            used += _added_in_v2(value, f"{path}.{name}")
    return used


def _problems(error: ValidationError, tag: object) -> list[tuple[str, str]]:
    problems = []
    for detail in error.errors(include_url=False):
        location = list(detail["loc"])
        if location and location[0] == tag:  # the union member pydantic tried, not a field
            location = location[1:]
        if detail["type"] in ("union_tag_invalid", "union_tag_not_found"):
            location = ["type"]
        field = ".".join(str(part) for part in location) or "message"
        problems.append((field, detail["msg"]))
    return problems

"""Hypothesis strategies for events of every type: of the current schema (every field it has)
and of schema 1 (only what version 1 had)."""

import uuid
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import strategies as st

from driftline.agent.contract import (
    DecisionEvent,
    DecisionPayload,
    Embeddings,
    Event,
    FeedbackEvent,
    FeedbackPayload,
    ModelDeployedEvent,
    ModelDeployedPayload,
    ModelRef,
    ReviewEvent,
    ReviewPayload,
    Score,
    TokenUsage,
)

# Text every supported store can keep: no NUL (PostgreSQL), no lone surrogate (UTF-8).
storable = st.characters(exclude_characters="\x00", exclude_categories=("Cs",))
names = st.text(storable, min_size=1, max_size=30)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | names
    | st.floats(allow_nan=False, allow_infinity=False)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(names, children, max_size=4),
    max_leaves=12,
)
probabilities = st.floats(0.0, 1.0)
VERSION_BITS, VARIANT_BITS = 0xF << 76, 0xC << 60


def _as_uuid7(bits: int) -> uuid.UUID:
    return uuid.UUID(int=(bits & ~VERSION_BITS | 0x7 << 76) & ~VARIANT_BITS | 0x8 << 60)


uuid7s = st.integers(0, 2**128 - 1).map(_as_uuid7)
timestamps = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
) | st.datetimes(
    min_value=datetime(2000, 1, 2),
    max_value=datetime(2099, 12, 30),
    timezones=st.builds(lambda h: timezone(timedelta(hours=h)), st.integers(-12, 14)),
)
hex32 = st.text("0123456789abcdef", min_size=32, max_size=32)
hex16 = st.text("0123456789abcdef", min_size=16, max_size=16)
models = st.builds(ModelRef, name=names, version=names)

envelope = {
    "event_id": uuid7s,
    "occurred_at": timestamps,
    "service": names,
    "model": models,
    "trace_id": st.none() | hex32,
    "span_id": st.none() | hex16,
}


@st.composite
def _token_usage(draw: st.DrawFn, v2: bool) -> TokenUsage:
    """Totals of at least 10,000, and (from version 2) parts of them, only where a total is."""
    totals = st.none() | st.integers(10**4, 10**7)
    usage = TokenUsage(input_tokens=draw(totals), output_tokens=draw(totals))
    if not v2:
        return usage
    parts = {
        part: draw(st.none() | st.integers(0, 10**4))
        for part, total in (
            ("cached_input_tokens", usage.input_tokens),
            ("reasoning_tokens", usage.output_tokens),
        )
        if total is not None
    }
    return usage.model_copy(update=parts)


def _usage(v2: bool) -> st.SearchStrategy[TokenUsage | None]:
    return st.none() | _token_usage(v2)


@st.composite
def embeddings(draw: st.DrawFn) -> Embeddings:
    dimensions = draw(st.integers(1, 8))
    vector = st.lists(st.floats(-1e6, 1e6), min_size=dimensions, max_size=dimensions)
    sides = draw(st.sampled_from([("input",), ("output",), ("input", "output")]))
    return Embeddings(model=draw(names), dimensions=dimensions,
                      **{side: draw(vector) for side in sides})  # fmt: skip


scores = st.builds(
    Score,
    name=names,
    value=st.booleans() | st.floats(-1e6, 1e6) | names,
    source=st.sampled_from(["human", "rule", "model"]),
    comment=st.none() | st.text(storable, max_size=40),
)
score_lists = st.lists(scores, max_size=3, unique_by=lambda score: score.name)


def _decisions(v2: bool) -> st.SearchStrategy[DecisionEvent]:
    added = {
        "provider": st.none() | names,
        "response_model": st.none() | names,
        "finish_reason": st.none() | names,
        "embeddings": st.none() | embeddings(),
    }
    return st.builds(
        DecisionEvent,
        schema_version=st.just(2 if v2 else 1),
        decision_id=st.uuids(),
        payload=st.builds(
            DecisionPayload,
            inputs=st.dictionaries(names, json_values, max_size=6),
            output=json_values,
            confidence=(st.none() | probabilities) if v2 else probabilities,
            class_scores=st.none() | st.dictionaries(names, probabilities, max_size=3),
            latency_ms=st.floats(0, 1e6),
            automated=st.booleans(),
            subject_ref=st.none() | names,
            operation=st.none() | names,
            usage=_usage(v2),
            contract_violations=st.lists(names, max_size=3),
            **(added if v2 else {}),
        ),
        **envelope,
    )


def _reviews(v2: bool) -> st.SearchStrategy[ReviewEvent]:
    return st.builds(
        ReviewEvent,
        schema_version=st.just(2 if v2 else 1),
        decision_id=st.uuids(),
        payload=st.builds(
            ReviewPayload,
            reviewer=names,
            action=st.sampled_from(["approve", "escalate"]),
            new_output=json_values,
            rationale=st.none() | st.text(storable, max_size=80),
            **({"scores": st.none() | score_lists} if v2 else {}),
        ),
        **envelope,
    )


def _feedbacks(v2: bool) -> st.SearchStrategy[FeedbackEvent]:
    return st.builds(
        FeedbackEvent,
        schema_version=st.just(2 if v2 else 1),
        decision_id=st.uuids(),
        payload=st.builds(
            FeedbackPayload,
            ground_truth=json_values.filter(lambda v: v is not None),
            correct=st.none() | st.booleans(),
            reporter=names,
            comment=st.none() | st.text(storable, max_size=80),
            **({"scores": st.none() | score_lists} if v2 else {}),
        ),
        **envelope,
    )


decisions, reviews, feedbacks = _decisions(True), _reviews(True), _feedbacks(True)
# What a version 1 agent sent: only the fields version 1 had.
v1_events = _decisions(False) | _reviews(False) | _feedbacks(False)


@st.composite
def deployments(draw: st.DrawFn) -> ModelDeployedEvent:
    model = draw(models)
    return ModelDeployedEvent(
        payload=ModelDeployedPayload(
            version=model.version, owner=draw(names), approved_by=draw(names)
        ),
        model=model,
        **{key: draw(value) for key, value in envelope.items() if key != "model"},
    )


events: st.SearchStrategy[Event] = decisions | reviews | feedbacks | deployments()

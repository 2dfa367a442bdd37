"""Schema 2 beside schema 1: what version 2 adds, and version 1 events still read to the bytes
(and so the digests) the ledger holds."""

import json
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftline.agent.contract import (
    MAX_TOKENS,
    SCHEMA_VERSION,
    ContractError,
    DecisionPayload,
    Embeddings,
    Event,
    FeedbackPayload,
    Score,
    TokenUsage,
    decode,
    encode,
)
from tests import events
from tests.strategies import names, v1_events

# Written by the version 1 code (commit 21d2a37): a chat decision with every field set, a
# decision with every optional field unset, an override and a feedback.
V1_BYTES = (Path(__file__).parent / "data" / "v1_events.jsonl").read_bytes().splitlines()
V1_PAYLOAD_KEYS = {
    "decision": {
        *("inputs", "output", "confidence", "class_scores", "latency_ms", "automated"),
        *("subject_ref", "operation", "usage", "contract_violations"),
    },
    "review": {"reviewer", "action", "new_output", "rationale"},
    "feedback": {"ground_truth", "correct", "reporter", "comment"},
}
# One value of each field version 2 added, as a version 1 document might wrongly carry it.
ADDED_IN_V2 = {
    "decision": {
        "provider": "openai",
        "response_model": "gpt-4o-2024-08-06",
        "finish_reason": "stop",
        "embeddings": {"model": "e5", "dimensions": 2, "input": [0.1, 0.2]},
    },
    "review": {"scores": [{"name": "tone", "value": 4, "source": "human"}]},
    "feedback": {"scores": [{"name": "helpful", "value": True, "source": "human"}]},
}


@pytest.mark.parametrize("raw", V1_BYTES, ids=["chat", "bare", "review", "feedback"])
def test_a_stored_version_1_event_reads_back_to_its_very_bytes(raw: bytes) -> None:
    event = decode(raw)
    assert event.schema_version == 1
    assert encode(event) == raw


@given(v1_events)
@settings(max_examples=300)
def test_a_version_1_event_has_exactly_the_version_1_fields_and_is_a_fixed_point(
    event: Event,
) -> None:
    raw = encode(event)
    document = json.loads(raw)
    assert document["schema"] == 1
    assert set(document["payload"]) == V1_PAYLOAD_KEYS[event.type]
    if document["type"] == "decision" and document["payload"]["usage"] is not None:
        assert set(document["payload"]["usage"]) == {"input_tokens", "output_tokens"}
    assert encode(decode(raw)) == raw


@pytest.mark.parametrize(
    ("line", "field", "value"),
    [(1, "provider", None), (1, "embeddings", None), (2, "scores", []), (2, "scores", None)],
)
def test_a_key_of_version_2_is_refused_in_version_1_even_when_null_or_empty(
    line: int, field: str, value: object
) -> None:
    """Version 1 knew no such key: accepted, the event would re-encode to other bytes."""
    document = json.loads(V1_BYTES[line])
    document["payload"][field] = value
    with pytest.raises(ContractError) as caught:
        decode(json.dumps(document).encode())
    assert caught.value.problems == [
        (f"payload.{field}", "added in schema 2; this event says schema 1")
    ]


def test_token_counts_are_bounded_from_version_2_and_read_as_they_were_in_version_1() -> None:
    document = json.loads(V1_BYTES[0])
    document["payload"]["usage"]["input_tokens"] = 10**20  # version 1 bounded none
    assert (
        encode(decode(json.dumps(document).encode()))
        == json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    )
    document["schema"] = 2
    with pytest.raises(ContractError) as caught:
        decode(json.dumps(document).encode())
    assert caught.value.problems == [
        ("payload.usage.input_tokens", f"is more than {MAX_TOKENS:,} tokens")
    ]


@given(v1_events, st.data())
@settings(max_examples=200)
def test_a_field_of_version_2_in_a_version_1_event_is_refused_by_name(
    event: Event, data: st.DataObject
) -> None:
    document = json.loads(encode(event))
    field, value = data.draw(st.sampled_from(sorted(ADDED_IN_V2[event.type].items())))
    document["payload"][field] = value
    with pytest.raises(ContractError) as caught:
        decode(json.dumps(document).encode())
    assert caught.value.problems == [
        (f"payload.{field}", "added in schema 2; this event says schema 1")
    ]
    document["schema"] = 2  # the same document, said to be version 2, is an event
    if field == "scores" and event.type == "feedback":
        document["payload"]["scores"] = [value[0] | {"name": data.draw(names)}]
    assert decode(json.dumps(document).encode()).schema_version == 2


def test_version_1_tokens_of_version_2_are_refused_by_path() -> None:
    document = json.loads(V1_BYTES[0])
    document["payload"]["usage"]["reasoning_tokens"] = 2
    with pytest.raises(ContractError) as caught:
        decode(json.dumps(document).encode())
    assert caught.value.problems[0][0] == "payload.usage.reasoning_tokens"


def test_confidence_is_optional_from_version_2_only() -> None:
    document = json.loads(V1_BYTES[1])
    document["payload"]["confidence"] = None
    with pytest.raises(ContractError) as caught:
        decode(json.dumps(document).encode())
    assert caught.value.problems == [("payload.confidence", "required in schema 1")]
    document["schema"] = 2
    assert decode(json.dumps(document).encode()).payload.confidence is None  # type: ignore[union-attr]


def test_new_events_are_version_2() -> None:
    assert SCHEMA_VERSION == 2
    assert json.loads(encode(events.decision()))["schema"] == 2


@pytest.mark.parametrize("version", [0, 3, "2", True, 2.5, None])
def test_a_version_this_build_does_not_read_is_refused(version: object) -> None:
    document = json.loads(V1_BYTES[1])
    document["schema"] = version
    with pytest.raises(ContractError) as caught:
        decode(json.dumps(document).encode())
    assert caught.value.problems[0][0] == "schema"


def test_cached_and_reasoning_tokens_are_parts_of_their_totals() -> None:
    assert TokenUsage(input_tokens=10, cached_input_tokens=10).cached_input_tokens == 10
    with pytest.raises(ValueError, match=r"cached_input_tokens \(11\) is more than input_tokens"):
        TokenUsage(input_tokens=10, cached_input_tokens=11)
    with pytest.raises(ValueError, match=r"reasoning_tokens \(3\) is more than output_tokens"):
        TokenUsage(output_tokens=2, reasoning_tokens=3)
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        TokenUsage(input_tokens=-1)
    # A part without its total would price cached tokens against no input at all (negative).
    with pytest.raises(ValueError, match="cached_input_tokens needs input_tokens"):
        TokenUsage(output_tokens=0, cached_input_tokens=1_000)
    with pytest.raises(ValueError, match="reasoning_tokens needs output_tokens"):
        TokenUsage(input_tokens=5, reasoning_tokens=1)
    with pytest.raises(ValueError, match="less than or equal to 9007199254740992"):
        TokenUsage(input_tokens=2**60, cached_input_tokens=2**54)


def test_an_embedding_has_its_stated_dimension() -> None:
    Embeddings(model="e5", dimensions=3, input=[1, 2, 3], output=[0, 0, 1])
    with pytest.raises(ValueError, match="output has 2 dimensions, not 3"):
        Embeddings(model="e5", dimensions=3, input=[1, 2, 3], output=[0, 1])
    with pytest.raises(ValueError, match="must give input or output"):
        Embeddings(model="e5", dimensions=3)
    with pytest.raises(ValueError, match="finite number"):
        Embeddings(model="e5", dimensions=1, input=[float("nan")])
    with pytest.raises(ValueError, match="at most 8192"):
        Embeddings(model="e5", dimensions=8192, input=[0.0] * 8193)


@pytest.mark.parametrize(
    ("value", "kind"),
    [(True, "boolean"), (False, "boolean"), (0.83, "numeric"), (4, "numeric"),
     ("relevant", "categorical"), ("0.5", "categorical")],
)  # fmt: skip
def test_a_score_is_numeric_boolean_or_categorical_by_its_json_type(
    value: object, kind: str
) -> None:
    score = Score(name="judged", value=value, source="model")  # type: ignore[arg-type]
    assert score.kind == kind
    document = json.loads(encode(events.feedback(uuid.uuid4(), payload=_feedback(score))))
    assert type(document["payload"]["scores"][0]["value"]) is type(value) or kind == "numeric"
    assert decode(encode(events.feedback(uuid.uuid4(), payload=_feedback(score)))).payload == (
        _feedback(score)
    )


def _feedback(*scores: Score) -> FeedbackPayload:
    return FeedbackPayload(reporter="judge", scores=list(scores))


def test_scores_alone_are_feedback_and_each_is_named_once() -> None:
    assert _feedback(Score(name="toxic", value=False, source="rule")).scores
    with pytest.raises(ValueError, match="named once; twice: tone"):
        _feedback(*[Score(name="tone", value=n, source="human") for n in (1, 2)])
    with pytest.raises(ValueError, match="ground_truth, correct or scores"):
        FeedbackPayload(reporter="judge", scores=[])
    for bad in ({"name": "", "value": 1}, {"name": "x", "value": float("inf")},
                {"name": "x", "value": None}, {"name": "x", "value": "x" * 101}):  # fmt: skip
        with pytest.raises(ValueError):
            Score(source="human", **bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'human', 'rule' or 'model'"):
        Score(name="x", value=1, source="crowd")  # type: ignore[arg-type]


def test_a_decision_of_version_2_without_any_generative_field_is_what_it_was() -> None:
    """Unset fields of version 2 leave no trace: a classic model's event keeps its shape."""
    payload = DecisionPayload(inputs={}, output=1, confidence=0.5, latency_ms=1, automated=True)
    document = json.loads(encode(events.decision(payload=payload)))
    assert set(document["payload"]) == V1_PAYLOAD_KEYS["decision"]

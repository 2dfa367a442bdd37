"""The event contract: canonical bytes, round trips, and errors that name the bad field."""

import json
import random
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftline.agent.contract import (
    MAX_DEPTH,
    MAX_EVENT_BYTES,
    ContractError,
    Event,
    EventTooLarge,
    decode,
    encode,
    validate,
    wire_bytes,
)
from tests import events
from tests.strategies import events as any_event
from tests.strategies import json_values


@given(any_event)
def test_decoding_encoded_event_gives_it_back(event: Event) -> None:
    assert decode(encode(event)) == event


@given(any_event)
def test_canonical_bytes_are_a_fixed_point(event: Event) -> None:
    raw = encode(event)
    assert encode(decode(raw)) == raw


@given(any_event)
def test_the_wire_bytes_decode_to_the_event_and_its_canonical_bytes(event: Event) -> None:
    decoded = decode(wire_bytes(event))
    assert decoded == event
    assert encode(decoded) == encode(event)


@given(any_event, st.randoms(use_true_random=False))
def test_key_order_and_spacing_do_not_change_canonical_bytes(
    event: Event, rng: random.Random
) -> None:
    document = json.loads(encode(event))
    shuffled = _shuffled(document, rng)
    spaced = json.dumps(shuffled, indent=2, ensure_ascii=True).encode()
    assert encode(decode(spaced)) == encode(event)


def _shuffled(value: object, rng: random.Random) -> object:
    if isinstance(value, dict):
        keys = list(value)
        rng.shuffle(keys)
        return {key: _shuffled(value[key], rng) for key in keys}
    if isinstance(value, list):
        return [_shuffled(item, rng) for item in value]
    return value


@settings(max_examples=50)
@given(any_event)
def test_timestamps_are_utc_with_microseconds(event: Event) -> None:
    occurred_at = json.loads(encode(event))["occurred_at"]
    assert len(occurred_at) == len("2026-01-01T00:00:00.000000Z")
    assert occurred_at.endswith("Z")
    assert datetime.fromisoformat(occurred_at) == event.occurred_at


def test_a_year_before_1000_keeps_four_digits_and_round_trips() -> None:
    event = events.decision(occurred_at=datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert json.loads(encode(event))["occurred_at"] == "0999-01-02T03:04:05.000000Z"
    assert decode(encode(event)) == event


@pytest.mark.parametrize("number", [float("inf"), float("-inf"), float("nan")])
def test_no_event_holds_a_number_json_cannot_carry(number: float) -> None:
    document = json.loads(encode(events.decision()))
    document["payload"]["inputs"]["income"] = number
    with pytest.raises(ContractError) as raised:
        validate(document)
    assert "payload.inputs.income" in str(raised.value)
    assert "finite number" in str(raised.value)


def test_a_time_in_another_zone_is_stored_as_utc() -> None:
    local = datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=2)))
    raw = encode(events.decision(occurred_at=local))
    assert json.loads(raw)["occurred_at"] == "2026-03-01T07:30:00.000000Z"


def test_decision_and_its_reviews_share_the_decision_key() -> None:
    decision = events.decision()
    assert events.review(decision.decision_id).kafka_key() == decision.kafka_key()
    assert decision.kafka_key() == str(decision.decision_id).encode()
    assert events.deployment().kafka_key() == b"model:credit-risk"


def _document(**changes: object) -> dict[str, object]:
    document = json.loads(encode(events.decision()))
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        target = document
        for parent in parents:
            target = target[parent]
        if value is _DELETE:
            del target[leaf]
        else:
            target[leaf] = value
    return document


_DELETE = object()


@pytest.mark.parametrize(
    ("raw", "field", "reason"),
    [
        (b"\x00\x01garbage", "message", "not valid JSON"),
        (b'{"schema":1,"type":"decis', "message", "not valid JSON"),
        (b"\xff\xfe{}", "message", "not UTF-8"),
        (b"[1, 2]", "message", "expected a JSON object"),
        (json.dumps(_document(schema=3)).encode(), "schema", "unsupported version 3"),
        (json.dumps(_document(schema=_DELETE)).encode(), "schema", "missing"),
        (json.dumps(_document(type="prediction")).encode(), "type", "does not match"),
        (
            json.dumps(_document(payload__confidence=1.5)).encode(),
            "payload.confidence",
            "less than or equal to 1",
        ),
        (json.dumps(_document(payload__inputs=_DELETE)).encode(), "payload.inputs", "required"),
        (json.dumps(_document(event_id=str(uuid.uuid4()))).encode(), "event_id", "UUIDv7"),
        (
            json.dumps(_document(occurred_at="2026-01-01T00:00:00")).encode(),
            "occurred_at",
            "timezone",
        ),
        (json.dumps(_document(trace_id="xyz")).encode(), "trace_id", "pattern"),
        (json.dumps(_document(surprise=1)).encode(), "surprise", "Extra inputs"),
        (json.dumps(_document(decision_id=None)).encode(), "decision_id", "UUID"),
        (
            encode(events.decision()).replace(b'"output":"approve"', b'"output":NaN'),
            "message",
            "NaN is not a JSON number",
        ),
        (
            encode(events.decision()).replace(b'"output":"approve"', b'"output":-Infinity'),
            "message",
            "-Infinity is not a JSON number",
        ),
    ],
)
def test_bad_message_names_the_field_and_why(raw: bytes, field: str, reason: str) -> None:
    with pytest.raises(ContractError) as caught:
        decode(raw)
    fields = [f for f, _ in caught.value.problems]
    assert field in fields, caught.value.problems
    assert reason in str(caught.value)


def test_every_bad_field_is_reported_at_once() -> None:
    raw = json.dumps(_document(payload__confidence=-1, payload__latency_ms=-5)).encode()
    with pytest.raises(ContractError) as caught:
        decode(raw)
    assert {f for f, _ in caught.value.problems} == {"payload.confidence", "payload.latency_ms"}


def test_an_override_must_say_what_instead() -> None:
    document = json.loads(encode(events.review(uuid.uuid4())))
    document["payload"]["new_output"] = None
    with pytest.raises(ContractError, match="override must give new_output"):
        decode(json.dumps(document).encode())


def test_feedback_must_say_something() -> None:
    document = json.loads(encode(events.feedback(uuid.uuid4())))
    document["payload"].update(ground_truth=None, correct=None)
    with pytest.raises(ContractError, match="ground_truth, correct or scores"):
        decode(json.dumps(document).encode())


def test_deployment_versions_must_agree() -> None:
    document = json.loads(encode(events.deployment()))
    document["payload"]["version"] = "4"
    with pytest.raises(ContractError, match=r"differs from model\.version"):
        decode(json.dumps(document).encode())


@given(json_values, st.sampled_from(["output", "inputs", "confidence", "schema", "type"]))
@settings(max_examples=300)
def test_the_fast_parser_accepts_exactly_what_the_standard_one_does(
    value: object, field: str
) -> None:
    """decode takes pydantic's JSON parser first; it must agree with json.loads + validate."""
    document = json.loads(encode(events.decision()))
    if field in ("output", "inputs", "confidence"):
        document["payload"][field] = value
    else:
        document[field] = value
    raw = json.dumps(document, ensure_ascii=False, allow_nan=True).encode("utf-8", "surrogatepass")
    try:
        expected: Event | str = validate(json.loads(raw))
    except (ContractError, ValueError) as error:
        expected = type(error).__name__
    try:
        got: Event | str = decode(raw)
    except ContractError as error:
        got = type(error).__name__
    assert got == expected


def _decision_with_inputs(inputs: object) -> dict[str, object]:
    document = json.loads(encode(events.decision()))
    document["payload"]["inputs"] = inputs
    return document


@given(json_values, st.text(max_size=5), st.text(max_size=5), st.booleans())
@settings(max_examples=300)
def test_a_nul_anywhere_is_refused_and_named(
    value: object, before: str, after: str, in_key: bool
) -> None:
    """No store can be handed a NUL: in a key or a string, at any depth, wire_bytes and decode
    both refuse the event and name where the NUL is."""
    text = f"{before}\x00{after}"
    inputs = {text: value} if in_key else {"nested": [{"deeper": [value, text]}]}
    document = _decision_with_inputs(inputs)
    with pytest.raises(ContractError, match="NUL") as refused:
        wire_bytes(validate(document))
    assert refused.value.problems[0][0].startswith("payload.inputs")
    with pytest.raises(ContractError, match="NUL"):
        decode(json.dumps(document).encode())


@given(st.text(max_size=10).filter(lambda t: "\x00" not in t))
def test_the_text_of_an_escaped_nul_is_kept(prefix: str) -> None:
    """A backslash followed by "u0000" is ordinary text, not a NUL: it passes and round-trips."""
    document = _decision_with_inputs({"note": prefix + "\\u0000" + "\\\\u0000"})
    try:
        event = validate(document)
        raw = wire_bytes(event)
    except ValueError:  # a lone surrogate in the prefix: not what this test is about
        return
    assert decode(raw) == event


def _nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


def test_nesting_is_bounded_at_any_depth() -> None:
    """Deep JSON is a contract error naming the limit, never a RecursionError: at the limit,
    past it, and 10,000 deep (20 KB), which once crashed the collector."""
    envelope_levels = 3  # the document, payload and inputs
    within = _decision_with_inputs({"v": _nested(MAX_DEPTH - envelope_levels)})
    assert decode(json.dumps(within).encode())
    past = _decision_with_inputs({"v": _nested(MAX_DEPTH - envelope_levels + 1)})
    with pytest.raises(ContractError, match=f"deeper than {MAX_DEPTH}"):
        decode(json.dumps(past).encode())
    with pytest.raises(ContractError, match=f"deeper than {MAX_DEPTH}"):
        wire_bytes(validate(past))
    raw = encode(events.decision()).replace(b'"inputs":{', b'"inputs":{"v":' + b"[" * 10_000)
    raw = raw.replace(b'"output"', b"1" + b"]" * 10_000 + b',"x":1},"output"', 1)
    with pytest.raises(ContractError, match="deeper"):
        decode(raw)


def test_an_event_over_the_size_limit_is_refused_naming_it() -> None:
    document = _decision_with_inputs({"prompt": "x" * MAX_EVENT_BYTES})
    with pytest.raises(EventTooLarge, match=f"{MAX_EVENT_BYTES:,} bytes"):
        wire_bytes(validate(document))
    with pytest.raises(EventTooLarge):
        decode(json.dumps(document).encode())
    near = _decision_with_inputs({"prompt": "x" * (MAX_EVENT_BYTES - 2_000)})
    assert len(wire_bytes(validate(near))) <= MAX_EVENT_BYTES


def test_a_lone_surrogate_does_not_let_a_nul_or_deep_nesting_through_decode() -> None:
    """decode falls back to the standard parser for a lone surrogate escape; the bounds are
    still checked on what it parsed."""
    document = _decision_with_inputs({"note": "a"})
    raw = json.dumps(document).encode().replace(b'"a"', b'"a\\u0000b\\ud800"')
    with pytest.raises(ContractError, match="NUL"):
        decode(raw)
    deep = json.dumps(_decision_with_inputs({"v": _nested(100), "w": "a"})).encode()
    with pytest.raises(ContractError, match="deeper"):
        decode(deep.replace(b'"w": "a"', b'"w": "\\ud800"'))

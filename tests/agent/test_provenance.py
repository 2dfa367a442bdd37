"""The signing helper both sides use (driftline.agent.provenance): a signature made over any JSON
document, odd Unicode included, verifies from any JSON text of it; any change to one field, one key,
or the signature itself fails verification; an event sealed by the agent verifies from the exact
bytes it travels as."""

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from driftline.agent.contract import COMPONENT_EVENT_TYPES, decode, wire_bytes
from driftline.agent.provenance import (
    ProducerKey,
    ProducerKeyError,
    TrustedProducers,
    load_public_key,
    signed_bytes,
)
from tests import events
from tests.strategies import deployments, json_scalars

KEY = ProducerKey.generate()
TRUSTED = TrustedProducers([KEY.public_key])

# Any text UTF-8 can carry: combining marks, right-to-left, emoji, quotes, backslashes, line
# and paragraph separators, controls, NUL; not a lone surrogate, which no JSON text can be.
odd_text = st.text(st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    [
        "",
        "é",
        "e\u0301",
        "\u202ertl",
        "\u2028\u2029",
        '"\\/',
        "\x00\x1f",
        "\U0001d54f\U0001f642",
        "\ufeff",
        "\u01c5",
    ]
)
odd_json = st.recursive(
    json_scalars | odd_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(odd_text, children, max_size=4)
    ),
    max_leaves=16,
)
documents = st.dictionaries(odd_text.filter(lambda k: k != "provenance"), odd_json, min_size=1)


def signed(document: dict[str, Any]) -> dict[str, Any]:
    return document | {"provenance": KEY.sign(document)}


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def paths(value: Any, where: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a document a value sits, the document's own fields first."""
    found = [where] if where else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, (*where, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths(child, (*where, index))
    return found


def replaced(document: Any, where: tuple[Any, ...], new: Any) -> Any:
    if not where:
        return new
    copy = json.loads(json.dumps(document))
    node = copy
    for step in where[:-1]:
        node = node[step]
    node[where[-1]] = new
    return copy


@given(document=documents, ensure_ascii=st.booleans(), indent=st.none() | st.integers(0, 3))
def test_a_signature_verifies_from_any_json_text_of_the_document(
    document: dict[str, Any], ensure_ascii: bool, indent: int | None
) -> None:
    text = json.dumps(signed(document), ensure_ascii=ensure_ascii, indent=indent)
    assert TRUSTED.unproven(json.loads(text)) is None


@given(document=documents, data=st.data())
def test_changing_any_one_value_fails_verification(
    document: dict[str, Any], data: st.DataObject
) -> None:
    where = data.draw(st.sampled_from(paths(document)))
    new = data.draw(odd_json)
    forged = replaced(signed(document), where, new)
    assume(canonical(forged) != canonical(signed(document)))  # True == 1, 1.0 == 1 in Python
    assert "does not match the content" in str(TRUSTED.unproven(forged))


@given(document=documents, data=st.data())
def test_renaming_removing_or_adding_a_field_fails_verification(
    document: dict[str, Any], data: st.DataObject
) -> None:
    name = data.draw(st.sampled_from(sorted(document)))
    other = data.draw(odd_text.filter(lambda k: k not in document and k != "provenance"))
    renamed = {other if key == name else key: value for key, value in document.items()}
    removed = {key: value for key, value in document.items() if key != name}
    added = document | {other: data.draw(odd_json)}
    provenance = KEY.sign(document)
    for forged in (renamed, removed, added):
        assert TRUSTED.unproven(forged | {"provenance": provenance}) is not None


@given(document=documents, data=st.data())
def test_a_tampered_signature_or_key_id_fails_verification(
    document: dict[str, Any], data: st.DataObject
) -> None:
    provenance = KEY.sign(document)
    raw = bytearray(base64.b64decode(provenance["signature"]))
    raw[data.draw(st.integers(0, 63))] ^= 1 << data.draw(st.integers(0, 7))
    flipped = provenance | {"signature": base64.b64encode(bytes(raw)).decode()}
    other_key = provenance | {"key_id": ProducerKey.generate().key_id}
    assert "does not match" in str(TRUSTED.unproven(document | {"provenance": flipped}))
    assert "not one the collector trusts" in str(
        TRUSTED.unproven(document | {"provenance": other_key})
    )
    assert TRUSTED.unproven(document) == "it carries no provenance"
    assert TrustedProducers().unproven(document | {"provenance": provenance}) is not None


def test_provenance_of_the_wrong_shape_proves_nothing_and_never_raises() -> None:
    document = {"type": "model_deployed"}
    good = KEY.sign(document)
    for provenance in (
        "signed",
        [good],
        {},
        {"key_id": KEY.key_id},
        good | {"signature": "not base64!"},
        good | {"signature": base64.b64encode(b"short").decode()},
        good | {"signature": None},
    ):
        assert TRUSTED.unproven(document | {"provenance": provenance}) is not None


def test_the_signature_covers_a_prefix_then_the_canonical_json() -> None:
    document = {"b": "é", "a": [1, 2.5, None], "provenance": "ignored"}
    assert signed_bytes(document) == b'driftline-provenance-v1\x00{"a":[1,2.5,null],"b":"\xc3\xa9"}'


@given(event=deployments())
def test_a_sealed_event_verifies_from_the_exact_bytes_it_travels_as(event: Any) -> None:
    sealed = KEY.seal(event)
    raw = wire_bytes(sealed)
    assert TRUSTED.unproven(json.loads(raw)) is None
    assert TRUSTED.refusal(decode(raw)) is None
    assert decode(raw) == sealed


def test_an_unsigned_or_untrusted_component_event_is_refused_naming_its_type() -> None:
    stranger = ProducerKey.generate()
    for event in (events.deployment(), events.readiness(), events.load_test(),
                  *events.evaluations()):  # fmt: skip
        assert event.type in COMPONENT_EVENT_TYPES
        for candidate in (event, stranger.seal(event)):
            refusal = TRUSTED.refusal(candidate)
            assert refusal is not None
            assert refusal.startswith(
                f"{event.type}: not signed by a trusted Driftline producer key (forged?)"
            )
        assert TRUSTED.refusal(KEY.seal(event)) is None


def test_a_services_own_events_need_no_signature_and_are_never_sealed() -> None:
    decision = events.decision()
    assert TRUSTED.refusal(decision) is None
    with pytest.raises(ValueError, match="decision events are a service's own"):
        KEY.seal(decision)


def test_keys_are_made_once_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "producer-key.pem"
    made = ProducerKey.load(path, create=True)
    assert path.stat().st_mode & 0o777 == 0o600
    assert ProducerKey.load(path, create=True).key_id == made.key_id
    (tmp_path / "public.pem").write_text(made.public_pem())
    public = load_public_key(tmp_path / "public.pem")
    assert TrustedProducers([public]).refusal(made.seal(events.deployment())) is None
    with pytest.raises(ProducerKeyError, match="DRIFTLINE_PRODUCER_KEY_FILE"):
        ProducerKey.load(tmp_path / "missing.pem")
    with pytest.raises(ProducerKeyError, match="not a readable PEM"):
        load_public_key(path)  # a private key is not a public one

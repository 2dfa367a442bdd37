"""Redaction rules and detectors: what a policy says is applied, what it does not say is left
alone, and no e-mail address or card number survives anywhere in a payload."""

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.redaction import RedactionError, RedactionPolicy, Redactor

POLICY = RedactionPolicy.model_validate(
    {
        "models": {
            "credit-risk": {
                "rules": [
                    {"field": "ssn", "action": "drop"},
                    {"path": "inputs.applicant.name", "action": "hash"},
                    {"field": "address", "action": "mask"},
                    {"field": "support_email", "action": "keep"},
                ]
            },
            "*": {"detect": ["email"]},
        }
    }
)


def redacted(payload: dict[str, Any], model: str = "credit-risk", key: bytes = b"k") -> Any:
    document = {"model": {"name": model, "version": "1"}, "payload": payload}
    Redactor(POLICY, key)(document)
    return document["payload"]


def test_rules_drop_hash_mask_and_keep() -> None:
    payload = redacted(
        {
            "inputs": {
                "ssn": "123-45-6789",
                "applicant": {"name": "Jane Doe", "ssn": "987-65-4321"},
                "address": "1 Main St",
                "support_email": "help@bank.example",
                "income": 52_000,
            },
            "output": "approve",
        }
    )
    inputs = payload["inputs"]
    assert "ssn" not in inputs and "ssn" not in inputs["applicant"]
    assert inputs["applicant"]["name"].startswith("hmac-sha256:")
    assert inputs["address"] == "[redacted]"
    assert inputs["support_email"] == "help@bank.example"
    assert (inputs["income"], payload["output"]) == (52_000, "approve")


def test_hashes_join_equal_values_and_depend_on_the_key() -> None:
    def name_hash(key: bytes) -> str:
        payload = redacted({"inputs": {"applicant": {"name": "Jane Doe"}}}, key=key)
        return str(payload["inputs"]["applicant"]["name"])

    assert name_hash(b"k") == name_hash(b"k")
    assert name_hash(b"k") != name_hash(b"other key")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail jane.doe@example.com today", "mail [email] today"),
        ("card 4111 1111 1111 1111 ok", "card [card] ok"),
        ("card 4111-1111-1111-1111", "card [card]"),
        ("order 1234 5678 9012 3456", "order 1234 5678 9012 3456"),  # fails Luhn: not a card
        ("call +44 20 7946 0958 now", "call [phone] now"),
        ("call (415) 555-0134", "call [phone]"),
        ("on 2026-11-22 at 10:30", "on 2026-11-22 at 10:30"),
        ("income 52000, age 41", "income 52000, age 41"),
    ],
)
def test_detectors_in_free_text(text: str, expected: str) -> None:
    assert redacted({"inputs": {"notes": text}})["inputs"]["notes"] == expected


def test_a_card_number_given_as_a_number_is_masked() -> None:
    assert redacted({"inputs": {"pan": 4111111111111111}})["inputs"]["pan"] == "[card]"


def test_a_model_scans_only_for_what_its_policy_names() -> None:
    notes = "jane.doe@example.com, 4111 1111 1111 1111"
    scanned = redacted({"inputs": {"notes": notes}}, model="fraud")  # "*": e-mail only
    assert scanned["inputs"]["notes"] == "[email], 4111 1111 1111 1111"


def test_free_text_in_reviews_and_feedback_is_scanned() -> None:
    payload = redacted({"rationale": "spoke to jane.doe@example.com", "comment": None})
    assert payload["rationale"] == "spoke to [email]"


json_leaves = st.none() | st.booleans() | st.integers() | st.text(max_size=20)
json_trees = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)
SECRETS = ["jane.doe@example.com", "4111 1111 1111 1111", "5500-0000-0000-0004"]


@given(json_trees, st.sampled_from(SECRETS), st.text(max_size=10), st.text(max_size=10))
def test_no_seeded_secret_survives_anywhere(
    tree: Any, secret: str, before: str, after: str
) -> None:
    inputs = {"data": tree, "notes": f"{before} {secret} {after}"}
    payload = redacted({"inputs": inputs, "output": [secret]})
    text = json.dumps(payload)
    assert secret not in text
    assert secret.replace(" ", "").replace("-", "") not in text


def test_a_policy_file_with_a_mistake_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("models:\n  '*':\n    rules:\n      - field: ssn\n        action: shred\n")
    with pytest.raises(RedactionError, match=r"policy\.yaml: models\.\*\.rules\.0\.action"):
        RedactionPolicy.load(path)


def test_hashing_without_a_key_is_refused() -> None:
    with pytest.raises(RedactionError, match="DRIFTLINE_REDACTION_KEY"):
        Redactor(POLICY, None)

"""Redaction rules and detectors: a model's rules add to "*"'s, field names match in any case and
spelling, what a policy does not say is left alone, and no e-mail address, card or phone number
survives anywhere in a payload: in a key or a value, at any depth, in any free-text field of any
event type, in any of the formats people write them."""

import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from driftline.agent import contract, redaction
from driftline.agent.contract import baseline_digest, validate
from driftline.agent.redaction import RedactionError, RedactionPolicy, Redactor

SHIPPED_POLICY = Path(__file__).parents[2] / "deploy" / "config" / "redaction.yaml"
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
EMAIL = "jane.doe@example.com"


def policy_of(models: dict[str, Any]) -> RedactionPolicy:
    return RedactionPolicy.model_validate({"models": models})


def redacted(
    payload: dict[str, Any],
    model: str = "credit-risk",
    key: bytes = b"k",
    policy: RedactionPolicy = POLICY,
) -> Any:
    document = {"model": {"name": model, "version": "1"}, "payload": payload}
    Redactor(policy, key)(document)
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


# Rules: merged with "*", an opt-out, and names in any case and spelling.


def test_a_models_rules_add_to_the_star_rules() -> None:
    policy = policy_of(
        {
            "*": {"rules": [{"field": "ssn", "action": "drop"}]},
            "credit-risk": {"rules": [{"field": "iban", "action": "drop"}]},
        }
    )
    inputs = {"ssn": "123-45-6789", "iban": "GB29NWBK60161331926819", "income": 1}
    assert redacted({"inputs": inputs}, policy=policy)["inputs"] == {"income": 1}


def test_a_models_own_rule_wins_over_star_for_the_same_field_or_path() -> None:
    policy = policy_of(
        {
            "*": {
                "rules": [
                    {"field": "contact", "action": "drop"},
                    {"path": "inputs.applicant.name", "action": "mask"},
                ]
            },
            "credit-risk": {
                "rules": [
                    {"field": "Contact", "action": "keep"},
                    {"path": "inputs.applicant.name", "action": "keep"},
                ]
            },
        }
    )
    inputs = {"contact": "help@bank.example", "applicant": {"name": "Jane Doe"}}
    assert redacted({"inputs": inputs}, policy=policy)["inputs"] == inputs


def test_a_path_rule_is_more_specific_than_a_field_rule() -> None:
    policy = policy_of(
        {
            "*": {"rules": [{"path": "inputs.applicant.name", "action": "mask"}]},
            "credit-risk": {"rules": [{"field": "name", "action": "keep"}]},
        }
    )
    inputs = {"applicant": {"name": "Jane Doe"}, "product": {"name": "Gold"}}
    assert redacted({"inputs": inputs}, policy=policy)["inputs"] == {
        "applicant": {"name": "[redacted]"},
        "product": {"name": "Gold"},
    }


def test_a_models_detectors_add_to_the_star_detectors() -> None:
    policy = policy_of({"*": {"detect": ["email"]}, "credit-risk": {"detect": ["card"]}})
    notes = f"{EMAIL}, 4111 1111 1111 1111, +44 20 7946 0958"
    scanned = redacted({"inputs": {"notes": notes}}, policy=policy)
    assert scanned["inputs"]["notes"] == "[email], [card], +44 20 7946 0958"


def test_a_model_can_opt_out_of_the_star_policy(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(
        "models:\n"
        "  '*': {rules: [{field: ssn, action: drop}], detect: [email, card, phone]}\n"
        "  research: {inherit: false, rules: [{field: notes, action: mask}], detect: [card]}\n"
    )
    inputs = {"ssn": "123-45-6789", "notes": "call me", "contact": EMAIL}
    payload = redacted({"inputs": inputs}, model="research", policy=RedactionPolicy.load(path))
    assert payload["inputs"] == {"ssn": "123-45-6789", "notes": "[redacted]", "contact": EMAIL}


@pytest.mark.parametrize(
    ("models", "error"),
    [
        (
            "credit-risk: {inherit: sometimes}",
            r"policy\.yaml: models\.credit-risk\.inherit: Input should be a valid boolean",
        ),
        ("'*': {inherit: false}", r"policy\.yaml: models\.\*\.inherit: .*nothing to inherit"),
        (
            "credit-risk: {rules: [{field: ssn, action: drop}, {field: SSN, action: keep}]}",
            r"policy\.yaml: models\.credit-risk: "
            r"rules\.1 names the same field as rules\.0 \('ssn'\)",
        ),
        (
            "credit-risk: {rules: [{path: applicant.name, action: drop}]}",
            r"policy\.yaml: models\.credit-risk\.rules\.0\.path: .*must start with .*inputs",
        ),
    ],
)
def test_a_policy_mistake_is_named_with_its_file_model_and_key(
    tmp_path: Path, models: str, error: str
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(f"models:\n  {models}\n")
    with pytest.raises(RedactionError, match=error):
        RedactionPolicy.load(path)


@pytest.mark.parametrize("key", ["ssn", "SSN", "Ssn", "sSn"])
def test_field_names_match_in_any_case(key: str) -> None:
    inputs = {key: "123-45-6789", "applicant": {key: "987-65-4321"}}
    assert redacted({"inputs": inputs})["inputs"] == {"applicant": {}}


@pytest.mark.parametrize(
    "key", ["date_of_birth", "dateOfBirth", "DateOfBirth", "date-of-birth", "Date Of Birth"]
)
def test_field_names_match_whatever_their_separators(key: str) -> None:
    policy = policy_of({"*": {"rules": [{"field": "DATE_OF_BIRTH", "action": "mask"}]}})
    assert redacted({"inputs": {key: "1984-03-02"}}, policy=policy)["inputs"] == {key: "[redacted]"}


def test_path_rules_match_in_any_case_and_through_lists() -> None:
    policy = policy_of({"*": {"rules": [{"path": "inputs.people[].Name", "action": "mask"}]}})
    inputs = {"People": [{"NAME": "Jane Doe"}, {"name": "John Roe", "age": 41}]}
    assert redacted({"inputs": inputs}, policy=policy)["inputs"] == {
        "People": [{"NAME": "[redacted]"}, {"name": "[redacted]", "age": 41}]
    }
    hashed = redacted({"inputs": {"Applicant": {"Name": "Jane Doe"}}})["inputs"]
    assert hashed["Applicant"]["Name"].startswith("hmac-sha256:")


def test_the_shipped_policy_drops_ssn_for_credit_risk() -> None:
    inputs = {
        "ssn": "123-45-6789",
        "applicant": {"SSN": "987-65-4321", "name": "Jane Doe"},
        "iban": "GB29NWBK60161331926819",
        "income": 52_000,
        "email": EMAIL,
    }
    payload = redacted({"inputs": inputs}, policy=RedactionPolicy.load(SHIPPED_POLICY))
    assert "ssn" not in json.dumps(payload).casefold()
    assert payload["inputs"]["applicant"] == {"name": "[redacted]"}
    assert payload["inputs"]["email"].startswith("hmac-sha256:")
    assert (payload["inputs"]["income"], "iban" in payload["inputs"]) == (52_000, False)


# What is scanned: keys, every free-text field of every event type; never ids or figures.


def test_keys_are_scanned_and_stay_unique() -> None:
    scores = {EMAIL: 1, "john@example.org": 2, "[email]": 3, "4111 1111 1111 1111": 4, "x": 5}
    assert redacted({"inputs": {"scores": scores}})["inputs"]["scores"] == {
        "[email]#2": 1,
        "[email]#3": 2,
        "[email]": 3,
        "[card]": 4,
        "x": 5,
    }
    assert redacted({"inputs": {"by_pan": {4111111111111111: "x"}}})["inputs"] == {
        "by_pan": {"[card]": "x"}
    }


DECISION_ID = "01a2013c-c392-7246-a8d7-dd63790c6e47"
FREE_TEXT_EVENTS: dict[str, dict[str, Any]] = {
    "decision": {
        "inputs": {"note": EMAIL},
        "output": EMAIL,
        "confidence": 0.5,
        "class_scores": {EMAIL: 0.5},
        "latency_ms": 1.0,
        "automated": True,
        "subject_ref": EMAIL,
        "contract_violations": [f"{EMAIL}: minimum 0"],
    },
    "review": {
        "reviewer": EMAIL,
        "action": "override",
        "new_output": {"to": EMAIL},
        "rationale": f"spoke to {EMAIL}",
    },
    "feedback": {"reporter": EMAIL, "ground_truth": EMAIL, "comment": f"from {EMAIL}"},
    "model_deployed": {"version": "3", "owner": EMAIL, "approved_by": EMAIL},
}


@pytest.mark.parametrize("event_type", FREE_TEXT_EVENTS)
def test_every_free_text_field_of_every_event_type_is_scanned(event_type: str) -> None:
    document = {
        "schema": 1,
        "type": event_type,
        "service": "loan-desk",
        "model": {"name": "credit-risk", "version": "3"},
        "decision_id": None if event_type == "model_deployed" else DECISION_ID,
        "payload": copy.deepcopy(FREE_TEXT_EVENTS[event_type]),
    }
    Redactor(POLICY, b"k")(document)
    assert EMAIL not in json.dumps(document)
    validate(document)  # still a valid event


def test_class_labels_are_scanned_but_no_rule_applies_to_them() -> None:
    policy = policy_of({"*": {"rules": [{"field": "email", "action": "hash"}]}})
    scores = {"email": 0.7, "sms": 0.2, EMAIL: 0.1}
    payload = redacted({"inputs": {}, "class_scores": scores}, policy=policy)
    assert payload["class_scores"] == {"email": 0.7, "sms": 0.2, "[email]": 0.1}


def test_ids_versions_and_figures_are_never_touched() -> None:
    record = {"source": "4111 1111 1111 1111", "owner": EMAIL, "phone": 4155552671}
    payload = {
        "version": "4111.1111.1111.1111",
        "baseline_id": baseline_digest(record),
        "source": "decisions of 2026-11",
        "set_by": "a.kim",
        "size": 4111111111111111,
        "record": record,
    }
    document = {
        "schema": 1,
        "type": "baseline_set",
        "event_id": "01a2013c-c392-7246-a8d7-dd63790c6e47",
        "service": "020 7946 0958",
        "model": {"name": "4111-1111-1111-1111", "version": "4111.1111.1111.1111"},
        "payload": payload,
    }
    original = json.loads(json.dumps(document))
    Redactor(POLICY, b"k")(document)
    assert document == original
    validate(document)


# The payload fields, of every event type, that are not free text, and why.
NOT_FREE_TEXT = {
    # figures, flags, token counts and vectors
    "confidence", "latency_ms", "automated", "usage", "embeddings", "correct", "size",
    "statistic", "p_value", "adjusted_p", "false_alarm_rate", "effect", "baseline_size",
    "current_size", "attempts",
    "rate_per_s", "duration_s", "peak_per_s", "sent", "lost", "error_rate", "achieved_per_s",
    "call_median_us", "call_p99_us", "delay_median_ms", "delay_p99_ms", "recovery_s", "passed",
    "seconds_to_notification", "window_start", "window_end",
    "cases", "must_refuse", "refused", "errors", "started_at", "deadline", "figures",
    "figures_omitted",
    # enumerations, versions, ids and digests
    "operation", "provider", "response_model", "finish_reason", "action", "version",
    "synthetic_version", "baseline_id", "test", "status", "verdict", "notification_id",
    "fingerprints", "run_id", "sha256", "set_sha256",
    # the baseline itself: its SHA-256 is baseline_id, so one changed byte refuses the event;
    # an agreed threshold likewise, whose SHA-256 is sha256
    "record", "threshold",
    # scanned in part, by ``Redactor._score``: a score's comment and label, not its name,
    # number or source
    "scores",
    # Driftline's own words about a verdict (a text check's n-grams, of texts already redacted)
    "evidence",
    # names from Driftline's own configuration, written by its components
    "feature", "effect_name", "receiver", "receivers", "integration", "group_key", "criteria",
    "stage",
    # names from an evaluation set's file: the set's, its cases' ids, tags and thresholds
    "set_name", "set_version", "case_id", "tags", "thresholds",
}  # fmt: skip


def test_every_payload_field_is_either_scanned_or_known_not_to_be_free_text() -> None:
    payloads = [
        model for name, model in vars(contract).items()
        if name.endswith("Payload") and isinstance(model, type)  # not the ComponentPayload union
    ]  # fmt: skip
    fields = {name for payload in payloads for name in payload.model_fields}
    scanned = redaction.FREE_TEXT | {"class_scores"}  # its labels as keys, under no rule
    assert len(payloads) == 14 and fields - scanned == NOT_FREE_TEXT


# Detectors: the formats cards and phones are written in, and what must not be mistaken for one.


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail jane.doe@example.com today", "mail [email] today"),
        ("mail Jane.DOE@Example.COM", "mail [email]"),
        ("card 4111 1111 1111 1111 ok", "card [card] ok"),
        ("card 4111-1111-1111-1111", "card [card]"),
        ("card 4111.1111.1111.1111", "card [card]"),
        ("card 4111/1111/1111/1111", "card [card]"),
        ("card 4111111111111111.", "card [card]."),
        ("amex 3782 822463 10005", "amex [card]"),
        ("cards 4111 1111 1111 1111 5500 0000 0000 0004", "cards [card] [card]"),
        ("ref 2222 4111 1111 1111 1111", "ref 2222 [card]"),
        ("call +44 20 7946 0958 now", "call [phone] now"),
        ("call +44 (0)20 7946 0958", "call [phone]"),
        ("call 0044 20 7946 0958", "call [phone]"),
        ("call 020 7946 0958 or 07700 900123", "call [phone] or [phone]"),
        ("call (415) 555-0134", "call [phone]"),
        ("call 415.555.2671, 415-555-2671", "call [phone], [phone]"),
        ("call +1 415-555-2671 or +14155552671", "call [phone] or [phone]"),
        ("tel:+33 1 23 45 67 89", "tel:[phone]"),
    ],
)
def test_detectors_in_free_text(text: str, expected: str) -> None:
    assert redacted({"inputs": {"notes": text}})["inputs"]["notes"] == expected


@pytest.mark.parametrize(
    "text",
    [
        "order 1234 5678 9012 3456",  # fails Luhn: not a card
        "on 2026-11-22 at 10:30",
        "on 05.11.2026 10:30, 2026-11-22T10:30:00Z",
        "income 52000, age 41, amount 1 234 567.89",
        "ratio 0.25 of 10.0.0.1, v1.20.3",
        "at 1732271400001 ms",  # an epoch timestamp in ms that passes Luhn
        "iban digits 1234567890123456789012345",  # a longer number, not a card in it
        "event 01a2013c-c392-7246-a8d7-dd63790c6e47, up +52000",
    ],
)
def test_ordinary_numbers_dates_and_ids_in_text_are_left_alone(text: str) -> None:
    assert redacted({"inputs": {"notes": text}})["inputs"]["notes"] == text


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("pan", 4111111111111111, "[card]"),
        ("pan", 4111111111111111.0, "[card]"),
        ("pan", 378282246310005, "[card]"),
        ("phone", 4155552671, "[phone]"),
        ("Mobile_Number", 14155552671, "[phone]"),
        ("PHONE", "4155552671", "[phone]"),
        ("telephone", "+1 4155552671", "[phone]"),
        ("phones", [4155552671, 14155552671], ["[phone]", "[phone]"]),
        (
            "Contact_Phone",
            {"number": 2079460958, "country": 44},
            {"number": "[phone]", "country": 44},
        ),
        # ordinary numbers: amounts, ids, counts and timestamps
        ("amount", 4155552671, 4155552671),
        ("hotel_id", 4155552671, 4155552671),
        ("phone_count", 2, 2),
        ("phone_verified", True, True),
        ("created_ms", 1732271400001, 1732271400001),
        ("order_id", 4111111111111112, 4111111111111112),
        ("price", 4111111111111111.5, 4111111111111111.5),
    ],
)
def test_numbers_that_are_cards_or_phones(key: str, value: Any, expected: Any) -> None:
    assert redacted({"inputs": {key: value}})["inputs"][key] == expected


@pytest.mark.parametrize(
    "text",
    ["a" * 100_000 + "@b", "7" * 100_000, "1 2 " * 25_000, ("+" + "1" * 60 + " ") * 1_600],
    ids=["a long local part", "a long number", "single digits", "long numbers after +"],
)
def test_hostile_text_costs_linear_time(text: str) -> None:
    # One event of this stalls the worker: it must cost milliseconds, not minutes.
    started = time.perf_counter()
    redacted({"inputs": {"notes": text}})
    assert time.perf_counter() - started < 2


def test_a_model_scans_only_for_what_its_policy_names() -> None:
    notes = "jane.doe@example.com, 4111 1111 1111 1111"
    scanned = redacted({"inputs": {"notes": notes}}, model="fraud")  # "*": e-mail only
    assert scanned["inputs"]["notes"] == "[email], 4111 1111 1111 1111"


def test_free_text_in_reviews_and_feedback_is_scanned() -> None:
    payload = redacted({"rationale": "spoke to jane.doe@example.com", "comment": None})
    assert payload["rationale"] == "spoke to [email]"


# The property: whatever the key case, the depth, the place and the format, nothing survives.

json_leaves = st.none() | st.booleans() | st.integers() | st.text(max_size=20)
json_trees = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)
DIGITS = "0123456789"
# Issuer prefixes and lengths of the card networks: Visa, Mastercard, Amex, Discover, UnionPay,
# Diners, JCB.
NETWORKS = [("4", 13), ("4", 16), ("4", 19), ("51", 16), ("2720", 16), ("34", 15), ("37", 15)]
NETWORKS += [("6011", 16), ("62", 19), ("36", 14), ("35", 16)]
PHONE_KEYS = ["phone", "mobile", "tel", "phone_number", "mobileNumber", "fax"]
WORDS = ["notes", "data", "items", "details", "address_line"]
HYPOTHESIS_POLICY = policy_of(
    {
        "*": {"rules": [{"field": "ssn", "action": "drop"}]},
        "credit-risk": {"rules": [{"field": "address", "action": "mask"}]},
    }
)


def luhn_completed(body: str) -> str:
    """``body`` with the check digit that makes it pass the Luhn test."""
    total = 0
    for position, digit in enumerate(reversed(body)):  # the check digit will sit at position 0
        value = int(digit) * (1 if position % 2 else 2)
        total += value - 9 if value > 9 else value
    return body + str(-total % 10)


@st.composite
def any_case(draw: st.DrawFn, text: str) -> str:
    return "".join(c.upper() if draw(st.booleans()) else c.lower() for c in text)


@st.composite
def card_digits(draw: st.DrawFn) -> str:
    prefix, length = draw(st.sampled_from(NETWORKS))
    rest = length - len(prefix) - 1
    return luhn_completed(prefix + draw(st.text(DIGITS, min_size=rest, max_size=rest)))


@st.composite
def written_cards(draw: st.DrawFn) -> str:
    digits = draw(card_digits())
    separator = draw(st.sampled_from([" ", "-", ".", "/", ""]))
    return separator.join(digits[i : i + 4] for i in range(0, len(digits), 4))


@st.composite
def nanp_numbers(draw: st.DrawFn) -> tuple[str, str, str]:
    area = draw(st.sampled_from("23456789")) + draw(st.text(DIGITS, min_size=2, max_size=2))
    exchange = draw(st.sampled_from("23456789")) + draw(st.text(DIGITS, min_size=2, max_size=2))
    return area, exchange, draw(st.text(DIGITS, min_size=4, max_size=4))


@st.composite
def written_phones(draw: st.DrawFn) -> str:
    area, exchange, line = draw(nanp_numbers())
    london = draw(st.text(DIGITS, min_size=4, max_size=4))
    forms = [
        f"+1 {area} {exchange} {line}",
        f"+1-{area}-{exchange}-{line}",
        f"+1{area}{exchange}{line}",
        f"({area}) {exchange}-{line}",
        f"{area}.{exchange}.{line}",
        f"1-{area}-{exchange}-{line}",
        f"+44 20 {london} {line}",
        f"+44 (0)20 {london} {line}",
        f"020 {london} {line}",
    ]
    return draw(st.sampled_from(forms))


@st.composite
def integer_phones(draw: st.DrawFn) -> int:
    area, exchange, line = draw(nanp_numbers())
    return int(draw(st.sampled_from(["", "1", "+1"])) + area + exchange + line)


emails = st.builds(
    "{}@{}.{}".format,
    st.from_regex(r"[a-z][a-z0-9._+-]{0,10}[a-z0-9]", fullmatch=True),
    st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True),
    st.sampled_from(["com", "org", "example", "co"]),
).flatmap(any_case)
text_secrets = emails | written_cards() | written_phones()


@st.composite
def free_text(draw: st.DrawFn, secret: str) -> str:
    return f"{draw(st.text(max_size=10))} {secret} {draw(st.text(max_size=10))}"


@st.composite
def nested(draw: st.DrawFn, leaf: Any) -> Any:
    """``leaf`` at the bottom of dicts and lists nested up to six deep, among random siblings."""
    value = leaf
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.booleans()):
            siblings = draw(st.lists(json_trees, max_size=2))
            at = draw(st.integers(0, len(siblings)))
            value = [*siblings[:at], value, *siblings[at:]]
        else:
            key = draw(st.sampled_from(WORDS).flatmap(any_case))
            value = draw(st.dictionaries(st.text(max_size=8), json_trees, max_size=2)) | {
                key: value
            }
    return value


def betrayals_of(secret: str) -> list[str]:
    """What would betray ``secret`` in a document: itself, and a number's bare digits."""
    digits = "".join(c for c in secret if c.isdigit())
    return [secret] if "@" in secret else [secret, digits]


@st.composite
def placed_secrets(draw: st.DrawFn) -> tuple[Any, list[str]]:
    """A secret, placed as a service might write it, and the texts that would betray it."""
    place = draw(st.sampled_from(["text", "key", "number", "phone number", "dropped field"]))
    if place == "number":
        card = draw(card_digits())
        return int(card), [card]
    if place == "phone number":
        phone = draw(integer_phones())
        return {draw(st.sampled_from(PHONE_KEYS).flatmap(any_case)): phone}, [str(phone)]
    secret = draw(text_secrets)
    if place == "key":
        return {draw(st.sampled_from(["", "to "])) + secret: draw(json_trees)}, betrayals_of(secret)
    if place == "dropped field":
        return {draw(any_case("ssn")): secret}, betrayals_of(secret)
    return draw(free_text(secret)), betrayals_of(secret)


TEXT_FIELDS = ["subject_ref", "reviewer", "rationale", "reporter", "comment"]
JSON_FIELDS = ["inputs", "output", "new_output", "ground_truth"]
# Ordinary figures that must come through as they went in: amounts, ids and ms timestamps.
FIGURES = {
    "amount": st.integers(0, 10**6) | st.floats(0, 1e9, allow_nan=False),
    "customer_id": st.integers(0, 10**12),
    "created_ms": st.integers(10**12, 2 * 10**12 - 1),
    "age": st.integers(0, 120),
}


@given(st.sampled_from(JSON_FIELDS + TEXT_FIELDS), st.data())
def test_no_secret_survives_in_any_key_or_value_at_any_depth_or_format(
    field: str, data: st.DataObject
) -> None:
    if field in TEXT_FIELDS:  # a string field: the secret written as text in it
        secret = data.draw(text_secrets)
        value, betrayals = data.draw(free_text(secret)), betrayals_of(secret)
    else:
        leaf, betrayals = data.draw(placed_secrets())
        value = data.draw(nested(leaf))
    figures = {data.draw(any_case(name)): data.draw(figure) for name, figure in FIGURES.items()}
    payload: dict[str, Any] = {"inputs": dict(figures)}
    if field == "inputs":
        payload["inputs"][data.draw(any_case("data"))] = value
    else:
        payload[field] = value

    redacted_payload = redacted(payload, policy=HYPOTHESIS_POLICY)
    dump = json.dumps(redacted_payload).casefold()
    for betrayal in betrayals:
        assert betrayal.casefold() not in dump
    assert {key: redacted_payload["inputs"][key] for key in figures} == figures


def test_a_policy_file_with_a_mistake_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("models:\n  '*':\n    rules:\n      - field: ssn\n        action: shred\n")
    with pytest.raises(RedactionError, match=r"policy\.yaml: models\.\*\.rules\.0\.action"):
        RedactionPolicy.load(path)


def test_hashing_without_a_key_is_refused() -> None:
    with pytest.raises(RedactionError, match="DRIFTLINE_REDACTION_KEY"):
        Redactor(POLICY, None)


def test_a_scores_comment_and_label_are_scanned_its_name_number_and_source_never() -> None:
    """Rules written for the inputs (a person's ``name``, a ``value``, a ``source``) must not
    rename, retype or refuse a score; its comment follows the rules for ``comment``."""
    policy = policy_of(
        {"*": {"rules": [{"field": "name", "action": "drop"},
                         {"field": "value", "action": "hash"},
                         {"field": "source", "action": "mask"},
                         {"field": "comment", "action": "keep"}]},
         "strict": {"rules": [{"field": "comment", "action": "drop"}]}}
    )  # fmt: skip
    scores = [
        {"name": "faithfulness", "value": 0.8, "source": "model", "comment": f"cites {EMAIL}"},
        {"name": "toxic", "value": False, "source": "rule"},
        {"name": "asked", "value": f"by {EMAIL}", "source": "human", "comment": f"cites {EMAIL}"},
    ]
    document = {
        "schema": 2, "type": "feedback", "service": "help", "decision_id": DECISION_ID,
        "model": {"name": "chat", "version": "1"},
        "payload": {"reporter": "judge", "scores": copy.deepcopy(scores)},
    }  # fmt: skip
    Redactor(policy, b"k")(document)
    kept = document["payload"]["scores"]
    assert [(s["name"], s["source"]) for s in kept] == [(s["name"], s["source"]) for s in scores]
    assert kept[0]["value"] == 0.8 and kept[1]["value"] is False
    assert kept[0]["comment"] == f"cites {EMAIL}"  # "keep" is this policy's rule for comments
    assert kept[2]["value"] == "by [email]"  # a label is scanned, under no rule
    validate(document)
    document["model"]["name"] = "strict"
    document["payload"]["scores"] = copy.deepcopy(scores)
    Redactor(policy, b"k")(document)
    assert [s.get("comment") for s in document["payload"]["scores"]] == [None, None, None]
    validate(document)

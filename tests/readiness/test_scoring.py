"""Each way a case says what is right, refusal correctness, and a run's figures per metric and
tag judged against the set's thresholds."""

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from driftline.collector.golive.evalsets import Case, EvaluationSet, Expected, Refusal, Threshold
from driftline.collector.golive.scoring import (
    Answer,
    RefusalMatcher,
    check_expected,
    figures,
    normalised,
    passed,
    same,
    score_case,
    token_f1,
)
from tests.strategies import json_values

REFUSES = RefusalMatcher(Refusal(outputs=["refer"], phrases=["I can't help with"]))


def case(expected: dict[str, Any] | None = None, **more: Any) -> Case:
    return Case.model_validate(
        {"id": more.pop("id", "c"), "input": {}, "expected": expected} | more
    )


@given(json_values)
def test_a_value_is_the_same_as_itself_and_its_json_copy(value: Any) -> None:
    assert same(value, value) and same(json.loads(json.dumps(value)), value)


def test_same_tells_true_from_one_and_types_apart() -> None:
    assert not same(True, 1) and not same(1, True) and not same(0, False)
    assert same(1, 1.0) and not same("1", 1) and not same(None, "null")
    assert not same([True], [1]) and not same({"a": 1}, {"a": 1, "b": 2})
    assert same(" Approve!", "approve", normalise=True) and not same(" Approve!", "approve")
    assert same("Crème brûlée", "creme brulee", normalise=True)


@given(st.text())
def test_normalised_text_is_normalised_already(text: str) -> None:
    assert normalised(normalised(text)) == normalised(text)


@given(st.text(), st.text())
def test_token_f1_is_a_symmetric_similarity_in_the_unit_interval(a: str, b: str) -> None:
    score = token_f1(a, b)
    assert 0.0 <= score <= 1.0 and math.isclose(score, token_f1(b, a))
    assert token_f1(a, a) == 1.0


@pytest.mark.parametrize(
    ("expected", "answer", "ok"),
    [
        ({"exact": "approve"}, "approve", True),
        ({"exact": "approve"}, "Approve", False),
        ({"exact": "approve", "normalise": True}, "  APPROVE. ", True),
        ({"exact": None}, None, True),
        ({"exact": {"a": [1, 2]}}, {"a": [1, 2.0]}, True),
        ({"any_of": ["yes", "y"]}, "y", True),
        ({"any_of": ["yes", "y"]}, "no", False),
        ({"number": 3.2, "tolerance": 0.1}, 3.25, True),
        ({"number": 3.2, "tolerance": 0.1}, " 3.15 ", True),
        ({"number": 3.2, "tolerance": 0.1}, 3.4, False),
        ({"number": 1}, True, False),  # a bool is no number
        ({"number": 1}, "nan", False),
        ({"number": 1e308, "tolerance": 1}, "inf", False),
        ({"regex": r"^\d{4}-\d{2}$"}, "2026-12", True),
        ({"regex": r"^\d{4}-\d{2}$"}, "2026-1", False),
        ({"regex": "approve"}, {"label": "approve"}, True),  # matched in its JSON text
        ({"json_schema": {"type": "object", "required": ["label"]}}, '{"label": 1}', True),
        ({"json_schema": {"type": "object", "required": ["label"]}}, {"x": 1}, False),
        ({"json_schema": {"type": "object"}}, "{not json", False),
        (
            {"reference": "the loan is approved", "min_similarity": 0.8},
            "The loan is approved.",
            True,
        ),
        ({"reference": "the loan is approved", "min_similarity": 0.8}, "declined", False),
    ],
)
def test_each_expectation(expected: dict[str, Any], answer: Any, ok: bool) -> None:
    found, reason, _ = check_expected(Expected.model_validate(expected), answer)
    assert found is ok and (reason == "") is ok


def test_a_rejection_case_passes_only_when_refused_and_another_fails_when_refused() -> None:
    rejection = case(None, must_refuse=True)
    assert score_case(rejection, Answer("refer"), REFUSES, {}).passed
    assert score_case(rejection, Answer("I can\u2019t help with that"), REFUSES, {}).passed
    answered = score_case(rejection, Answer("approve"), REFUSES, {})
    assert not answered.passed and answered.reason == "answered a case it must refuse"
    ordinary = score_case(case({"exact": "approve"}), Answer("REFER"), REFUSES, {})
    assert not ordinary.passed and ordinary.refused
    assert ordinary.reason == "refused a case it must answer"
    # A target that failed neither refused nor passed.
    failed = score_case(rejection, Answer(error="HTTP 500"), REFUSES, {})
    assert not failed.passed and not failed.refused and failed.reason == "HTTP 500"


def test_a_scorer_under_its_minimum_or_broken_fails_the_case_naming_it() -> None:
    def half(_case: Case, _answer: Answer) -> float:
        return 0.5

    def broken(_case: Case, _answer: Answer) -> float:
        raise RuntimeError("judge down")

    def silly(_case: Case, _answer: Answer) -> float:
        return 7.0

    right = case({"exact": "approve"})
    result = score_case(right, Answer("approve"), REFUSES, {"tone": (half, 0.4)})
    assert result.passed and result.scores == {"tone": 0.5}
    result = score_case(right, Answer("approve"), REFUSES, {"tone": (half, 0.6)})
    assert not result.passed and result.reason == "tone 0.50, under 0.6"
    result = score_case(
        right, Answer("approve"), REFUSES, {"judge": (broken, None), "x": (silly, None)}
    )
    assert not result.passed and "scorer judge failed: RuntimeError: judge down" in result.reason
    assert "scorer x failed: ValueError: a score is a number in [0, 1]" in result.reason


def evaluation_set(cases: list[Case], thresholds: list[dict[str, Any]]) -> EvaluationSet:
    return EvaluationSet(
        name="s", version="1", model="m", cases=cases,
        thresholds=[Threshold.model_validate(t) for t in thresholds],
    )  # fmt: skip


def test_figures_per_class_and_tag_against_thresholds() -> None:
    cases = [
        case({"exact": "approve"}, id="a1", tags=["prime"]),
        case({"exact": "approve"}, id="a2", tags=["prime"]),
        case({"exact": "decline"}, id="d1", tags=["risky"]),
        case({"exact": "decline"}, id="d2", tags=["risky"]),
        case(None, id="r1", must_refuse=True, tags=["rejection"]),
    ]
    answers = ["approve", "approve", "approve", "decline", "approve"]
    results = [
        score_case(c, Answer(a, latency_ms=10.0 * n), REFUSES, {})
        for n, (c, a) in enumerate(zip(cases, answers, strict=True))
    ]
    s = evaluation_set(
        cases,
        [
            {"metric": "pass_rate", "minimum": 0.5},
            {"metric": "pass_rate", "tag": "risky", "minimum": 0.9},
            {"metric": "recall:decline", "minimum": 0.5},
            {"metric": "precision:maybe", "minimum": 0.5},  # no case is of that class
        ],
    )
    found = {(f.metric, f.tag): f for f in figures(results, s)}
    assert found[("pass_rate", None)].value == 3 / 5
    assert found[("pass_rate", None)].status == "pass"
    assert found[("pass_rate", "risky")].value == 0.5
    assert found[("pass_rate", "risky")].status == "fail"
    assert found[("recall:decline", None)].value == 0.5
    assert found[("precision:approve", None)].value == 2 / 3
    assert found[("accuracy", None)].value == 3 / 4
    assert found[("refusal_recall", None)].value == 0.0
    assert found[("refusal_recall", None)].status == "fail"  # the implicit bound: all refused
    assert found[("precision:maybe", None)].status == "not enough data"
    assert found[("latency_p50_ms", None)].value == 20.0
    assert not passed(list(found.values()))
    assert ("recall:decline", "risky") not in found  # per class: of the whole set only

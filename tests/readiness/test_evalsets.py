"""Evaluation set files: the same set however its cases are written (inline, JSONL, CSV), one
SHA-256 for it, and every mistake named with its file, line and key."""

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from driftline.collector.golive.evalsets import EvaluationSetError, load_set
from tests.strategies import json_values

HEADER = """\
name: golden
version: "1"
model: credit-risk
refusal: {outputs: [refer]}
thresholds:
  - {metric: pass_rate, minimum: 0.9}
"""
CASES = [
    {"id": "a", "input": {"income": 1}, "expected": {"exact": "approve"}, "tags": ["prime"]},
    {"id": "b", "input": {"income": 2}, "expected": {"exact": "decline"}, "tags": []},
    {"id": "r", "input": {}, "must_refuse": True, "tags": ["rejection"]},
]


def write(tmp_path: Path, text: str, name: str = "set.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_inline_jsonl_and_csv_cases_are_one_set_with_one_digest(tmp_path: Path) -> None:
    inline = write(tmp_path, HEADER + "cases:\n" + "".join(f"  - {json.dumps(c)}\n" for c in CASES))
    (tmp_path / "cases.jsonl").write_text("\n".join(json.dumps(c) for c in CASES) + "\n\n")
    jsonl = write(tmp_path, HEADER + "cases_file: cases.jsonl\n", "jsonl.yaml")
    (tmp_path / "cases.csv").write_text(
        "id,input,exact,tags,must_refuse\n"
        'a,"{""income"": 1}",approve,prime,false\n'
        'b,"{""income"": 2}",decline,,\n'
        "r,{},,rejection,true\n"
    )
    csv = write(tmp_path, HEADER + "cases_file: cases.csv\n", "csv.yaml")
    sets = [load_set(path) for path in (inline, jsonl, csv)]
    assert sets[0] == sets[1] == sets[2]
    assert len({s.digest() for s in sets}) == 1
    assert sets[0].rejection_cases == 1 and sets[0].tags == ["prime", "rejection"]
    # With rejection cases and no bound of its own, the set is held to refusing all of them.
    assert [(t.metric, t.minimum) for t in sets[0].gates()] == [
        ("pass_rate", 0.9),
        ("refusal_recall", 1.0),
    ]


def test_any_change_to_a_case_changes_the_digest(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "cases:\n" + "".join(f"  - {json.dumps(c)}\n" for c in CASES))
    before = load_set(path).digest()
    changed = [*CASES[:2], {**CASES[2], "tags": ["rejection", "new"]}]
    path.write_text(HEADER + "cases:\n" + "".join(f"  - {json.dumps(c)}\n" for c in changed))
    assert load_set(path).digest() != before


@given(st.lists(json_values, min_size=1, max_size=5, unique_by=lambda v: json.dumps(v)))
def test_any_json_input_and_answer_round_trip_through_jsonl(values: list[object]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        cases = [
            {"id": f"c{n}", "input": value, "expected": {"exact": value}}
            for n, value in enumerate(values)
        ]
        (folder / "cases.jsonl").write_text(
            "\n".join(json.dumps(c, ensure_ascii=False) for c in cases), encoding="utf-8"
        )
        loaded = load_set(write(folder, HEADER + "cases_file: cases.jsonl\n"))
    assert [case.input for case in loaded.cases] == values
    assert [case.expected.exact for case in loaded.cases if case.expected] == values


@pytest.mark.parametrize(
    ("cases", "expected"),
    [
        ("  - {id: a, input: 1}\n", ":8: cases[0]: Value error, a case needs expected"),
        ("  - {id: a, input: 1, expected: {}}\n", "give exactly one of exact"),
        (
            "  - {id: a, input: 1, expected: {exact: x, regex: x}}\n",
            "given: ['exact', 'regex']",
        ),
        ("  - {id: a, input: 1, expected: {regex: '(unclosed'}}\n", "not a valid RE2 pattern"),
        (
            "  - {id: a, input: 1, expected: {json_schema: {type: 12}}}\n",
            "not a valid JSON Schema",
        ),
        (
            "  - {id: a, input: 1, must_refuse: true, expected: {exact: x}}\n",
            "a rejection case (must_refuse) has no expected answer",
        ),
        (
            "  - {id: a, input: 1, expected: {exact: x}}\n"
            "  - {id: a, input: 2, expected: {exact: y}}\n",
            ":9: cases[1].id: 'a' is another case's id already",
        ),
        ('  - {id: a, input: 1, expected: {exact: x}, tags: ["bad\\ttab"]}\n', "tags[0]"),
    ],
)
def test_a_wrong_case_is_named_with_its_line(tmp_path: Path, cases: str, expected: str) -> None:
    path = write(tmp_path, HEADER + "cases:\n" + cases)
    with pytest.raises(EvaluationSetError) as raised:
        load_set(path)
    assert str(path) in str(raised.value) and expected in str(raised.value)


def test_a_wrong_threshold_is_named_with_its_line(tmp_path: Path) -> None:
    text = HEADER.replace(
        "  - {metric: pass_rate, minimum: 0.9}\n",
        "  - {metric: pass_rat, minimum: 0.9}\n"
        "  - {metric: pass_rate, tag: nobody, minimum: 0.9}\n"
        "  - {metric: recall:approve, tag: prime, minimum: 0.9}\n"
        "  - {metric: pass_rate}\n",
    )
    path = write(tmp_path, text + "cases:\n" + "".join(f"  - {json.dumps(c)}\n" for c in CASES))
    with pytest.raises(EvaluationSetError) as raised:
        load_set(path)
    problems = raised.value.problems
    assert any(
        ":9: thresholds[3]: Value error, give minimum, maximum or both" in p for p in problems
    )
    # The other three are found once the file reads: each with its own line.
    text = text.replace("  - {metric: pass_rate}\n", "")
    path.write_text(text + "cases:\n" + "".join(f"  - {json.dumps(c)}\n" for c in CASES))
    with pytest.raises(EvaluationSetError) as raised:
        load_set(path)
    problems = raised.value.problems
    assert f"{path}:6: thresholds[0].metric: unknown metric 'pass_rat'" in problems[0]
    assert problems[1] == f"{path}:7: thresholds[1].tag: no case has the tag 'nobody'"
    assert problems[2] == f"{path}:8: thresholds[2].tag: precision and recall are of the whole set"


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        (
            "cases.jsonl",
            '{"id": "a", "input": 1, "expected": {"exact": 1}}\n{oops\n',
            "cases.jsonl:2: not a JSON",
        ),
        ("cases.jsonl", '\n{"id": "a", "input": 1}\n', "cases.jsonl:2: case: Value error"),
        ("cases.csv", "id,input,colour\na,1,red\n", "unknown: ['colour']"),
        ("cases.csv", 'id,input,exact\na,"{bad",x\n', "cases.csv:2: input: not JSON"),
        ("cases.csv", "id,input,exact,must_refuse\na,1,x,maybe\n", "must_refuse: true or false"),
        ("cases.txt", "a\n", "a cases file is .jsonl or .csv"),
    ],
)
def test_a_wrong_cases_file_is_named_with_its_line(
    tmp_path: Path, name: str, content: str, expected: str
) -> None:
    (tmp_path / name).write_text(content)
    with pytest.raises(EvaluationSetError) as raised:
        load_set(write(tmp_path, HEADER + f"cases_file: {name}\n"))
    assert expected in str(raised.value)


def test_a_missing_or_binary_cases_file_is_an_error_not_a_crash(tmp_path: Path) -> None:
    with pytest.raises(EvaluationSetError, match="cannot read"):
        load_set(write(tmp_path, HEADER + "cases_file: nowhere.jsonl\n"))
    (tmp_path / "cases.jsonl").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(EvaluationSetError, match="not UTF-8"):
        load_set(write(tmp_path, HEADER + "cases_file: cases.jsonl\n"))


def test_the_shipped_example_set_loads_with_its_rejection_cases() -> None:
    example = Path(__file__).parents[2] / "deploy/config/examples/loan-desk-eval.yaml"
    evaluation_set = load_set(example)
    assert len(evaluation_set.cases) == 150 and evaluation_set.rejection_cases == 15
    assert {"high-debt", "thin-file", "rejection"} <= set(evaluation_set.tags)

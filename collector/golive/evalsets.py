"""Evaluation sets: the cases that say what "working" means for a model, agreed before go-live.

A set is a YAML file; its cases are inline or in a JSONL or CSV file beside it
(``cases_file``). ``load_set`` names the file, line and key of every mistake::

    name: loan-desk-golden
    version: "2026-12"
    model: credit-risk
    refusal: {outputs: [refer]}        # answers that refuse, or hand the case to a human
    thresholds:                        # accepted by the business: a metric, of a tag or all
      - {metric: pass_rate, minimum: 0.9}
      - {metric: pass_rate, tag: thin-file, minimum: 0.8}
      - {metric: latency_p95_ms, maximum: 200}
    scorers:                           # scores of the user's own, or of a model as judge
      - {name: tone, entry_point: "mypackage.scoring:tone", minimum: 0.5}
      - {name: faithful, judge_url: "http://judge.internal/score", minimum: 0.7}
    cases:
      - id: prime-001
        input: {income: 82000, debt_ratio: 0.12}
        expected: {exact: approve}      # or any_of, number (+ tolerance), regex, json_schema,
        tags: [prime]                   # reference (+ min_similarity)
      - id: reject-001
        input: {income: -1}
        must_refuse: true               # the system must refuse it or send it to a human

A JSONL cases file holds one case (as above) per line. A CSV one has the columns ``id``,
``input`` (JSON), ``expected`` (JSON) or ``exact`` (text), ``tags`` (separated by ``;``) and
``must_refuse`` (true or false).

The metrics a threshold can name are ``METRICS``, ``precision:<class>`` and ``recall:<class>``
for a class among the exact answers, and ``score:<name>`` for a scorer's mean. A set that
states no thresholds is held to every case passing; one with rejection cases and no
``refusal_recall`` threshold, to refusing every one of them.
``digest`` is the SHA-256 of the set's canonical JSON, the same however its cases are written.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from collections import Counter
from pathlib import Path
from typing import Annotated, Any, Self

import re2
import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    model_validator,
)

from driftline.collector.core.config_files import (
    ConfigFileError,
    key_path,
    line_of,
    load_model,
    located,
)

MAX_CASES = 10_000
MAX_TAGS = 150  # so that a run's figures, per metric and tag, fit in one event
METRICS = (
    "pass_rate",
    "error_rate",
    "refusal_recall",  # of the rejection cases, the share refused
    "over_refusal",  # of the other cases, the share refused
    "accuracy",  # of the cases with an exact expected class
    "latency_p50_ms",
    "latency_p95_ms",
)
PER_CLASS = ("precision:", "recall:")
MAX_THRESHOLDS = 200  # an evaluation_set_registered event carries at most 200, implied ones too
# A class's figures are named "precision:<class>": longer classes are not classes.
MAX_CLASS_CHARACTERS = 200 - len("precision:")
MAX_CLASSES = 50  # more distinct exact answers than this are not classes


def one_line(text: str) -> str:
    """Text fit for an id, a name or a tag, which events and stores carry: no control character
    (NUL above all: PostgreSQL stores none) and no lone surrogate (UTF-8 has none)."""
    for n, c in enumerate(text):
        if c < " " or "\x7f" <= c <= "\x9f" or "\ud800" <= c <= "\udfff":
            raise ValueError(f"holds the control character U+{ord(c):04X} at {n}; give one line")
    return text


def json_fit(value: Any) -> Any:
    """A JSON value every target can be sent and every event can carry: no NaN or infinity
    (JSON has none) and no lone surrogate (UTF-8 has none), found without recursion."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, where = stack.pop()
        at = f" at {where.lstrip('.')}" if where else ""
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError(f"{item} is not a JSON number{at}")
        if isinstance(item, str) and _surrogate(item):
            raise ValueError(f"holds a lone surrogate, which UTF-8 cannot carry{at}")
        if isinstance(item, dict):
            for key, child in item.items():
                if _surrogate(str(key)):
                    raise ValueError(f"a key holds a lone surrogate{at}")
                stack.append((child, f"{where}.{key}"))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{n}]") for n, child in enumerate(item))
    return value


def _surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(one_line)]
Tag = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(one_line)]
Json = Annotated[JsonValue, AfterValidator(json_fit)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Expected(_Strict):
    """What a right answer is: exactly one of the ways below."""

    exact: Json = None
    normalise: bool = Field(
        default=False, description="compare text without case, accents, punctuation or spacing"
    )
    any_of: list[Json] | None = Field(default=None, min_length=1)
    number: float | None = Field(default=None, allow_inf_nan=False)
    tolerance: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    regex: Annotated[str, Field(min_length=1, max_length=2_000)] | None = None
    json_schema: dict[str, Json] | None = None
    reference: Annotated[str, Field(min_length=1)] | None = None
    min_similarity: float = Field(default=0.8, ge=0, le=1)

    @property
    def kind(self) -> str:
        return next(k for k in KINDS if k in self.model_fields_set)

    @model_validator(mode="after")
    def _one_way(self) -> Self:
        # Set, not "not None": an exact answer may be null.
        given = [k for k in KINDS if k in self.model_fields_set]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(KINDS)}; given: {given or 'none'}")
        if self.regex is not None:
            try:
                re2.compile(self.regex)
            except re2.error as error:
                raise ValueError(f"regex: not a valid RE2 pattern: {error}") from None
        if self.json_schema is not None:
            try:
                Draft202012Validator.check_schema(self.json_schema)
            except SchemaError as error:
                raise ValueError(f"json_schema: not a valid JSON Schema: {error.message}") from None
        return self


KINDS = ("exact", "any_of", "number", "regex", "json_schema", "reference")


class Case(_Strict):
    id: Name
    input: Json
    expected: Expected | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    must_refuse: bool = False
    # Where it came from, when production grew the set: the decision it was made from.
    decision_id: Annotated[str, Field(max_length=100)] | None = None

    @model_validator(mode="after")
    def _says_what_is_right(self) -> Self:
        if self.expected is None and not self.must_refuse:
            raise ValueError("a case needs expected, or must_refuse: true")
        if self.expected is not None and self.must_refuse:
            raise ValueError("a rejection case (must_refuse) has no expected answer")
        return self


class Refusal(_Strict):
    """How an answer that refuses looks: one of these outputs, or text with one of the
    phrases (matched case-insensitively)."""

    outputs: list[Json] = Field(default_factory=list, max_length=100)
    phrases: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=200
    )


class Threshold(_Strict):
    metric: Name
    tag: Tag | None = None
    minimum: float | None = Field(default=None, allow_inf_nan=False)
    maximum: float | None = Field(default=None, allow_inf_nan=False)

    @model_validator(mode="after")
    def _bounded(self) -> Self:
        if self.minimum is None and self.maximum is None:
            raise ValueError("give minimum, maximum or both")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError("minimum is above maximum")
        return self


class Scorer(_Strict):
    """A score of the user's own: a Python function ``(input, expected, answer) -> float`` in
    [0, 1] (or a bool), or a model as judge behind an HTTP endpoint that answers
    ``{"score": 0.8}`` to ``{"case_id", "input", "expected", "output"}``."""

    name: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")]
    entry_point: Annotated[str, Field(pattern=r"^[\w.]+:[\w.]+$")] | None = None
    judge_url: Annotated[str, Field(pattern=r"^https?://\S+$", max_length=2_000)] | None = None
    minimum: float | None = Field(default=None, ge=0, le=1, description="per case, to pass")

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.entry_point is None) == (self.judge_url is None):
            raise ValueError("give entry_point or judge_url, not both")
        if self.name == "similarity":  # the score of a reference expectation is so named
            raise ValueError("'similarity' is the name of a reference answer's score")
        return self


class _Described(_Strict):
    """What a set says besides its cases."""

    name: Name
    version: Name
    model: Name
    description: Annotated[str, Field(max_length=10_000)] = ""
    refusal: Refusal = Refusal()
    thresholds: list[Threshold] = Field(default_factory=list, max_length=MAX_THRESHOLDS)
    scorers: list[Scorer] = Field(default_factory=list, max_length=20)


class EvaluationSet(_Described):
    cases: list[Case] = Field(max_length=MAX_CASES)

    @property
    def tags(self) -> list[str]:
        return sorted({tag for case in self.cases for tag in case.tags})

    @property
    def rejection_cases(self) -> int:
        return sum(case.must_refuse for case in self.cases)

    def gates(self) -> list[Threshold]:
        """The thresholds a run must meet: the file's (every case passing if it states none),
        and refusing every rejection case unless the file bounds refusal_recall itself."""
        gates = list(self.thresholds) or [Threshold(metric="pass_rate", minimum=1.0)]
        bounded = any(t.metric == "refusal_recall" and t.tag is None for t in gates)
        if self.rejection_cases and not bounded:
            gates.append(Threshold(metric="refusal_recall", minimum=1.0))
        return gates

    def digest(self) -> str:
        document = self.model_dump(mode="json", exclude_defaults=False)
        canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(canonical.encode()).hexdigest()


class _Header(_Described):
    """A set file as written: its cases inline, or in a file beside it."""

    cases: list[JsonValue] | None = None
    cases_file: Annotated[str, Field(min_length=1, max_length=500)] | None = None

    @model_validator(mode="after")
    def _cases_somewhere(self) -> Self:
        if (self.cases is None) == (self.cases_file is None):
            raise ValueError("give cases or cases_file, not both")
        return self


class EvaluationSetError(ConfigFileError):
    """Every mistake in an evaluation set, each as ``file:line: key: what is wrong``."""


def load_set(path: Path) -> EvaluationSet:
    header, root = load_model(
        path, _Header, "a mapping with name, model and cases", EvaluationSetError
    )
    # YAML keeps the last of a key written twice, silently: a case's second "expected" would
    # replace its first. Say so instead.
    if twice := _keys_twice(root):
        raise EvaluationSetError(
            [f"{path}:{line}: {key!r} is written twice" for line, key in twice]
        )
    # Each case with where it is written: its line, and its key in an inline list.
    documents: list[tuple[str, tuple[str | int, ...], Any]]
    if header.cases is not None:
        documents = [
            (f"{path}:{line_of(root, ('cases', i))}", ("cases", i), c)
            for i, c in enumerate(header.cases)
        ]
        source = path
    else:
        assert header.cases_file is not None
        source = path.parent / header.cases_file
        documents = [(where, (), c) for where, c in _read_cases(source)]
    if len(documents) > MAX_CASES:
        raise EvaluationSetError(
            [f"{source}: {len(documents):,} cases, over the limit of {MAX_CASES:,}"]
        )
    problems: list[str] = []
    cases: list[Case] = []
    seen: set[str] = set()
    for where, prefix, document in documents:
        try:
            case = Case.model_validate(document)
        except ValidationError as error:
            problems += [
                f"{where}: {key_path(prefix + tuple(detail['loc'])) or 'case'}: {detail['msg']}"
                for detail in error.errors(include_url=False)
            ]
            continue
        if case.id in seen:
            key = key_path((*prefix, "id"))
            problems.append(f"{where}: {key}: {case.id!r} is another case's id already")
        seen.add(case.id)
        cases.append(case)
    if len(tags := {tag for case in cases for tag in case.tags}) > MAX_TAGS:
        problems.append(f"{source}: {len(tags):,} tags, over the limit of {MAX_TAGS}")
    if problems:
        raise EvaluationSetError(problems)
    if not cases:
        raise EvaluationSetError([f"{source}:1: the set has no cases"])
    described = {field: getattr(header, field) for field in _Described.model_fields}
    evaluation_set = EvaluationSet(**described, cases=cases)
    problems = [
        located(path, root, ("thresholds", index, field), message)
        for index, field, message in _threshold_mistakes(evaluation_set)
    ]
    if problems:
        raise EvaluationSetError(problems)
    return evaluation_set


def _keys_twice(root: yaml.Node | None) -> list[tuple[int, str]]:
    """Each key written twice in one mapping of the YAML tree, with its second line."""
    found: list[tuple[int, str]] = []
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    if key.value in seen:
                        found.append((key.start_mark.line + 1, key.value))
                    seen.add(key.value)
                stack.append(value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return sorted(found)


def _read_cases(path: Path) -> list[tuple[str, Any]]:
    """Each case of a JSONL or CSV file with where it is (``file:line``)."""
    try:
        # Bytes, then text: no newline translation (a CSV cell may hold "\r\n"); and a
        # byte-order mark, which spreadsheets write, is not part of the first line.
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as problem:
        raise EvaluationSetError([f"{path}: cannot read: {problem.strerror}"]) from None
    except UnicodeDecodeError as problem:
        raise EvaluationSetError([f"{path}: not UTF-8 text: {problem.reason}"]) from None
    if path.suffix == ".jsonl":
        return _jsonl_cases(path, text)
    if path.suffix == ".csv":
        return _csv_cases(path, text)
    raise EvaluationSetError([f"{path}: a cases file is .jsonl or .csv"])


def _jsonl_cases(path: Path, text: str) -> list[tuple[str, Any]]:
    cases, problems = [], []
    # Lines end at "\n" only: splitlines() would also break inside a string at U+2028.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            cases.append((f"{path}:{number}", json.loads(line, object_pairs_hook=_once)))
        except (ValueError, RecursionError) as error:
            problems.append(f"{path}:{number}: not a JSON object: {error}")
    if problems:
        raise EvaluationSetError(problems)
    return cases


def _once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are each written once: json keeps the last, silently."""
    if twice := sorted(k for k, n in Counter(k for k, _ in pairs).items() if n > 1):
        raise ValueError(f"the key {twice[0]!r} is written twice")
    return dict(pairs)


CSV_COLUMNS = ("id", "input", "expected", "exact", "tags", "must_refuse")


def _csv_cases(path: Path, text: str) -> list[tuple[str, Any]]:
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    try:
        fieldnames = list(reader.fieldnames or ())
    except csv.Error as error:
        raise EvaluationSetError([f"{path}:1: not valid CSV: {error}"]) from None
    unknown = sorted(set(fieldnames) - set(CSV_COLUMNS))
    if unknown or "id" not in fieldnames:
        raise EvaluationSetError(
            [f"{path}:1: columns are {', '.join(CSV_COLUMNS)} (id needed); unknown: {unknown}"]
        )
    if twice := sorted(c for c, n in Counter(fieldnames).items() if n > 1):
        raise EvaluationSetError([f"{path}:1: the column {twice[0]!r} is named twice"])
    cases, problems = [], []
    first = reader.line_num + 1  # a record's first line: a quoted cell may span several
    try:
        for row in reader:
            where = f"{path}:{first}"
            first = reader.line_num + 1
            if None in row:  # more cells than columns: an unquoted comma, say
                extra = len(row[None])
                problems.append(f"{where}: {extra} more cells than the {len(fieldnames)} columns")
                continue
            try:
                cases.append((where, _csv_case(row)))
            except ValueError as error:
                problems.append(f"{where}: {error}")
    except csv.Error as error:
        problems.append(f"{path}:{first}: not valid CSV: {error}")
    if problems:
        raise EvaluationSetError(problems)
    return cases


def _csv_case(row: dict[str, str | None]) -> dict[str, Any]:
    def cell(name: str) -> str:
        return (row.get(name) or "").strip()

    case: dict[str, Any] = {"id": cell("id")}
    for column in ("input", "expected"):
        if cell(column):
            try:
                case[column] = json.loads(cell(column), object_pairs_hook=_once)
            except (ValueError, RecursionError) as error:
                raise ValueError(f"{column}: not JSON: {error}") from None
    if cell("exact"):
        if "expected" in case:
            raise ValueError("give expected or exact, not both")
        case["expected"] = {"exact": cell("exact")}
    case["tags"] = [tag.strip() for tag in cell("tags").split(";") if tag.strip()]
    flag = cell("must_refuse").lower()
    if flag not in ("", "true", "false"):
        raise ValueError(f"must_refuse: true or false, not {flag!r}")
    case["must_refuse"] = flag == "true"
    return case


def metric_known(metric: str, evaluation_set: EvaluationSet) -> bool:
    if metric in METRICS:
        return True
    if metric.startswith("score:"):
        return metric[len("score:") :] in {s.name for s in evaluation_set.scorers} | {"similarity"}
    return metric.startswith(PER_CLASS) and bool(metric.split(":", 1)[1])


def classes(evaluation_set: EvaluationSet) -> list[str]:
    """The classes of a set: its distinct exact text answers short enough to name figures
    ("recall:<class>") that events carry, when there are at most MAX_CLASSES; else none."""
    found = sorted(
        {
            case.expected.exact
            for case in evaluation_set.cases
            if case.expected is not None
            and case.expected.kind == "exact"
            and isinstance(case.expected.exact, str)
        }
    )
    # A text no figure's name can carry (a paragraph, a NUL) is an answer, not a class.
    found = [label for label in found if _class_like(label)]
    return found if len(found) <= MAX_CLASSES else []


def _class_like(label: str) -> bool:
    try:
        one_line(label)
    except ValueError:
        return False
    return 0 < len(label) <= MAX_CLASS_CHARACTERS


def _threshold_mistakes(evaluation_set: EvaluationSet) -> list[tuple[int, str, str]]:
    tags = set(evaluation_set.tags)
    known_classes = set(classes(evaluation_set))
    scored = {s.name for s in evaluation_set.scorers}
    if any(c.expected is not None and c.expected.kind == "reference" for c in evaluation_set.cases):
        scored.add("similarity")
    mistakes = []
    seen: dict[tuple[str, str | None], int] = {}
    for index, threshold in enumerate(evaluation_set.thresholds):
        if not metric_known(threshold.metric, evaluation_set):
            known = ", ".join([*METRICS, "precision:<class>", "recall:<class>", "score:<name>"])
            mistakes.append(
                (index, "metric", f"unknown metric {threshold.metric!r}; known: {known}")
            )
        elif threshold.metric.startswith(PER_CLASS):
            label = threshold.metric.split(":", 1)[1]
            if label not in known_classes:
                why = (
                    f"no case's exact answer is {label!r}"
                    if known_classes
                    else f"the set has no classes (more than {MAX_CLASSES} exact answers, or "
                    "none that is short text)"
                )
                mistakes.append((index, "metric", why))
        elif threshold.metric.startswith("score:") and threshold.metric[6:] not in scored:
            mistakes.append((index, "metric", "no case has a reference answer to score"))
        if threshold.tag is not None and threshold.metric.startswith(PER_CLASS):
            mistakes.append((index, "tag", "precision and recall are of the whole set"))
        elif threshold.tag is not None and threshold.tag not in tags:
            mistakes.append((index, "tag", f"no case has the tag {threshold.tag!r}"))
        # Two bounds on one figure would be one threshold: the run would judge by only one.
        key = (threshold.metric, threshold.tag)
        if key in seen:
            mistakes.append(
                (
                    index,
                    "metric",
                    f"thresholds[{seen[key]}] bounds this figure already; "
                    "give minimum and maximum in one threshold",
                )
            )
        seen.setdefault(key, index)
    if len(evaluation_set.gates()) > MAX_THRESHOLDS:
        mistakes.append(
            (
                MAX_THRESHOLDS - 1,
                "metric",
                f"over {MAX_THRESHOLDS} thresholds with the "
                "refusal_recall one the rejection cases imply: bound refusal_recall yourself, "
                "or give fewer",
            )
        )
    return mistakes

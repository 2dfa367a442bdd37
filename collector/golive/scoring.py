"""Scoring an evaluation case: whether the answer is what the set expects, whether it refused,
and the case's named scores; then a run's figures per metric, of the whole set and per tag,
judged against the set's thresholds.

A case passes when its target answered, it refused if and only if it is a rejection case,
its expectation holds, and each scorer with a per-case minimum reached it.
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import re2
from jsonschema import Draft202012Validator

from driftline.collector.golive.evalsets import (
    Case,
    EvaluationSet,
    Expected,
    Refusal,
    Threshold,
    classes,
)
from driftline.detectors.descriptors import phrase_pattern

Status = Literal["pass", "fail", "not enough data"]


@dataclass(frozen=True)
class Answer:
    """What a target gave for a case: its answer, or why it gave none."""

    value: Any = None
    latency_ms: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class CaseResult:
    case: Case
    answer: Answer
    refused: bool
    passed: bool
    reason: str  # why it failed; "" when it passed
    scores: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Figure:
    metric: str
    tag: str | None
    value: float | None  # None: no case measured it
    sample: int
    threshold: Threshold | None = None

    @property
    def status(self) -> Status | None:
        if self.threshold is None:
            return None
        if self.value is None:
            return "not enough data"
        low, high = self.threshold.minimum, self.threshold.maximum
        ok = (low is None or self.value >= low) and (high is None or self.value <= high)
        return "pass" if ok else "fail"


CaseScorer = Callable[[Case, Answer], float]


def normalised(text: str) -> str:
    """Text compared without case, accents, punctuation or runs of spacing."""
    # Casefolded between two decompositions: "℡" decomposes to capitals, "ᾼ" folds to two
    # letters; once through is not enough for the result to be its own normal form.
    folded = unicodedata.normalize("NFKD", text).casefold()
    decomposed = unicodedata.normalize("NFKD", folded)
    # Format characters (a right-to-left mark, a zero-width space, a byte-order mark) are
    # invisible: "approve\u200f" is "approve".
    kept = "".join(
        " " if unicodedata.category(c).startswith(("P", "S", "Z")) else c
        for c in decomposed
        if not unicodedata.combining(c) and unicodedata.category(c) != "Cf"
    )
    return " ".join(kept.split())


def same(answer: Any, expected: Any, *, normalise: bool = False) -> bool:
    """JSON equality that tells true from 1 (Python does not), and 1 from 1.0 not at all."""
    if isinstance(answer, bool) or isinstance(expected, bool):
        return type(answer) is type(expected) and answer == expected
    if isinstance(answer, int | float) and isinstance(expected, int | float):
        return answer == expected
    if isinstance(answer, str) and isinstance(expected, str):
        return normalised(answer) == normalised(expected) if normalise else answer == expected
    if isinstance(answer, list) and isinstance(expected, list):
        return len(answer) == len(expected) and all(
            same(a, e, normalise=normalise) for a, e in zip(answer, expected, strict=True)
        )
    if isinstance(answer, dict) and isinstance(expected, dict):
        return answer.keys() == expected.keys() and all(
            same(answer[k], expected[k], normalise=normalise) for k in answer
        )
    return answer is None and expected is None


def as_text(value: Any) -> str:
    """An answer as text: itself if it is text, else its JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _utf8(text: str) -> str:
    """Text RE2 can read: a lone surrogate (JSON's "\\ud800" gives one) as U+FFFD."""
    return text.encode("utf-8", "replace").decode("utf-8")


def token_f1(answer: str, reference: str) -> float:
    """The overlap of the two texts' normalised words, as F1 (SQuAD's answer similarity)."""
    got, want = normalised(answer).split(), normalised(reference).split()
    if not got or not want:
        return float(got == want)
    common = sum((Counter(got) & Counter(want)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(got), common / len(want)
    return 2 * precision * recall / (precision + recall)


def check_expected(expected: Expected, value: Any) -> tuple[bool, str, float | None]:
    """Whether ``value`` is what ``expected`` asks for, why not, and a similarity where the
    expectation is a reference text."""
    match expected.kind:
        case "exact":
            ok = same(value, expected.exact, normalise=expected.normalise)
            return (
                ok,
                "" if ok else f"answered {_shown(value)}, expected {_shown(expected.exact)}",
                None,
            )
        case "any_of":
            assert expected.any_of is not None
            ok = any(same(value, v, normalise=expected.normalise) for v in expected.any_of)
            return (
                ok,
                ""
                if ok
                else f"answered {_shown(value)}, expected one of {_shown(expected.any_of)}",
                None,
            )
        case "number":
            assert expected.number is not None
            number = _number(value)
            ok = number is not None and abs(number - expected.number) <= expected.tolerance
            want = f"{expected.number:g} ± {expected.tolerance:g}"
            return ok, "" if ok else f"answered {_shown(value)}, expected {want}", None
        case "regex":
            assert expected.regex is not None
            ok = re2.search(expected.regex, _utf8(as_text(value))) is not None
            return ok, "" if ok else f"does not match /{expected.regex}/", None
        case "json_schema":
            return (*_schema_check(expected.json_schema or {}, value), None)
        case _:
            assert expected.reference is not None
            similarity = token_f1(as_text(value), expected.reference)
            ok = similarity >= expected.min_similarity
            why = f"similarity {similarity:.2f} to the reference, under {expected.min_similarity:g}"
            return ok, "" if ok else why, similarity


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def _schema_check(schema: dict[str, Any], value: Any) -> tuple[bool, str]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            return False, "not JSON, which its schema asks for"
    try:
        error = next(iter(Draft202012Validator(schema).iter_errors(value)), None)
    except Exception as problem:  # a $ref that resolves nowhere, say: the set's mistake
        return False, f"its schema cannot be checked: {type(problem).__name__}: {problem}"[:300]
    if error is None:
        return True, ""
    where = "/".join(str(p) for p in error.absolute_path) or "the answer"
    return False, f"{where}: {error.message[:300]}"


def _shown(value: Any) -> str:
    """A value as a reason quotes it: its JSON, cut to 200 characters."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        text = repr(value)[:200]
    return text if len(text) <= 200 else text[:199] + "…"


class RefusalMatcher:
    """Whether an answer refuses: one of the set's refusal outputs, or text holding one of its
    phrases."""

    def __init__(self, refusal: Refusal) -> None:
        self._outputs = refusal.outputs
        self._phrases = phrase_pattern(tuple(refusal.phrases))

    def __call__(self, value: Any) -> bool:
        if any(same(value, output, normalise=True) for output in self._outputs):
            return True
        return (
            self._phrases is not None
            and isinstance(value, str)
            and bool(self._phrases.search(value))
        )


def score_case(
    case: Case,
    answer: Answer,
    refuses: RefusalMatcher,
    scorers: Mapping[str, tuple[CaseScorer, float | None]],
) -> CaseResult:
    """The case's result; ``scorers`` maps each scorer's name to its function and per-case
    minimum. A scorer that fails fails the case, naming the scorer."""
    if answer.error is not None:
        return CaseResult(case, answer, refused=False, passed=False, reason=answer.error)
    reasons: list[str] = []
    scores: dict[str, float] = {}
    try:
        refused = refuses(answer.value)
        if case.must_refuse:
            if not refused:
                reasons.append("answered a case it must refuse")
        elif refused:
            reasons.append("refused a case it must answer")
        elif case.expected is not None:
            ok, why, similarity = check_expected(case.expected, answer.value)
            if similarity is not None:
                scores["similarity"] = similarity
            if not ok:
                reasons.append(why)
    except Exception as error:  # an answer nothing can read: its case fails
        reason = f"the answer cannot be checked: {type(error).__name__}: {error}"[:500]
        return CaseResult(case, answer, refused=False, passed=False, reason=reason)
    for name, (scorer, minimum) in scorers.items():
        try:
            score = _unit(scorer(case, answer))
        except (Exception, SystemExit) as error:  # a user's scorer or a judge: say which
            reasons.append(f"scorer {name} failed: {type(error).__name__}: {error}"[:500])
            continue
        scores[name] = score
        if minimum is not None and score < minimum:
            reasons.append(f"{name} {score:.2f}, under {minimum:g}")
    reason = "; ".join(reasons)
    return CaseResult(case, answer, refused, passed=not reasons, reason=reason, scores=scores)


def _unit(score: object) -> float:
    """A scorer's answer as a number in [0, 1]; anything else is the scorer's mistake."""
    if isinstance(score, np.generic) and score.ndim == 0:  # numpy's float32, bool_, int64
        score = score.item()
    if isinstance(score, bool):
        return float(score)
    if not isinstance(score, int | float) or not 0 <= score <= 1:
        raise ValueError(f"a score is a number in [0, 1] or a bool, not {score!r}"[:200])
    return float(score)


def figures(results: Sequence[CaseResult], evaluation_set: EvaluationSet) -> list[Figure]:
    """Every metric of the whole set and of each tag, each with the threshold on it if any."""
    # Each figure with every threshold on it: a set built in code may bound one twice.
    thresholds: dict[tuple[str, str | None], list[Threshold]] = {}
    for t in evaluation_set.gates():
        thresholds.setdefault((t.metric, t.tag), []).append(t)
    groups: list[tuple[str | None, list[CaseResult]]] = [(None, list(results))]
    groups += [(tag, [r for r in results if tag in r.case.tags]) for tag in evaluation_set.tags]
    labels = classes(evaluation_set)
    found = []
    for tag, group in groups:
        for metric, (value, sample) in _metrics(group, labels if tag is None else []).items():
            bounds: list[Threshold | None] = [*thresholds.pop((metric, tag), [])] or [None]
            found += [Figure(metric, tag, value, sample, t) for t in bounds]
    # A threshold on a metric no case measured (a class that never came up): no data for it.
    found += [
        Figure(metric, tag, None, 0, t) for (metric, tag), ts in thresholds.items() for t in ts
    ]
    return found


def _metrics(
    results: Sequence[CaseResult], labels: Sequence[str]
) -> dict[str, tuple[float | None, int]]:
    def share(hits: Iterable[bool]) -> tuple[float | None, int]:
        counted = list(hits)
        return (sum(counted) / len(counted) if counted else None), len(counted)

    rejection = [r for r in results if r.case.must_refuse]
    ordinary = [r for r in results if not r.case.must_refuse and r.answer.error is None]
    metrics = {
        "pass_rate": share(r.passed for r in results),
        "error_rate": share(r.answer.error is not None for r in results),
        "refusal_recall": share(r.refused for r in rejection),
        "over_refusal": share(r.refused for r in ordinary),
    }
    classified = [
        r for r in results
        if r.case.expected is not None and r.case.expected.kind == "exact"
        and isinstance(r.case.expected.exact, str)
    ]  # fmt: skip
    metrics["accuracy"] = share(_class_of(r) == _expected_class(r) for r in classified)
    if labels:
        metrics |= _per_class(classified, labels)
    latencies = [
        r.answer.latency_ms
        for r in results
        if r.answer.latency_ms is not None and math.isfinite(r.answer.latency_ms)
    ]
    for name, q in (("latency_p50_ms", 50), ("latency_p95_ms", 95)):
        metrics[name] = (
            (float(np.percentile(latencies, q)), len(latencies)) if latencies else (None, 0)
        )
    for name in sorted({name for r in results for name in r.scores}):
        values = [r.scores[name] for r in results if name in r.scores]
        metrics[f"score:{name}"] = (sum(values) / len(values), len(values))
    return metrics


def _per_class(
    classified: Sequence[CaseResult], labels: Sequence[str]
) -> dict[str, tuple[float | None, int]]:
    """Precision and recall per expected class, the answer's class being its exact text (or,
    where its case compares normalised text, the class it normalises to)."""
    metrics: dict[str, tuple[float | None, int]] = {}
    by_normal: dict[str, str] = {}
    for label in labels:
        by_normal.setdefault(normalised(label), label)
    answered = [(r, _class_of(r, by_normal)) for r in classified]
    for label in labels:
        expected = [(r, c) for r, c in answered if _expected_class(r) == label]
        predicted = [(r, c) for r, c in answered if c == label]
        hits = sum(c == label for _, c in expected)
        metrics[f"recall:{label}"] = (hits / len(expected), len(expected))
        right = sum(_expected_class(r) == label for r, _ in predicted)
        metrics[f"precision:{label}"] = (
            (right / len(predicted), len(predicted)) if predicted else (None, 0)
        )
    return metrics


def _expected_class(result: CaseResult) -> str:
    assert result.case.expected is not None
    return str(result.case.expected.exact)


def _class_of(result: CaseResult, by_normal: Mapping[str, str] | None = None) -> str | None:
    value = result.answer.value
    expected = result.case.expected
    if result.answer.error is not None or not isinstance(value, str) or expected is None:
        return None
    # Said as the set says it (normalised, if the case compares so): its class.
    if same(value, expected.exact, normalise=expected.normalise):
        return str(expected.exact)
    if expected.normalise and by_normal:
        return by_normal.get(normalised(value), value)
    return value


def passed(found: Sequence[Figure]) -> bool:
    """A run passes when every threshold on it passes; one with no data to judge does not."""
    return all(f.status == "pass" for f in found if f.threshold is not None)

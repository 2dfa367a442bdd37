"""The feature columns the detectors compare, taken from decisions or from reference rows.

A decision's inputs are flattened (a nested object's keys become dotted names); its confidence
(when it has one) is the feature ``confidence`` and whether it broke its data contract the flag
``(contract-violations)``. A feature whose values are all numbers is continuous; any other
(strings, booleans) is categorical; lists are left out. A value of the wrong kind in a window
counts as missing, so that the missing-value rate shows it.

A generative decision (one with an ``operation``) also gives, computed here and never by the
caller: the text descriptors (``driftline.detectors.descriptors``) of each text input, named
after it (``prompt.characters``, ``prompt.language``...), and of a text output, as
``(output).*``, whose ``detections`` count the redaction's masks (``[email]``...) in the text,
so that what the scanners found is counted and never kept; the text output itself, as
``(output)``; its token counts, as ``(usage).input_tokens`` and the like; and
``(finish-reason)``. A completion's ``refusal`` descriptor uses the phrases its baseline was
fitted with (``DRIFTLINE_DETECT_REFUSAL_PHRASES``). Its texts (``texts_of``) are the text
check's, and no categorical feature: counting each distinct prompt as a category says nothing,
and a baseline must fit in one event.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from driftline.agent.contract import TokenUsage
from driftline.collector.store.models import Decision
from driftline.detectors.descriptors import DEFAULT_REFUSALS, describe
from driftline.detectors.verdict import CONFIDENCE

VIOLATIONS = "(contract-violations)"
OUTPUT, USAGE, FINISH_REASON = "(output)", "(usage)", "(finish-reason)"
# What the agent's redaction puts where its scanners found something (``[email]``, ``[card]#2``).
MASK = re.compile(r"\[(?:email|card|phone|redacted)\](?:#\d+)?")


@dataclass(frozen=True)
class FeatureKinds:
    continuous: tuple[str, ...]
    categorical: tuple[str, ...]
    flags: tuple[str, ...]
    texts: tuple[str, ...] = ()  # compared by the text check and described, never counted


def flatten(inputs: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in inputs.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat |= flatten(value, f"{name}.")
        elif not isinstance(value, list):
            flat[name] = value
    return flat


def decision_row(decision: Decision, refusals: Sequence[str] = DEFAULT_REFUSALS) -> dict[str, Any]:
    """A decision's features; ``refusals`` are the phrases that mark a completion a refusal
    (the baseline's, so that a window is described as its baseline was)."""
    row = flatten(decision.inputs)
    if decision.confidence is not None:  # a model that gives none has no confidence feature
        row[CONFIDENCE] = decision.confidence
    row[VIOLATIONS] = bool(decision.contract_violations)
    if decision.operation is not None:
        row |= _generative(decision, row, refusals)
    return row


def texts_of(decision: Decision, inputs: Mapping[str, Any] | None = None) -> dict[str, str]:
    """A generative decision's texts by feature name: each text input (of the flattened
    ``inputs``) and a text output; none of a classic model's decision."""
    if decision.operation is None:
        return {}
    flat = flatten(decision.inputs) if inputs is None else inputs
    texts = {name: value for name, value in flat.items() if isinstance(value, str)}
    if isinstance(decision.output, str):
        texts[OUTPUT] = decision.output
    return texts


def _generative(
    decision: Decision, inputs: Mapping[str, Any], refusals: Sequence[str]
) -> dict[str, Any]:
    texts = texts_of(decision, inputs)
    row: dict[str, Any] = {OUTPUT: texts[OUTPUT]} if OUTPUT in texts else {}
    for name, text in texts.items():
        described = describe(name, [text], refusals=refusals, count_detections=_masks)
        row |= {column: values[0] for column, values in described.items()}
    # Each only where given: a count the service never sends is no feature, rather than one
    # whose every value is missing.
    for count in TokenUsage.model_fields:  # each a column of the read model too
        if getattr(decision, count) is not None:
            row[f"{USAGE}.{count}"] = getattr(decision, count)
    if decision.finish_reason is not None:
        row[FINISH_REASON] = decision.finish_reason
    return row


def _masks(text: str) -> int:
    return len(MASK.findall(text))


def infer_kinds(
    rows: Sequence[Mapping[str, Any]], flags: Iterable[str] = (), texts: Iterable[str] = ()
) -> FeatureKinds:
    """Each feature's kind, judged from the rows given (the first chunk of a reference)."""
    flagged, written = tuple(flags), tuple(texts)
    names = sorted({name for row in rows for name in row} - {*flagged, *written})
    continuous = tuple(n for n in names if all(_is_number(r.get(n)) for r in rows))
    categorical = tuple(n for n in names if n not in continuous)
    return FeatureKinds(continuous, categorical, flagged, written)


def columns(rows: Sequence[Mapping[str, Any]], kinds: FeatureKinds) -> dict[str, list[Any]]:
    """One column per feature, None where a row lacks the value or has one of the wrong kind."""
    table: dict[str, list[Any]] = {}
    for name in kinds.continuous:
        table[name] = [_number_or_none(row.get(name)) for row in rows]
    for name in kinds.categorical:
        table[name] = [row.get(name) for row in rows]
    for name in kinds.flags:
        table[name] = [bool(row.get(name)) for row in rows]
    for name in kinds.texts:
        table[name] = [row.get(name) if isinstance(row.get(name), str) else None for row in rows]
    return table


def _is_number(value: object) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _number_or_none(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None

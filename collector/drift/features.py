"""The feature columns the detectors compare, taken from decisions or from reference rows.

A decision's inputs are flattened (a nested object's keys become dotted names); its confidence
is the feature ``confidence`` and whether it broke its data contract the flag
``(contract-violations)``. A feature whose values are all numbers is continuous; any other
(strings, booleans) is categorical; lists are left out. A value of the wrong kind in a window
counts as missing, so that the missing-value rate shows it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from driftline.collector.store.models import Decision
from driftline.detectors.verdict import CONFIDENCE

VIOLATIONS = "(contract-violations)"


@dataclass(frozen=True)
class FeatureKinds:
    continuous: tuple[str, ...]
    categorical: tuple[str, ...]
    flags: tuple[str, ...]


def flatten(inputs: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in inputs.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat |= flatten(value, f"{name}.")
        elif not isinstance(value, list):
            flat[name] = value
    return flat


def decision_row(decision: Decision) -> dict[str, Any]:
    row = flatten(decision.inputs)
    if decision.confidence is not None:  # a model that gives none has no confidence feature
        row[CONFIDENCE] = decision.confidence
    row[VIOLATIONS] = bool(decision.contract_violations)
    return row


def infer_kinds(rows: Sequence[Mapping[str, Any]], flags: Iterable[str] = ()) -> FeatureKinds:
    """Each feature's kind, judged from the rows given (the first chunk of a reference)."""
    flagged = tuple(flags)
    names = sorted({name for row in rows for name in row} - set(flagged))
    continuous = tuple(n for n in names if all(_is_number(r.get(n)) for r in rows))
    categorical = tuple(n for n in names if n not in continuous)
    return FeatureKinds(continuous, categorical, flagged)


def columns(rows: Sequence[Mapping[str, Any]], kinds: FeatureKinds) -> dict[str, list[Any]]:
    """One column per feature, None where a row lacks the value or has one of the wrong kind."""
    table: dict[str, list[Any]] = {}
    for name in kinds.continuous:
        table[name] = [_number_or_none(row.get(name)) for row in rows]
    for name in kinds.categorical:
        table[name] = [row.get(name) for row in rows]
    for name in kinds.flags:
        table[name] = [bool(row.get(name)) for row in rows]
    return table


def _is_number(value: object) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _number_or_none(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None

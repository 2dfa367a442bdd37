"""Tables as the detectors take them: a pandas DataFrame or a mapping of equal-length columns
(lists, numpy arrays, pandas Series), with one notion of a missing value for every kind of
feature, and the kind of each feature inferred from its values.

Missing is None, a float NaN (numpy's too), pandas' ``NA`` and ``NaT``, and numpy's ``NaT``.
pandas is never imported here: its objects are recognised by what they offer
(``to_numpy``, ``columns``), so the detectors work without it installed.

A category is compared by its text (``category``), the same for a value however its column was
typed: 12 and 12.0 (pandas makes an integer column float once it has a missing value) are one
category, and text that JSON or PostgreSQL cannot carry (a lone surrogate, NUL) is escaped, so
a baseline with it can still be published and stored.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

Kind = Literal["continuous", "categorical", "flag"]
KINDS: tuple[Kind, ...] = ("continuous", "categorical", "flag")
_PANDAS_MISSING = frozenset({"NAType", "NaTType"})


def is_missing(value: object) -> bool:
    """None, NaN, pandas' NA or NaT, numpy's NaT."""
    if value is None:
        return True
    if isinstance(value, float | np.floating):
        return math.isnan(value)
    if isinstance(value, np.datetime64 | np.timedelta64):
        return bool(np.isnat(value))
    kind = type(value)
    return kind.__name__ in _PANDAS_MISSING and kind.__module__.startswith("pandas")


def column_names(table: Any) -> list[str]:
    """A DataFrame's columns or a mapping's keys, as strings; two that read the same (a
    duplicated label, or 0 and "0") are an error, as they would be one feature."""
    names = [str(name) for name in (table.columns if hasattr(table, "columns") else table.keys())]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"column labels repeat (as text): {repeated}")
    return names


def category(value: object) -> str:
    """A present value's text as a category."""
    if isinstance(value, np.floating) and not isinstance(value, np.float64):
        value = float(np.format_float_positional(value, unique=True))  # float32 0.1: "0.1"
    elif isinstance(value, np.generic):
        value = value.item()
    elif isinstance(value, Decimal) and value.is_finite():
        value = float(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value)
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: written as its escape
            text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def values(column: Any) -> list[Any]:
    """A column as Python values, None where missing."""
    items = column.tolist() if hasattr(column, "tolist") else list(column)
    return [None if is_missing(item) else item for item in items]


def numbers(column: Any) -> NDArray[np.float64]:
    """A continuous column as floats, NaN where missing (or not a number at all, so that the
    missing-value rate shows a value of the wrong kind). Times are seconds since the epoch."""
    kind = getattr(getattr(column, "dtype", None), "kind", "O")
    if isinstance(column, np.ndarray) and kind in "fiub":
        return column.astype(float, copy=False)
    if kind in "Mm":  # datetime64 or timedelta64, numpy's or pandas': NaT is missing
        if getattr(getattr(column, "dt", None), "tz", None) is not None:
            column = column.dt.tz_convert(None)  # pandas' zoned times, as UTC
        times = np.asarray(column.to_numpy() if hasattr(column, "to_numpy") else column)
        zero = np.zeros((), dtype=times.dtype)  # the epoch, in the column's unit: no overflow
        result: NDArray[np.float64] = np.asarray((times - zero) / np.timedelta64(1, "s"))
        result[np.isnat(times)] = np.nan
        return result
    if hasattr(column, "to_numpy") and kind in "fiub":
        # pandas' numeric dtypes, nullable ones (NA) included
        return np.asarray(column.to_numpy(dtype=float, na_value=np.nan), dtype=float)
    if isinstance(column, list | tuple) and not any(isinstance(item, str) for item in column):
        try:  # the common case, numbers and None, at numpy's pace (numpy would parse text)
            return np.asarray(column, dtype=float)
        except (TypeError, ValueError, OverflowError):
            pass
    return np.array([_number(item) for item in values(column)], dtype=float)


def flags(column: Any) -> list[bool]:
    """A flag column: missing counts as not set."""
    return [bool(item) for item in values(column)]


def kind_of(column: Any) -> Kind:
    """``flag`` when every present value is a boolean, ``continuous`` when every one is a
    number, ``categorical`` otherwise (a column with nothing present is continuous)."""
    present = [item for item in values(column) if item is not None]
    if present and all(isinstance(item, bool | np.bool_) for item in present):
        return "flag"
    if all(_is_number(item) for item in present):
        return "continuous"
    return "categorical"


def infer_kinds(table: Any, overrides: Mapping[str, Kind] | None = None) -> dict[str, Kind]:
    """Each column's kind (``kind_of``), with ``overrides`` taking precedence: a numeric code
    that is really a category, say. An override naming no column, or no kind, is an error."""
    chosen = dict(overrides or {})
    names = column_names(table)
    unknown = sorted(set(chosen) - set(names))
    if unknown:
        raise ValueError(f"overrides name columns the table does not have: {unknown}")
    wrong = {name: kind for name, kind in chosen.items() if kind not in KINDS}
    if wrong:
        raise ValueError(f"overrides give kinds other than {list(KINDS)}: {wrong}")
    return {name: chosen.get(name) or kind_of(_column(table, name)) for name in names}


def by_kind(kinds: Mapping[str, Kind]) -> dict[Kind, tuple[str, ...]]:
    """The feature names of each kind, in the order given."""
    return {kind: tuple(n for n, k in kinds.items() if k == kind) for kind in KINDS}


def columns_of(table: Any, names: Iterable[str]) -> dict[str, Any]:
    """The named columns of a table; a missing one is an error that names it."""
    available = set(column_names(table))
    absent = [name for name in names if name not in available]
    if absent:
        raise KeyError(f"the table has no column {absent[0]!r} (has {sorted(available)})")
    return {name: _column(table, name) for name in names}


def row_count(columns: Mapping[str, Sequence[Any] | Any]) -> int:
    """The length shared by every column; columns of unequal length are an error."""
    lengths = {name: len(column) for name, column in columns.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"columns differ in length: {lengths}")
    return next(iter(lengths.values()), 0)


def _column(table: Any, name: str) -> Any:
    if hasattr(table, "columns"):  # a DataFrame's labels need not be strings
        for label in table.columns:
            if str(label) == name:
                return table[label]
    return table[name]


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def _number(value: object) -> float:
    if not _is_number(value):
        return math.nan
    try:
        return float(value)  # type: ignore[arg-type]
    except OverflowError:  # an integer past any float: not a number a check can use
        return math.nan

"""Baselines: what "normal" looked like, in bounded memory whatever the reference size.

Continuous features (confidence among them) are kept as a uniform reservoir of whole rows, so
the multivariate check sees how features move together. The columns are stored sorted for the
per-feature tests. Categorical features are kept as counts of the most frequent categories,
with the rest pooled. Flags (true or false per decision, such as "broke its data contract") are
counted. Missing values are counted per feature. A baseline is fitted in chunks
(``BaselineBuilder.add``), from a reference file or from the first decisions of a version.

Its record keeps six significant digits per value: far finer than any drift worth reporting,
and it keeps the record small enough to travel as an event.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from driftline.detectors.continuous import NotChecked, Reference
from driftline.detectors.multivariate import JointModel

OTHER = "(other)"


@dataclass(frozen=True)
class Baseline:
    continuous: tuple[str, ...]
    rows: NDArray[np.float64]  # the reservoir: one row per sampled decision, NaN if missing
    sorted_columns: dict[str, NDArray[np.float64]]  # NaN-free, sorted, per continuous feature
    categorical: dict[str, dict[str, int]]
    missing: dict[str, int]  # missing values seen per feature, over ``size`` decisions
    size: int
    flags: dict[str, int] = field(default_factory=dict)  # decisions with the flag set
    review_threshold: float | None = None  # confidence under which a human reviews

    @functools.cached_property
    def references(self) -> dict[str, Reference]:
        """Each continuous feature prepared once for every window checked against it."""
        return {name: Reference.of(values) for name, values in self.sorted_columns.items()}

    @functools.cached_property
    def joint(self) -> JointModel | NotChecked:
        return JointModel.fit(self.rows)

    def features(self) -> dict[str, str]:
        """Each feature's name and kind: continuous, categorical or flag."""
        return features_of(self.continuous, self.categorical, self.flags)

    def subsample(self, rows: int, seed: int = 0) -> Baseline:
        """The same baseline with a uniform sample of at most ``rows`` reservoir rows."""
        if rows >= len(self.rows):
            return self
        chosen = np.sort(np.random.default_rng(seed).choice(len(self.rows), rows, replace=False))
        kept = self.rows[chosen]
        return replace(self, rows=kept, sorted_columns=_sorted_columns(self.continuous, kept))

    def to_record(self) -> dict[str, Any]:
        """A JSON-ready form, to store as a versioned baseline record."""
        return {
            "continuous": list(self.continuous),
            "rows": [
                [None if np.isnan(v) else float(f"{v:.6g}") for v in row] for row in self.rows
            ],
            "categorical": self.categorical,
            "flags": self.flags,
            "missing": self.missing,
            "size": self.size,
            "review_threshold": self.review_threshold,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Baseline:
        names = tuple(record["continuous"])
        rows = np.array(
            [[np.nan if v is None else v for v in row] for row in record["rows"]], dtype=float
        ).reshape(-1, len(names))
        return cls(
            continuous=names,
            rows=rows,
            sorted_columns=_sorted_columns(names, rows),
            categorical={k: dict(v) for k, v in record["categorical"].items()},
            missing=dict(record["missing"]),
            size=int(record["size"]),
            flags=dict(record.get("flags", {})),
            review_threshold=record.get("review_threshold"),
        )


def features_of(
    continuous: Iterable[str], categorical: Iterable[str], flags: Iterable[str]
) -> dict[str, str]:
    """Each feature name with its kind."""
    kinds = {name: "continuous" for name in continuous}
    kinds |= {name: "categorical" for name in categorical}
    return kinds | {name: "flag" for name in flags}


def record_features(record: Mapping[str, Any]) -> dict[str, str]:
    """A stored record's features, without building the baseline from its rows."""
    return features_of(record["continuous"], record["categorical"], record.get("flags", {}))


@dataclass
class BaselineBuilder:
    continuous: tuple[str, ...]
    categorical: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    review_threshold: float | None = None
    reservoir: int = 10_000
    max_categories: int = 1_000
    seed: int = 0
    _sample: NDArray[np.float64] | None = None
    _seen: int = 0
    _counts: dict[str, Counter[str]] = field(default_factory=dict)
    _missing: Counter[str] = field(default_factory=Counter)
    _flagged: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        self._sample = np.empty((0, len(self.continuous)))
        self._counts = {name: Counter() for name in self.categorical}

    def add(self, chunk: Mapping[str, Iterable[Any]]) -> None:
        """Take a chunk of decisions, as columns of equal length (None or NaN: missing)."""
        columns = {
            name: list(chunk[name]) for name in self.continuous + self.categorical + self.flags
        }
        size = len(next(iter(columns.values()))) if columns else 0
        matrix = np.array(
            [[np.nan if v is None else v for v in columns[name]] for name in self.continuous],
            dtype=float,
        ).T.reshape(size, len(self.continuous))
        for index, name in enumerate(self.continuous):
            self._missing[name] += int(np.isnan(matrix[:, index]).sum())
        for name in self.categorical:
            values = columns[name]
            self._missing[name] += sum(value is None for value in values)
            self._counts[name].update(str(value) for value in values if value is not None)
            self._cap(name)
        for name in self.flags:
            self._flagged[name] += sum(bool(value) for value in columns[name])
        self._sample_rows(matrix)
        self._seen += size

    def build(self) -> Baseline:
        assert self._sample is not None
        rows = self._sample.copy()
        return Baseline(
            continuous=self.continuous,
            rows=rows,
            sorted_columns=_sorted_columns(self.continuous, rows),
            categorical={name: dict(counts) for name, counts in self._counts.items()},
            missing={name: self._missing[name] for name in self.continuous + self.categorical},
            size=self._seen,
            flags={name: self._flagged[name] for name in self.flags},
            review_threshold=self.review_threshold,
        )

    def _sample_rows(self, matrix: NDArray[np.float64]) -> None:
        """Reservoir sampling (algorithm R), a chunk at a time."""
        assert self._sample is not None
        room = self.reservoir - len(self._sample)
        if room > 0:
            self._sample = np.vstack([self._sample, matrix[:room]])
            matrix, first = matrix[room:], self._seen + room
        else:
            first = self._seen
        if len(matrix) == 0:
            return
        positions = np.arange(first, first + len(matrix))
        slots = self._rng.integers(0, positions + 1)
        chosen = slots < self.reservoir
        self._sample[slots[chosen]] = matrix[chosen]

    def _cap(self, name: str) -> None:
        counts = self._counts[name]
        if len(counts) <= self.max_categories:
            return
        kept = counts.most_common(self.max_categories - 1)
        pooled = sum(counts.values()) - sum(count for _, count in kept)
        self._counts[name] = Counter(dict(kept))
        self._counts[name][OTHER] += pooled


def _sorted_columns(names: tuple[str, ...], rows: NDArray[np.float64]) -> dict[str, Any]:
    columns = {}
    for index, name in enumerate(names):
        column = rows[:, index]
        columns[name] = np.sort(column[~np.isnan(column)])
    return columns

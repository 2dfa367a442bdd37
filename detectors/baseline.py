"""Baselines: what "normal" looked like, in bounded memory whatever the reference size.

Continuous features (confidence among them) are kept as a uniform reservoir of whole rows, so
the multivariate check sees how features move together. The columns are stored sorted for the
per-feature tests. Categorical features are counted exactly, category by category, up to
``max_categories`` distinct values; a feature with more is an identifier (or free text): the
baseline records that choice and keeps a distinct sample of its values instead
(``driftline.detectors.identifiers``), whose unseen share is checked as a rate. Flags (true or
false per decision, such as "broke its data contract") are counted. Missing values (None, NaN,
pandas' NA and NaT) are counted per feature, of every kind. A baseline is fitted in chunks
(``BaselineBuilder.add``) of a DataFrame or a mapping of columns, from a reference file or from
the first decisions of a version; ``fit_baseline`` fits one table, inferring each feature's
kind unless told. A text feature (a prompt, a completion) may also keep a uniform sample of its
texts (``with_texts``), for the text check.

Its record keeps each value to five significant digits of its feature's spread (and at least
six of its own): far finer than any drift worth reporting, and it keeps the record small
enough to travel as an event. Six significant digits alone made a feature with a small spread
around a large value (a pressure of 101,325 plus or minus 2) a handful of distinct values,
and every window of it drifted.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from driftline.detectors.continuous import NotChecked, Reference
from driftline.detectors.descriptors import DEFAULT_REFUSALS
from driftline.detectors.identifiers import ValueSample, ValueSampler
from driftline.detectors.multivariate import JointModel
from driftline.detectors.table import (
    Kind,
    by_kind,
    category,
    columns_of,
    infer_kinds,
    numbers,
    row_count,
)
from driftline.detectors.table import flags as flag_values
from driftline.detectors.table import values as present_or_none
from driftline.detectors.text import excerpt

TEXT_SAMPLE = 1_000  # texts kept of each text feature


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
    identifiers: dict[str, ValueSample] = field(default_factory=dict)  # too many categories
    # A record from before identifiers, whose categorical counts pooled a tail into "(other)"
    pooled_tail: bool = False
    # A uniform sample of a text feature's texts (each its ``text.excerpt``), which the text
    # check (``driftline.detectors.text``) compares a window's texts with.
    texts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # The phrases that mark a completion a refusal (the ``refusal`` descriptor) when this was
    # fitted: a window is described with the same ones, so that a change of the setting is no
    # drift.
    refusals: tuple[str, ...] = DEFAULT_REFUSALS

    @functools.cached_property
    def references(self) -> dict[str, Reference]:
        """Each continuous feature prepared once for every window checked against it."""
        return {name: Reference.of(values) for name, values in self.sorted_columns.items()}

    @functools.cached_property
    def joint(self) -> JointModel | NotChecked:
        return JointModel.fit(self.rows)

    def features(self) -> dict[str, str]:
        """Each feature's name and kind: continuous, categorical, identifier or flag."""
        return features_of(self.continuous, self.categorical, self.flags, self.identifiers)

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
            "rows": _rounded_rows(self.rows),
            "categorical": self.categorical,
            "flags": self.flags,
            "missing": self.missing,
            "size": self.size,
            "review_threshold": self.review_threshold,
            "identifiers": {name: sample.to_record() for name, sample in self.identifiers.items()},
            **({"pooled_tail": True} if self.pooled_tail else {}),
            **({"texts": {name: list(t) for name, t in self.texts.items()}} if self.texts else {}),
            **({"refusals": list(self.refusals)} if self.refusals != DEFAULT_REFUSALS else {}),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Baseline:
        names = tuple(record["continuous"])
        rows = np.array(
            [[np.nan if v is None else v for v in row] for row in record["rows"]], dtype=float
        ).reshape(len(record["rows"]), len(names))
        return cls(
            continuous=names,
            rows=rows,
            sorted_columns=_sorted_columns(names, rows),
            categorical={k: dict(v) for k, v in record["categorical"].items()},
            missing=dict(record["missing"]),
            size=int(record["size"]),
            flags=dict(record.get("flags", {})),
            review_threshold=record.get("review_threshold"),
            identifiers={
                name: ValueSample.from_record(sample)
                for name, sample in record.get("identifiers", {}).items()
            },
            pooled_tail=bool(record.get("pooled_tail", "identifiers" not in record)),
            texts={name: tuple(texts) for name, texts in record.get("texts", {}).items()},
            refusals=tuple(record.get("refusals", DEFAULT_REFUSALS)),
        )

    def with_texts(
        self, texts: Mapping[str, Sequence[str]], per_feature: int = TEXT_SAMPLE, seed: int = 0
    ) -> Baseline:
        """The same baseline with a uniform sample of at most ``per_feature`` of each text
        feature's texts, each its excerpt (``text.excerpt``); a feature with no text is left
        out."""
        rng = np.random.default_rng(seed)
        sampled = {}
        for name, given in texts.items():
            kept = [text for text in given if isinstance(text, str)]
            if len(kept) > per_feature:
                chosen = np.sort(rng.choice(len(kept), per_feature, replace=False))
                kept = [kept[i] for i in chosen]
            if kept:
                sampled[name] = tuple(excerpt(text) for text in kept)
        return replace(self, texts=sampled)


def features_of(
    continuous: Iterable[str],
    categorical: Iterable[str],
    flags: Iterable[str],
    identifiers: Iterable[str] = (),
) -> dict[str, str]:
    """Each feature name with its kind."""
    kinds = {name: "continuous" for name in continuous}
    kinds |= {name: "categorical" for name in categorical}
    kinds |= {name: "identifier" for name in identifiers}
    return kinds | {name: "flag" for name in flags}


def record_features(record: Mapping[str, Any]) -> dict[str, str]:
    """A stored record's features, without building the baseline from its rows; a text
    feature's kind is ``text``."""
    return features_of(
        record["continuous"],
        record["categorical"],
        record.get("flags", {}),
        record.get("identifiers", {}),
    ) | dict.fromkeys(record.get("texts", {}), "text")


@dataclass
class BaselineBuilder:
    continuous: tuple[str, ...]
    categorical: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    review_threshold: float | None = None
    reservoir: int = 10_000
    max_categories: int = 1_000  # more distinct values than this: an identifier
    seed: int = 0
    _sample: NDArray[np.float64] | None = None
    _seen: int = 0
    _counts: dict[str, Counter[str]] = field(default_factory=dict)
    _identifiers: dict[str, ValueSampler] = field(default_factory=dict)
    _missing: Counter[str] = field(default_factory=Counter)
    _flagged: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        self._sample = np.empty((0, len(self.continuous)))
        self._counts = {name: Counter() for name in self.categorical}

    @classmethod
    def for_table(
        cls, table: Any, kinds: Mapping[str, Kind] | None = None, **options: Any
    ) -> BaselineBuilder:
        """A builder for the columns of ``table``, of the kinds ``infer_kinds`` gives with
        ``kinds`` overriding."""
        named = by_kind(infer_kinds(table, kinds))
        return cls(named["continuous"], named["categorical"], named["flag"], **options)

    def add(self, chunk: Any) -> None:
        """Take a chunk of decisions: a DataFrame or a mapping of columns of equal length."""
        columns = columns_of(chunk, self.continuous + self.categorical + self.flags)
        size = row_count(columns)
        matrix = np.array([numbers(columns[name]) for name in self.continuous], dtype=float)
        matrix = matrix.reshape(len(self.continuous), size).T
        for index, name in enumerate(self.continuous):
            self._missing[name] += int(np.isnan(matrix[:, index]).sum())
        for name in self.categorical:
            values = present_or_none(columns[name])
            self._missing[name] += sum(value is None for value in values)
            counted = Counter(category(value) for value in values if value is not None)
            if name in self._identifiers:
                self._identifiers[name].add(counted)
                continue
            self._counts[name].update(counted)
            if len(self._counts[name]) > self.max_categories:  # an identifier from now on
                self._identifiers[name] = ValueSampler()
                self._identifiers[name].add(self._counts.pop(name))
        for name in self.flags:
            self._flagged[name] += sum(flag_values(columns[name]))
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
            identifiers={name: sampler.build() for name, sampler in self._identifiers.items()},
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


def fit_baseline(table: Any, kinds: Mapping[str, Kind] | None = None, **options: Any) -> Baseline:
    """The baseline of one table (a DataFrame or a mapping of columns): each column's kind is
    inferred (``driftline.detectors.table.infer_kinds``) unless ``kinds`` says; ``options`` are
    the builder's (``reservoir``, ``max_categories``, ``review_threshold``, ``seed``)."""
    builder = BaselineBuilder.for_table(table, kinds, **options)
    builder.add(table)
    return builder.build()


def _rounded_rows(rows: NDArray[np.float64]) -> list[list[float | None]]:
    """The reservoir as JSON-ready rows: each value to five significant digits of its
    column's spread, and never to fewer than six of its own; an infinite value, which JSON
    cannot carry, as missing."""
    columns = []
    for column in rows.T:
        present = column[np.isfinite(column)]
        spread = _decimals(float(np.std(present)), 5) if present.size else None
        columns.append([_rounded(v, spread) for v in column.tolist()])
    return [list(row) for row in zip(*columns, strict=True)] if columns else [[] for _ in rows]


def _rounded(value: float, spread_places: int | None) -> float | None:
    if not math.isfinite(value):
        return None
    own = _decimals(abs(value), 6)
    places = max((p for p in (spread_places, own) if p is not None), default=None)
    return value if places is None else round(value, places)


def _decimals(scale: float, digits: int) -> int | None:
    """Decimal places that keep ``digits`` significant digits of ``scale`` (None for 0 or a
    value that is not finite)."""
    if not math.isfinite(scale) or scale == 0.0:
        return None
    return digits - 1 - math.floor(math.log10(scale))


def _sorted_columns(names: tuple[str, ...], rows: NDArray[np.float64]) -> dict[str, Any]:
    columns = {}
    for index, name in enumerate(names):
        column = rows[:, index]
        columns[name] = np.sort(column[~np.isnan(column)])
    return columns

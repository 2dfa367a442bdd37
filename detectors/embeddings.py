"""Drift of embeddings (the vectors a service computed for its inputs or outputs): has the
window's cloud of vectors moved away from the baseline's?

Significance is the domain-classifier test (``driftline.detectors.classifier``) on the vectors,
each dimension scaled to unit spread: a linear model sees the cloud move in any
direction, however many dimensions there are, holding its rate. A change of spread alone,
with the centre kept, is not what it tests for. The size is the centroid shift as Arize Phoenix
shows it, the Euclidean distance between the two centroids, here in baseline units: over the
baseline's root-mean-square distance from its own centroid (1: the centre moved as far as a
typical baseline vector lies from it).

A row with a missing or non-finite value is left out (its share is for the missing-rate
check); rows of another length than the baseline's are an error naming both lengths.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from driftline.detectors.classifier import separation
from driftline.detectors.continuous import NotChecked

MIN_VECTORS = 20  # on each side: ten held out
ROUNDING = 1e-12  # of the largest magnitude: spreads and distances below it are noise

Floats = NDArray[np.float64]


@dataclass(frozen=True)
class EmbeddingDrift:
    p_value: float
    auc: float  # held-out ROC AUC of telling window vectors from baseline vectors
    centroid_shift: float  # distance between the centroids, in baseline units
    dimension: int
    baseline_size: int
    current_size: int


def vectors(rows: Any, *, dimension: int | None = None, name: str = "embedding") -> Floats:
    """The finite rows of ``rows`` as a float matrix; a ``ValueError`` naming ``name`` when a row
    is not a vector of ``dimension`` numbers (or of the first row's length)."""
    kept: list[Floats] = []
    for index, row in enumerate(rows):
        if row is None:
            continue
        vector = np.asarray(row, dtype=float)
        if vector.ndim != 1:
            raise ValueError(f"{name} row {index} is not a flat vector (shape {vector.shape})")
        if dimension is None:
            dimension = vector.size
        if vector.size != dimension:
            raise ValueError(
                f"{name} row {index} has {vector.size} numbers; the others have {dimension}"
            )
        if np.isfinite(vector).all():
            kept.append(vector)
    return np.array(kept, dtype=float).reshape(len(kept), dimension or 0)


def check_embeddings(
    baseline: Floats, window: Floats, *, seed: int = 0
) -> EmbeddingDrift | NotChecked:
    """Compare the window's vectors with the baseline's (both from ``vectors``)."""
    n, m = len(baseline), len(window)
    if n < MIN_VECTORS or m < MIN_VECTORS:
        return NotChecked(
            f"too few vectors (baseline {n}, window {m}); the embedding check needs "
            f"{MIN_VECTORS} on each side"
        )
    if baseline.shape[1] != window.shape[1]:
        raise ValueError(
            f"the window's vectors have {window.shape[1]} numbers, "
            f"the baseline's {baseline.shape[1]}"
        )
    rows = np.vstack([baseline, window])
    # Divided by the largest magnitude first: the test and the shift are blind to a common
    # factor, and squares of numbers near 1e-160 or 1e160 would underflow or overflow (an
    # underflowed spread left liblinear running for ever).
    largest = float(np.max(np.abs(rows)))
    if largest > 0.0:
        rows = rows / largest
    base, current = rows[:n], rows[n:]
    centre = base.mean(axis=0)
    typical = math.sqrt(float(np.mean(np.sum((base - centre) ** 2, axis=1))))
    shift = float(np.linalg.norm(current.mean(axis=0) - centre))
    # Under ROUNDING the two are rounding noise (identical vectors give a mean off by an ulp).
    typical, shift = (0.0 if x <= ROUNDING else x for x in (typical, shift))
    size = (0.0 if shift == 0.0 else math.inf) if typical == 0.0 else shift / typical
    # Scaled by both samples alike: scaling by the baseline's alone would set its rows apart
    # from the window's even with no drift, and the test would no longer hold its rate.
    spread = rows.std(axis=0)
    spread[spread <= ROUNDING] = 1.0  # a constant dimension carries nothing to scale
    scaled = (rows - rows.mean(axis=0)) / spread
    found = separation(scaled, n, seed=seed)
    return EmbeddingDrift(found.p_value, found.auc, size, baseline.shape[1], n, m)

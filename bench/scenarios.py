"""The data every detector in ``bench.detectors`` is given: generated from seeds with numpy
alone, so Driftline (in the project's environment) and its peers (in their own) check the same
arrays. Each side reports a checksum of the first arrays, and the bench compares them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]
FEATURES = 10  # features per check in the false-alarm and detection runs
REFERENCE_ROWS = 5_000
SHIFTS = (0.05, 0.1, 0.2)  # in standard deviations
WINDOWS = (1_000, 5_000, 20_000)
STREAM_SHIFTS = (0.1, 0.5, 1.0)  # in standard deviations, for the streaming delay


def _column(rng: np.random.Generator, shape: int, rows: int) -> Array:
    """Different shapes, since real inputs are rarely normal."""
    kind = shape % 5
    if kind == 0:
        return rng.normal(size=rows)
    if kind == 1:
        return rng.lognormal(0.0, 0.8, size=rows)
    if kind == 2:
        return rng.uniform(-1, 1, size=rows)
    if kind == 3:
        return rng.exponential(2.0, size=rows)
    return np.round(rng.normal(50, 10, size=rows))  # integer-valued, with ties


def no_drift(seed: int, window: int = 1_000) -> tuple[Array, Array]:
    """Reference and window from the same distributions, one shape per feature."""
    rng = np.random.default_rng(seed)
    reference = np.column_stack([_column(rng, f, REFERENCE_ROWS) for f in range(FEATURES)])
    current = np.column_stack([_column(rng, f, window) for f in range(FEATURES)])
    return reference, current


def shifted(seed: int, shift_sd: float, window: int) -> tuple[Array, Array]:
    """Feature 0 of the window moved by ``shift_sd`` standard deviations; the rest unmoved."""
    rng = np.random.default_rng(seed)
    reference = rng.normal(size=(REFERENCE_ROWS, FEATURES))
    current = rng.normal(size=(window, FEATURES))
    current[:, 0] += shift_sd
    return reference, current


def wide(features: int, rows: int = 10_000, seed: int = 0) -> tuple[Array, Array]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(rows, features)), rng.normal(size=(rows, features))


STREAM_BASELINE = 5_000  # decisions a stream detector learns from (a baseline; ADWIN warms up)
STREAM_NULL = 10_000  # unshifted decisions after those, where any alarm is a false one
STREAM_SHIFT_AT = STREAM_BASELINE + STREAM_NULL


def stream(shift_sd: float, seed: int = 0, after: int = 10_000) -> Array:
    """One feature, decision by decision: ``STREAM_SHIFT_AT`` unshifted, then ``after``
    shifted by ``shift_sd``."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(size=STREAM_SHIFT_AT), rng.normal(shift_sd, 1.0, size=after)])


def checksum(arrays: tuple[Array, ...]) -> float:
    return float(sum(np.sum(a) for a in arrays))


CATEGORIES = 5


def categorical(seed: int, moved: float, window: int) -> tuple[Array, Array]:
    """Category codes (0..4) per feature; in the window, feature 0 moves ``moved`` of the
    probability of category 0 to category 4. ``moved=0``: no drift."""
    rng = np.random.default_rng(seed)
    p = np.array([0.35, 0.25, 0.2, 0.12, 0.08])
    q = p.copy()
    q[0] -= moved
    q[4] += moved
    reference = rng.choice(CATEGORIES, size=(REFERENCE_ROWS, FEATURES), p=p).astype(float)
    current = rng.choice(CATEGORIES, size=(window, FEATURES), p=p).astype(float)
    current[:, 0] = rng.choice(CATEGORIES, size=window, p=q)
    return reference, current


CARDINALITIES = (10, 100, 1_000, 5_000)


def cardinality(
    seed: int, categories: int, shape: str, reference: int = 10_000, window: int = 2_000
) -> tuple[Array, Array]:
    """One categorical feature as codes, reference and window from the same distribution:
    equally likely categories ("uniform") or Zipf-like ones ("zipf", weight 1/rank)."""
    rng = np.random.default_rng(seed)
    weights = np.ones(categories) if shape == "uniform" else 1.0 / np.arange(1, categories + 1)
    drawn = rng.choice(categories, size=reference + window, p=weights / weights.sum())
    codes: Array = drawn.astype(float).reshape(-1, 1)
    return codes[:reference], codes[reference:]


def stream_figures(delays: list[int], false_alarms: int, seeds: int) -> dict[str, Any]:
    """A stream detector's figures over ``seeds`` streams, reported alike for every detector."""
    return {
        "median_delay_decisions": float(np.median(delays)) if delays else None,
        "missed": seeds - len(delays),
        "false_alarms": false_alarms,
        "null_decisions": seeds * STREAM_NULL,
    }

"""Drift of a continuous feature (or of confidence): is the current window's distribution
different from the baseline's, and by how much?

Significance is the two-sample Kolmogorov-Smirnov test; size is the Wasserstein distance in
baseline standard deviations and the population stability index on baseline-quantile bins. A
verdict needs both (see ``detectors.verdict``), so that a huge window does not alarm on a
difference nobody cares about. Missing values (NaN) are left out here: their rate is a feature
of its own (``detectors.proportions``). The baseline is passed sorted, as stored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.stats import kstwo

PSI_FLOOR = 1e-4  # a bin empty on one side would make PSI infinite


@dataclass(frozen=True)
class ContinuousDrift:
    ks_statistic: float
    p_value: float
    wasserstein_sd: float  # distance between the distributions, in baseline std devs
    psi: float
    baseline_size: int
    current_size: int


@dataclass(frozen=True)
class NotChecked:
    """Why a check could not give a verdict (too little data, nothing but missing values)."""

    reason: str


def check_continuous(
    baseline_sorted: NDArray[np.float64], current: NDArray[np.float64], *, bins: int = 10
) -> ContinuousDrift | NotChecked:
    """Compare the current window with the (sorted, NaN-free) baseline."""
    observed = np.sort(current[~np.isnan(current)])
    if baseline_sorted.size < 2:
        return NotChecked(f"baseline has {baseline_sorted.size} values; at least 2 are needed")
    if observed.size < 2:
        return NotChecked(f"window has {observed.size} non-missing values; at least 2 are needed")
    statistic = _ks_statistic(baseline_sorted, observed)
    n, m = baseline_sorted.size, observed.size
    effective = round(n * m / (n + m))
    return ContinuousDrift(
        ks_statistic=statistic,
        p_value=float(kstwo.sf(statistic, effective)),
        wasserstein_sd=_wasserstein_sd(baseline_sorted, observed),
        psi=_psi(baseline_sorted, observed, bins),
        baseline_size=n,
        current_size=m,
    )


def _ks_statistic(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    """The largest gap between the two empirical CDFs (both samples sorted)."""
    points = np.concatenate([a, b])
    gap = np.searchsorted(a, points, side="right") / a.size
    gap -= np.searchsorted(b, points, side="right") / b.size
    return float(np.max(np.abs(gap)))


def _wasserstein_sd(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    """W1 between the samples, through their quantile functions on a common grid."""
    grid = np.concatenate([a, b])
    grid.sort()
    widths = np.diff(grid)
    cdf_a = np.searchsorted(a, grid[:-1], side="right") / a.size
    cdf_b = np.searchsorted(b, grid[:-1], side="right") / b.size
    distance = float(np.sum(np.abs(cdf_a - cdf_b) * widths))
    spread = float(np.std(a, ddof=1))
    if spread == 0.0:
        return 0.0 if distance == 0.0 else math.inf  # any move off a constant is total
    return distance / spread


def _psi(a: NDArray[np.float64], b: NDArray[np.float64], bins: int) -> float:
    edges = np.unique(np.quantile(a, np.linspace(0, 1, bins + 1)[1:-1]))
    expected = np.bincount(np.searchsorted(edges, a, side="right"), minlength=edges.size + 1)
    actual = np.bincount(np.searchsorted(edges, b, side="right"), minlength=edges.size + 1)
    p = np.maximum(expected / a.size, PSI_FLOOR)
    q = np.maximum(actual / b.size, PSI_FLOOR)
    return float(np.sum((q - p) * np.log(q / p)))

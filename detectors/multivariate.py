"""Drift of the joint distribution that no single feature shows, such as two features that
used to rise together and now move apart: PCA reconstruction error against the baseline.

The principal components are fitted on half of the baseline's rows. The other half gives the
reconstruction errors of normal data, against which the window's errors are compared (two-
sample KS): errors on the rows the fit saw would be too small and make every window look odd.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from detectors.continuous import ContinuousDrift, NotChecked, check_continuous

MIN_ROWS = 20


@dataclass(frozen=True)
class JointDrift:
    p_value: float
    ks_statistic: float
    error_shift_sd: float  # how far the window's errors moved, in baseline-error std devs
    components: int
    baseline_size: int
    current_size: int


def check_joint(
    baseline_rows: NDArray[np.float64], window_rows: NDArray[np.float64], *, explained: float = 0.9
) -> JointDrift | NotChecked:
    features = baseline_rows.shape[1]
    if features < 2:
        return NotChecked("the joint check needs at least 2 continuous features")
    if len(baseline_rows) < 2 * MIN_ROWS or len(window_rows) < MIN_ROWS:
        return NotChecked(
            f"too few rows (baseline {len(baseline_rows)}, window {len(window_rows)}) "
            f"for the joint check; it needs {2 * MIN_ROWS} and {MIN_ROWS}"
        )
    medians = np.nanmedian(baseline_rows, axis=0)
    medians = np.where(np.isnan(medians), 0.0, medians)
    fit, reference = _fill(baseline_rows[0::2], medians), _fill(baseline_rows[1::2], medians)
    window = _fill(window_rows, medians)
    centre = fit.mean(axis=0)
    spread = fit.std(axis=0)
    spread[spread == 0] = 1.0  # a constant feature carries no structure to lose
    _, singular, axes = np.linalg.svd((fit - centre) / spread, full_matrices=False)
    share = np.cumsum(singular**2) / max(float(np.sum(singular**2)), 1e-300)
    components = min(int(np.searchsorted(share, explained) + 1), features - 1)
    basis = axes[:components]

    def errors(rows: NDArray[np.float64]) -> NDArray[np.float64]:
        scaled = (rows - centre) / spread
        residual = scaled - scaled @ basis.T @ basis
        return np.asarray(np.sum(residual**2, axis=1))

    result = check_continuous(np.sort(errors(reference)), errors(window))
    assert isinstance(result, ContinuousDrift)  # both sides have MIN_ROWS rows, none missing
    return JointDrift(
        p_value=result.p_value,
        ks_statistic=result.ks_statistic,
        error_shift_sd=result.wasserstein_sd,
        components=components,
        baseline_size=len(baseline_rows),
        current_size=len(window_rows),
    )


def _fill(rows: NDArray[np.float64], medians: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.where(np.isnan(rows), medians, rows)

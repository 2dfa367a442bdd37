"""Drift of the joint distribution that no single feature shows, such as two features that
used to rise together and now move apart: PCA reconstruction error against the baseline.

The principal components are fitted on half of the baseline's rows. The other half gives the
reconstruction errors of normal data, against which the window's errors are compared (two-
sample KS): errors on the rows the fit saw would be too small and make every window look odd.
The fit is made once per baseline (``JointModel.fit``) and serves every window.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from driftline.detectors.continuous import ContinuousDrift, NotChecked, Reference

MIN_ROWS = 20
# Rows per block when computing errors: a block's temporaries (a few hundred kB) are reused
# from the heap, where whole-window ones (8 MB at 10k x 100) are fresh pages to fault in on
# every check, which cost more than the arithmetic.
BLOCK_ROWS = 1_024

Floats = NDArray[np.float64]


@dataclass(frozen=True)
class JointDrift:
    p_value: float
    ks_statistic: float
    error_shift_sd: float  # how far the window's errors moved, in baseline-error std devs
    components: int
    baseline_size: int
    current_size: int


@dataclass(frozen=True)
class JointModel:
    medians: Floats  # stand in for missing values
    centre: Floats
    spread: Floats
    basis: Floats  # the kept principal axes, one per row
    normal_errors: Reference
    baseline_size: int
    # The axes left out, when the fit found all of them: the error is the squared length of
    # the projection on these, one product with few axes instead of one with many.
    rest: Floats | None = None

    @classmethod
    def fit(cls, baseline_rows: Floats, *, explained: float = 0.9) -> JointModel | NotChecked:
        features = baseline_rows.shape[1]
        if features < 2:
            return NotChecked("the joint check needs at least 2 continuous features")
        if len(baseline_rows) < 2 * MIN_ROWS:
            return NotChecked(
                f"too few baseline rows ({len(baseline_rows)}) for the joint check; "
                f"it needs {2 * MIN_ROWS}"
            )
        medians = np.nanmedian(baseline_rows, axis=0)
        medians = np.where(np.isnan(medians), 0.0, medians)
        fit = np.where(np.isnan(baseline_rows[0::2]), medians, baseline_rows[0::2])
        centre = fit.mean(axis=0)
        spread = fit.std(axis=0)
        spread[spread == 0] = 1.0  # a constant feature carries no structure to lose
        _, singular, axes = np.linalg.svd((fit - centre) / spread, full_matrices=False)
        share = np.cumsum(singular**2) / max(float(np.sum(singular**2)), 1e-300)
        components = min(int(np.searchsorted(share, explained) + 1), features - 1)
        basis = axes[:components]
        rest = axes[components:] if len(axes) == features else None
        unscored = cls(medians, centre, spread, basis, Reference.of(np.zeros(0)), 0, rest)
        normal = Reference.of(np.sort(unscored.errors(baseline_rows[1::2])))
        return replace(unscored, normal_errors=normal, baseline_size=len(baseline_rows))

    def errors(self, rows: Floats) -> Floats:
        """Each row's reconstruction error, missing values taken as the baseline's medians."""
        fill = self.medians - self.centre
        blocks = (
            _block_errors(rows[start : start + BLOCK_ROWS] - self.centre, fill, self.spread,
                          self.basis, self.rest)
            for start in range(0, len(rows), BLOCK_ROWS)
        )  # fmt: skip
        return np.concatenate([*blocks, np.zeros(0)])

    def check(self, window_rows: Floats) -> JointDrift | NotChecked:
        if len(window_rows) < MIN_ROWS:
            return NotChecked(
                f"too few window rows ({len(window_rows)}) for the joint check; it needs {MIN_ROWS}"
            )
        result = self.normal_errors.compare(np.sort(self.errors(window_rows)))
        assert isinstance(result, ContinuousDrift)  # both sides have MIN_ROWS rows, none missing
        return JointDrift(
            p_value=result.p_value,
            ks_statistic=result.ks_statistic,
            error_shift_sd=result.wasserstein_sd,
            components=len(self.basis),
            baseline_size=self.baseline_size,
            current_size=len(window_rows),
        )


def check_joint(baseline_rows: Floats, window_rows: Floats) -> JointDrift | NotChecked:
    model = JointModel.fit(baseline_rows)
    return model if isinstance(model, NotChecked) else model.check(window_rows)


def _block_errors(
    rows: Floats, fill: Floats, spread: Floats, basis: Floats, rest: Floats | None
) -> Floats:
    """Squared distance of each scaled row from its projection on the kept axes (orthonormal,
    so it is the squared length lost in projecting: one matrix product, not two). With every
    axis known, that length is the squared projection on the axes left out, if fewer. ``rows``
    are already centred; ``fill`` is where a missing value goes (the median, centred)."""
    missing = np.isnan(rows)
    if missing.any():
        np.copyto(rows, np.broadcast_to(fill, rows.shape), where=missing)
    if rest is not None and len(rest) < len(basis):
        lost = rows @ (rest / spread).T  # the scaling folded into the axes: one pass fewer
        return np.asarray(np.einsum("ij,ij->i", lost, lost))
    rows /= spread
    projected = rows @ basis.T
    return np.asarray(
        np.einsum("ij,ij->i", rows, rows) - np.einsum("ij,ij->i", projected, projected)
    )

"""Drift of a continuous feature (or of confidence): is the current window's distribution
different from the baseline's, and by how much?

Significance is the two-sample Kolmogorov-Smirnov test; size is the Wasserstein distance in
baseline standard deviations. A verdict needs both (see ``driftline.detectors.verdict``), so
that a huge window does not alarm on a difference nobody cares about. Missing values (NaN) are
left out here: their rate is a feature of its own (``driftline.detectors.proportions``).

Everything that depends on the baseline alone is prepared once (``Reference``), so a check
costs the sort of the window, its merge with the baseline's values and a few linear passes.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.special import kolmogorov, ndtr, stdtr

Floats = NDArray[np.float64]
Indices = NDArray[np.int64]


@dataclass(frozen=True)
class ContinuousDrift:
    ks_statistic: float
    p_value: float
    wasserstein_sd: float  # distance between the distributions, in baseline std devs
    baseline_size: int
    current_size: int


@dataclass(frozen=True)
class MeanShift:
    t_statistic: float
    p_value: float
    shift_sd: float  # current mean minus baseline mean, in baseline std devs
    baseline_size: int
    current_size: int


@dataclass(frozen=True)
class NotChecked:
    """Why a check could not give a verdict (too little data, nothing but missing values)."""

    reason: str


@dataclass(frozen=True)
class Reference:
    """A baseline feature prepared for many checks: its sorted NaN-free values and its
    spread."""

    values: Floats
    mean: float
    spread: float

    @classmethod
    def of(cls, values_sorted: Floats) -> Reference:
        mean, variance = _mean_and_variance(values_sorted)
        return cls(values=values_sorted, mean=mean, spread=math.sqrt(variance))

    def compare(self, observed_sorted: Floats) -> ContinuousDrift | NotChecked:
        """Compare a sorted, NaN-free window with this baseline."""
        a, b = self.values, observed_sorted
        n, m = a.size, b.size
        if n < 2:
            return NotChecked(f"baseline has {n} values; at least 2 are needed")
        if m < 2:
            return NotChecked(f"window has {m} non-missing values; at least 2 are needed")
        statistic = self._ks_statistic(b)
        effective = n * m / (n + m)
        root = math.sqrt(effective)
        # Stephens' small-sample correction of the asymptotic distribution: within a few per
        # cent of the exact p-value from about ten values on, and a hundred times cheaper.
        p_value = float(kolmogorov((root + 0.12 + 0.11 / root) * statistic))
        return ContinuousDrift(
            ks_statistic=statistic,
            p_value=min(p_value, 1.0),
            wasserstein_sd=self._wasserstein_sd(b),
            baseline_size=n,
            current_size=m,
        )

    def mean_shift(self, observed: Floats) -> MeanShift | NotChecked:
        """Welch's t-test of the window's mean against the baseline's."""
        n, m = self.values.size, observed.size
        if n < 2 or m < 2:
            return NotChecked(f"too few values for a mean (baseline {n}, window {m})")
        mean, variance = _mean_and_variance(observed)
        shift = mean - self.mean
        share_a, share_b = self.spread**2 / n, variance / m
        if share_a + share_b == 0.0:  # both constant: equal, or entirely apart
            p_value, t = (1.0, 0.0) if shift == 0.0 else (0.0, math.inf)
        else:
            t = shift / math.sqrt(share_a + share_b)
            freedom = (share_a + share_b) ** 2 / (share_a**2 / (n - 1) + share_b**2 / (m - 1))
            p_value = float(2 * stdtr(freedom, -abs(t)))
        if self.spread == 0.0:
            size = 0.0 if shift == 0.0 else math.copysign(math.inf, shift)
        else:
            size = shift / self.spread
        return MeanShift(t, min(p_value, 1.0), size, n, m)

    def mean_shift_of_few(self, observed: Floats) -> MeanShift | NotChecked:
        """The window's mean against the baseline's, both sides given the baseline's spread:
        under no drift they share it, and a small window of a few tied values (a 1-to-5 rating,
        all 5s) has a spread of nearly nothing, which made Welch's test alarm on every such
        window. A z-test, for windows of at least a few dozen values."""
        n, m = self.values.size, observed.size
        if n < 2 or m < 2:
            return NotChecked(f"too few values for a mean (baseline {n}, window {m})")
        shift = float(observed.mean()) - self.mean
        if self.spread == 0.0:  # a constant baseline: equal, or apart
            p_value, z = (1.0, 0.0) if shift == 0.0 else (0.0, math.inf)
            size = 0.0 if shift == 0.0 else math.copysign(math.inf, shift)
        else:
            z = shift / (self.spread * math.sqrt(1 / n + 1 / m))
            p_value, size = float(2 * ndtr(-abs(z))), shift / self.spread
        return MeanShift(z, min(p_value, 1.0), size, n, m)

    def _ks_statistic(self, b: Floats) -> float:
        """The largest gap between the ECDFs. At each window value it is read directly; between
        two window values the window's ECDF is flat and the baseline's rises, so the gap there
        is largest just before the next window value. The counts come from merging the two
        sorted samples (a stable sort of both, which finds the two runs and merges them in
        linear time: half the cost of a binary search per window value); twice where the
        samples share values."""
        a = self.values
        n, m = a.size, b.size
        right = _merged_ranks(a, b, ties_first=True)  # baseline values <= each window value
        # a[right - 1] is the largest baseline value <= b (a[-1] when none is, never equal).
        shared = bool(np.any(a[right - 1] == b))
        left = _merged_ranks(a, b, ties_first=False) if shared else right  # < each one
        own = _counts_up_to(b)  # window values <= each window value
        # In integers (units of 1/(n m)), so that equal gaps compare equal.
        at_values = int(np.abs(right * m - own * n).max())
        before_values = max(int(left[0]) * m, int((left[1:] * m - own[:-1] * n).max(initial=0)))
        return max(at_values, before_values) / (n * m)

    def _wasserstein_sd(self, b: Floats) -> float:
        """W1 as the area between the two quantile functions, which are step functions with
        steps at i/n and j/m: exact, and linear once the (cached) step grid is known."""
        widths, index_a, index_b = _quantile_steps(self.values.size, b.size)
        distance = float(np.dot(widths, np.abs(self.values[index_a] - b[index_b])))
        if self.spread == 0.0:
            return 0.0 if distance == 0.0 else math.inf  # any move off a constant is total
        return distance / self.spread


def check_continuous(baseline_sorted: Floats, current: Floats) -> ContinuousDrift | NotChecked:
    """Compare the current window with the (sorted, NaN-free) baseline."""
    return Reference.of(baseline_sorted).compare(np.sort(current[~np.isnan(current)]))


def _mean_and_variance(values: Floats) -> tuple[float, float]:
    """Mean and sample variance; exact for a constant sample, where rounding would otherwise
    leave a spread of about 1e-16 to divide by."""
    if values.size == 0:
        return math.nan, 0.0
    if values.min() == values.max():
        return float(values[0]), 0.0
    return float(np.mean(values)), float(np.var(values, ddof=1))


def _merged_ranks(a: Floats, b: Floats, *, ties_first: bool) -> Indices:
    """For each value of sorted ``b``, how many values of sorted ``a`` are <= it
    (``ties_first``) or < it: ``np.searchsorted(a, b, side="right" or "left")``."""
    if ties_first:  # a stable sort keeps a's equal values before b's
        order = np.argsort(np.concatenate([a, b]), kind="stable")
        positions = np.flatnonzero(order >= a.size)
    else:  # and b's before a's
        order = np.argsort(np.concatenate([b, a]), kind="stable")
        positions = np.flatnonzero(order < b.size)
    ranks: Indices = positions - _one_to(b.size) + 1
    return ranks


def _counts_up_to(values_sorted: Floats) -> Indices:
    """For each value of a sorted sample, how many of its values are <= it (ties count)."""
    size = values_sorted.size
    repeats = values_sorted[1:] == values_sorted[:-1]
    if not repeats.any():
        return _one_to(size)
    run_ends = np.append(np.flatnonzero(~repeats) + 1, size)
    return np.repeat(run_ends, np.diff(run_ends, prepend=0))


@functools.lru_cache(maxsize=32)
def _one_to(size: int) -> Indices:
    return np.arange(1, size + 1)


@functools.lru_cache(maxsize=32)
def _quantile_steps(n: int, m: int) -> tuple[Floats, Indices, Indices]:
    """The intervals of u on which both quantile functions are constant, as integer steps in
    units of 1/(n m) so that no rounding merges or splits them; and the index of each
    sample's order statistic on each interval."""
    ends = np.union1d(np.arange(1, n + 1, dtype=np.int64) * m, np.arange(1, m + 1) * n)
    widths = np.diff(ends, prepend=0) / (n * m)
    return widths, (ends + m - 1) // m - 1, (ends + n - 1) // n - 1

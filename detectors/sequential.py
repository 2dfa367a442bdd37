"""A sequential check beside the windowed one: it sees each decision as it arrives, so a large
shift is seen within tens of decisions instead of at the next full window.

Per continuous feature (confidence among them), each value becomes its normal score against the
baseline: its mid-rank among the baseline's values, through the normal quantile function. Under
no drift the scores are close to standard normal whatever the feature's shape (ties and the
baseline's edges only shrink them, which makes the check more cautious), and an outlier counts
no more than a value past the baseline's extreme. A two-sided CUSUM (Page 1954) of the scores
with reference value ``k`` (half the shift it is tuned to: 0.5 sd) alarms when either side
reaches ``h``.

``h`` is set for a stated average run length between false alarms (ARL) by Siegmund's
approximation, ARL(h) = (exp(2kb) - 2kb - 1) / 2k^2 with b = h + 1.166, for one side; the two
sides and the features share the budget (each feature gets ``features`` times the version's
ARL, each side twice that), so a version raises falsely about once per ``arl`` decisions in
all. The baseline's own sampling error is allowed for: its n values leave the scores' mean off
by about 1 / sqrt(n), which acts as a small shift, and averaged over baselines it multiplies
the false-alarm rate by exp(2 b^2 / n) (the normal's moment-generating function). ``h`` is set
so that the stated ARL holds with that factor: a little higher for a baseline of 10,000
values (23.9 instead of 23.7 at the default, one feature), much higher for a few hundred, and
a feature whose baseline is too small for the ARL at any ``h`` (under 400 values at the
default; 494 with 20 features) gets no sequential verdict: the window check is its check. A
side's statistic is capped at twice ``h``, so that once a shift ends the alarm stops within
about ``h / k`` decisions instead of however long the shift lasted.

Its verdicts are ``cusum`` checks: the statistic is the highest either side reached over the
decisions just taken (or, for decisions replayed to rebuild the state, where it ended), the
p-value how many false crossings of that height those decisions would make on average (so
about ``1 / ARL`` a decision at ``h``; adjusted for the features), and the effect the mean
normal score of those decisions, in standard deviations.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import brentq
from scipy.special import ndtri

from driftline.detectors.baseline import Baseline
from driftline.detectors.table import columns_of, numbers
from driftline.detectors.verdict import FeatureVerdict

K = 0.25  # reference value: half the shift, in standard deviations, the check is tuned to
ARL = 1_000_000  # decisions between false alarms of a version, all its features together
SIEGMUND = 1.166


def arl_of(h: float, k: float = K) -> float:
    """The one-sided CUSUM's average run length under no drift (Siegmund)."""
    return math.exp(_log_arl(h, k))


def _log_arl(h: float, k: float, reference: int | None = None) -> float:
    """The log of ``arl_of``, less the baseline's error for ``reference`` values."""
    x = 2 * k * (h + SIEGMUND)
    core = x + math.log1p(-(x + 1) * math.exp(-x)) if x > 30 else math.log(math.expm1(x) - x)
    error = 2 * (h + SIEGMUND) ** 2 / reference if reference else 0.0
    return core - math.log(2 * k * k) - error


@lru_cache(maxsize=1024)
def threshold(arl: float, features: int = 1, k: float = K, reference: int | None = None) -> float:
    """``h`` for which the two-sided check of ``features`` features, each against a baseline of
    ``reference`` values (None: exact), raises falsely once per ``arl`` decisions on average;
    infinite when no ``h`` can (too small a baseline)."""
    target = math.log(2 * arl * max(features, 1))
    # Less the error term, the log ARL rises, then falls past b = k n / 2: the root is before.
    top = 500.0 if reference is None else max(k * reference / 2 - SIEGMUND, 0.0)
    if top <= 0.0 or _log_arl(top, k, reference) < target:
        return math.inf
    if _log_arl(0.0, k, reference) >= target:  # a run length shorter than any h gives
        return 0.0
    return float(brentq(lambda h: _log_arl(h, k, reference) - target, 0.0, top))


@dataclass
class StreamCheck:
    """The CUSUM state of a baseline's continuous features; ``update`` takes new decisions in
    the order they were made."""

    baseline: Baseline
    arl: float = ARL
    k: float = K
    upper: dict[str, float] = field(default_factory=dict)
    lower: dict[str, float] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)

    def h(self, name: str) -> float:
        """The feature's threshold, for its number of baseline values."""
        reference = self.baseline.sorted_columns[name].size
        return threshold(self.arl, len(self.baseline.continuous), self.k, reference)

    def scores(self, name: str, values: NDArray[np.float64]) -> NDArray[np.float64]:
        """Normal scores of present values against the baseline's (NaN left out)."""
        reference = self.baseline.sorted_columns[name]
        present = values[~np.isnan(values)]
        below = np.searchsorted(reference, present, side="left")
        through = np.searchsorted(reference, present, side="right")
        result: NDArray[np.float64] = ndtri((below + through + 1) / (2 * (reference.size + 1)))
        return result

    def update(
        self, window: Mapping[str, Any] | Any, *, replay: bool = False
    ) -> list[FeatureVerdict]:
        """Take new decisions (a DataFrame or mapping of columns, oldest first): a verdict per
        continuous feature with a baseline large enough and a value among them. ``replay``:
        decisions taken again to rebuild the state (after a restart), judged by where the
        statistic ends, so that a crossing already over is not raised again."""
        columns = columns_of(window, self.baseline.continuous)
        features = len(self.baseline.continuous)
        verdicts = []
        for name in self.baseline.continuous:
            reference = self.baseline.sorted_columns[name].size
            h = self.h(name)
            if reference == 0 or math.isinf(h):
                continue
            z = self.scores(name, numbers(columns[name]))
            if z.size == 0:
                continue
            up, down = self.upper.get(name, 0.0), self.lower.get(name, 0.0)
            top_up = top_down = 0.0
            cap = 2 * h
            for value in z.tolist():  # Page's recursion, one decision at a time
                up = min(cap, max(0.0, up + value - self.k))
                down = min(cap, max(0.0, down - value - self.k))
                top_up, top_down = max(top_up, up), max(top_down, down)
            self.upper[name], self.lower[name] = up, down
            self.seen[name] = self.seen.get(name, 0) + z.size
            top = max(up, down) if replay else max(top_up, top_down)
            # Two sides, each at the run length the threshold was set by for this baseline.
            p_value = min(1.0, z.size * 2 * math.exp(-_log_arl(top, self.k, reference)))
            verdicts.append(
                FeatureVerdict(
                    feature=name,
                    test="cusum",
                    statistic=top,
                    p_value=p_value,
                    adjusted_p=min(1.0, p_value * features),
                    effect_name="mean_score_sd",
                    effect=float(z.mean()),
                    drifted=top >= h,
                    baseline_size=reference,
                    current_size=int(z.size),
                )
            )
        return verdicts

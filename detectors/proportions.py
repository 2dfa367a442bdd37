"""Drift of a rate: the share of missing values of a feature, or of decisions that broke their
data contract, or of decisions under the human-review threshold, or of a boolean score.

The two-proportion z-test, or Fisher's exact test where a cell's expected count is under
SMALL_EXPECTED: the z-test alarmed at about twice its rate on a 1% rate in windows of 30."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr
from scipy.stats import fisher_exact

from driftline.detectors.continuous import NotChecked

SMALL_EXPECTED = 5.0


@dataclass(frozen=True)
class RateDrift:
    baseline_rate: float
    current_rate: float
    difference: float  # current minus baseline, the effect size
    p_value: float


def check_rate(
    baseline_hits: int, baseline_size: int, current_hits: int, current_size: int
) -> RateDrift | NotChecked:
    if baseline_size == 0 or current_size == 0:
        return NotChecked(
            f"no decisions to compare (baseline {baseline_size}, window {current_size})"
        )
    p1, p2 = baseline_hits / baseline_size, current_hits / current_size
    pooled = (baseline_hits + current_hits) / (baseline_size + current_size)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / baseline_size + 1 / current_size))
    smallest = min(baseline_size, current_size) * min(pooled, 1 - pooled)
    if 0.0 < smallest < SMALL_EXPECTED:
        table = np.array(
            [
                [baseline_hits, baseline_size - baseline_hits],
                [current_hits, current_size - current_hits],
            ]
        )
        p_value = float(fisher_exact(table).pvalue)
    elif spread == 0.0:  # both all-or-nothing and the same: no evidence of change
        p_value = 1.0 if p1 == p2 else 0.0
    else:
        p_value = float(2 * ndtr(-abs(p2 - p1) / spread))
    return RateDrift(p1, p2, p2 - p1, p_value)

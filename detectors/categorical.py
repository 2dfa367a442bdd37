"""Drift of a categorical feature: the G-test (log-likelihood chi-square) of homogeneity on the
2 x K table of baseline and window counts, with the Jensen-Shannon distance as the effect size.

Categories the baseline never saw are kept: they are what drift often looks like. Categories
too rare in both samples for the test's approximation (fewer than ``min_count`` together) are
pooled into one, so a long tail neither hides a shift nor fakes one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency

from driftline.detectors.continuous import NotChecked


@dataclass(frozen=True)
class CategoricalDrift:
    g_statistic: float
    p_value: float
    js_distance: float  # 0 (same) to 1 (disjoint), base 2
    unseen: tuple[str, ...]  # categories in the window the baseline never had
    baseline_size: int
    current_size: int


def check_categorical(
    baseline: Mapping[str, int], current: Mapping[str, int], *, min_count: int = 5
) -> CategoricalDrift | NotChecked:
    """Compare category counts of the window with those of the baseline."""
    n, m = sum(baseline.values()), sum(current.values())
    if n == 0 or m == 0:
        return NotChecked(f"no values to compare (baseline {n}, window {m})")
    categories = sorted(set(baseline) | set(current))
    kept = [c for c in categories if baseline.get(c, 0) + current.get(c, 0) >= min_count]
    pooled = [c for c in categories if c not in kept]
    rows = np.array([_counts(baseline, kept, pooled), _counts(current, kept, pooled)], dtype=float)
    rows = rows[:, rows.sum(axis=0) > 0]
    unseen = tuple(c for c in categories if baseline.get(c, 0) == 0 and current.get(c, 0) > 0)
    js = float(jensenshannon(rows[0] / n, rows[1] / m, base=2))
    if rows.shape[1] < 2:  # one category on both sides: nothing can differ
        return CategoricalDrift(0.0, 1.0, js, unseen, n, m)
    g, p_value, _, _ = chi2_contingency(rows, lambda_="log-likelihood", correction=False)
    return CategoricalDrift(float(g), float(p_value), js, unseen, n, m)


def _counts(counts: Mapping[str, int], kept: list[str], pooled: list[str]) -> list[int]:
    row = [counts.get(c, 0) for c in kept]
    return [*row, sum(counts.get(c, 0) for c in pooled)] if pooled else row

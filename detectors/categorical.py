"""Drift of a categorical feature: Pearson's chi-square test of homogeneity on the 2 x K table
of baseline and window counts, with Cohen's w between the two distributions, corrected for
bias, as the effect size.

The table's columns are every category of either side, those the baseline never had among
them (and named), each on its own: only then is the test exact in its assumptions, since under
no drift the split of each category's total between the two sides says nothing of which side
saw it first. (Pooling the window's new categories into one cell would compare them with a
baseline count that is zero by construction, and alarm on every long tail.) A baseline
recorded before this check, whose cap pooled its tail into "(other)", is not checked: its
kept categories are biased high (they were kept for being frequent in its own sample), and
any window alarms against them. Cells too sparse for
the chi-square approximation (an expected count under 5 on either side) are merged, in order
of their total count (which says nothing about the difference under no drift, so the merging
cannot fake one), until every cell has enough. Pearson's statistic, not the G-test's: on sparse
tables the G-test alarms many times its rate (43 of 100 null splits at 2,000 categories,
against 0).

Cohen's w is sqrt(sum (p - q)^2 / t) over the cells, p and q the two sides' shares and t the
pooled one; the statistic is nm/N times its square, so w^2 = (chi2 - (K - 1)) N / nm removes
the value the statistic has under no drift. Its null distribution so centres on 0 at any
number of categories, and, unlike Cramér's V, it does not depend on how the two sides' sizes
compare: a floor means the same for 4 categories as for 900 and for a window of 1,000 as of
20,000 (the Jensen-Shannon distance of a null split grows with K).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.special import chdtrc

from driftline.detectors.continuous import NotChecked

OTHER = "(other)"  # the pooled tail of an older, capped baseline
MIN_EXPECTED = 5.0
NAMED_UNSEEN = 20  # unseen categories named in a verdict, most frequent first


@dataclass(frozen=True)
class CategoricalDrift:
    chi_square: float
    p_value: float
    cohens_w: float  # 0 (same) upward; 0.1 small, 0.3 medium, 0.5 large (Cohen), bias-corrected
    cells: int  # cells of the table after pooling
    unseen: tuple[str, ...]  # the most frequent window categories the baseline never had
    unseen_count: int  # window values in categories the baseline never had
    baseline_size: int
    current_size: int


def check_categorical(
    baseline: Mapping[str, int], current: Mapping[str, int], *, pooled_tail: bool = False
) -> CategoricalDrift | NotChecked:
    """Compare category counts of the window with those of the baseline; ``pooled_tail``: the
    baseline is an older one, whose "(other)" is its capped tail (else it is a category)."""
    n, m = sum(baseline.values()), sum(current.values())
    if n == 0 or m == 0:
        return NotChecked(f"no values to compare (baseline {n}, window {m})")
    if pooled_tail and OTHER in baseline:
        # Its cap kept the categories its own sample made most frequent, so those just above
        # the cut were counted high by chance and fall back in any window: 185 of 200 null
        # windows alarmed. Nothing in the record can undo that.
        return NotChecked(f"the baseline pooled its tail into {OTHER!r}: fit it again")
    new = {c: count for c, count in current.items() if c not in baseline and count > 0}
    named = sorted(new, key=lambda c: (-new[c], c))[:NAMED_UNSEEN]
    table = {c: [count, current.get(c, 0)] for c, count in baseline.items()}
    table |= {c: [0, count] for c, count in new.items()}
    # In the order of the names: an order that put the baseline's categories first would merge
    # sparse cells seen on one side with each other, and fake a difference.
    ordered = [table[c] for c in sorted(table)]
    cells = _pooled(np.array(ordered, dtype=float).T, n, m)
    unseen_count = sum(new.values())
    if cells.shape[1] < 2:  # everything in one cell: nothing can differ
        return CategoricalDrift(0.0, 1.0, 0.0, 1, tuple(named), unseen_count, n, m)
    total = n + m
    expected = np.outer([n, m], cells.sum(axis=0)) / total
    statistic = float(((cells - expected) ** 2 / expected).sum())
    k = cells.shape[1]
    p_value = float(chdtrc(k - 1, statistic))
    w = math.sqrt(max(0.0, statistic - (k - 1)) * total / (n * m))
    return CategoricalDrift(statistic, p_value, w, k, tuple(named), unseen_count, n, m)


def _pooled(rows: np.ndarray, n: int, m: int) -> np.ndarray:
    """Merge sparse columns, smallest totals first (ties in the order given), until each has an
    expected count of at least ``MIN_EXPECTED`` in both rows; a last short group joins the
    group before it."""
    totals = rows.sum(axis=0)
    rows, totals = rows[:, totals > 0], totals[totals > 0]
    enough = MIN_EXPECTED * (n + m) / min(n, m)
    dense = totals >= enough
    if dense.all():
        return rows
    sparse = rows[:, ~dense][:, np.argsort(totals[~dense], kind="stable")]
    groups: list[np.ndarray] = []
    running = np.zeros(2)
    for column in sparse.T:
        running = running + column
        if running.sum() >= enough:
            groups.append(running)
            running = np.zeros(2)
    if running.sum() > 0:
        if groups:
            groups[-1] = groups[-1] + running
        elif dense.any():  # too little in all the sparse cells together: join the smallest
            kept = rows[:, dense]
            smallest = int(np.argmin(kept.sum(axis=0)))
            kept[:, smallest] += running
            return kept
        else:
            groups.append(running)
    return np.column_stack([rows[:, dense], *groups])

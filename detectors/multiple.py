"""Checking many features at once without many false alarms: p-values adjusted across the
features of one check, so that the false-alarm rate per check is the configured one."""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray

Correction = Literal["benjamini-hochberg", "bonferroni"]


def adjust(p_values: NDArray[np.float64], method: Correction) -> NDArray[np.float64]:
    """Adjusted p-values: compare each with the per-check rate (default 1%)."""
    m = p_values.size
    if m == 0:
        return p_values.copy()
    if method == "bonferroni":
        return np.minimum(p_values * m, 1.0)
    order = np.argsort(p_values)
    scaled = p_values[order] * m / np.arange(1, m + 1)
    monotone = np.minimum.accumulate(scaled[::-1])[::-1]  # step-up: never above a larger p
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(monotone, 1.0)
    return adjusted

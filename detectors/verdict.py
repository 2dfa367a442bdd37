"""One full check of a window against a baseline: every feature, its missing-value rate, the
confidence (its distribution and the share under the human-review threshold) and the joint
distribution, with p-values adjusted together so that the false-alarm rate per check is the
configured one. A feature drifts when its difference is both significant and large enough to
matter (``min_effect``, per feature or per effect measure).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from detectors.baseline import Baseline
from detectors.categorical import CategoricalDrift, check_categorical
from detectors.continuous import ContinuousDrift, NotChecked, check_continuous
from detectors.multiple import Correction, adjust
from detectors.multivariate import JointDrift, check_joint
from detectors.proportions import RateDrift, check_rate

CONFIDENCE = "confidence"
JOINT = "(joint)"
DEFAULT_MIN_EFFECT = {
    "wasserstein_sd": 0.1,
    "js_distance": 0.05,
    "rate_difference": 0.02,
    "error_shift_sd": 0.1,
}


@dataclass(frozen=True)
class FeatureVerdict:
    feature: str
    test: str  # "ks", "g-test", "missing-rate", "flag-rate", "review-share", "pca-reconstruction"
    statistic: float
    p_value: float
    adjusted_p: float
    effect_name: str
    effect: float
    drifted: bool
    baseline_size: int
    current_size: int


@dataclass(frozen=True)
class Unchecked:
    feature: str
    test: str
    reason: str


@dataclass(frozen=True)
class _Result:
    feature: str
    test: str
    statistic: float
    p_value: float
    effect_name: str
    effect: float
    baseline_size: int
    current_size: int


def check_window(
    baseline: Baseline,
    window: Mapping[str, Sequence[Any] | NDArray[Any]],
    *,
    rate: float = 0.01,
    correction: Correction = "benjamini-hochberg",
    min_effect: Mapping[str, float] | None = None,
    review_threshold: float | None = None,
) -> list[FeatureVerdict | Unchecked]:
    """Verdicts for every check; ``min_effect`` maps a feature or an effect name to a floor.

    The window holds one column per baseline feature; ``review_threshold`` defaults to the
    baseline's own."""
    if review_threshold is None:
        review_threshold = baseline.review_threshold
    results: list[_Result | Unchecked] = []
    columns = {
        name: np.array([np.nan if v is None else v for v in window[name]], dtype=float)
        for name in baseline.continuous
    }
    size = len(next(iter(window.values()))) if window else 0
    for name in baseline.continuous:
        column = columns[name]
        results.append(_continuous(name, check_continuous(baseline.sorted_columns[name], column)))
        missing = int(np.isnan(column).sum())
        results.append(
            _rate(name, "missing-rate", baseline.missing[name], baseline.size, missing, size)
        )
    for name, counts in baseline.categorical.items():
        values = list(window[name])
        seen = Counter(str(v) for v in values if v is not None)
        results.append(_categorical(name, check_categorical(counts, seen)))
        missing = sum(v is None for v in values)
        results.append(
            _rate(name, "missing-rate", baseline.missing[name], baseline.size, missing, size)
        )
    for name, flagged in baseline.flags.items():
        hits = sum(bool(value) for value in window[name])
        results.append(_rate(name, "flag-rate", flagged, baseline.size, hits, size))
    if review_threshold is not None and CONFIDENCE in columns:
        before = baseline.sorted_columns[CONFIDENCE]
        now = columns[CONFIDENCE][~np.isnan(columns[CONFIDENCE])]
        under_before = int(np.searchsorted(before, review_threshold, side="left"))
        under_now = int(np.sum(now < review_threshold))
        check = check_rate(under_before, before.size, under_now, now.size)
        results.append(_rate_result(CONFIDENCE, "review-share", check, before.size, now.size))
    window_rows = np.column_stack([columns[n] for n in baseline.continuous]) if columns else None
    if window_rows is not None:
        results.append(_joint(check_joint(baseline.rows, window_rows)))
    return _decide(results, rate, correction, {**DEFAULT_MIN_EFFECT, **(min_effect or {})})


def _decide(
    results: list[_Result | Unchecked],
    rate: float,
    correction: Correction,
    floors: Mapping[str, float],
) -> list[FeatureVerdict | Unchecked]:
    checked = [r for r in results if isinstance(r, _Result)]
    adjusted = adjust(np.array([r.p_value for r in checked]), correction)
    verdicts = []
    for result, p in zip(checked, adjusted, strict=True):
        floor = floors.get(result.feature, floors.get(result.effect_name, 0.0))
        verdicts.append(
            FeatureVerdict(
                feature=result.feature,
                test=result.test,
                statistic=result.statistic,
                p_value=result.p_value,
                adjusted_p=float(p),
                effect_name=result.effect_name,
                effect=result.effect,
                drifted=bool(p < rate and abs(result.effect) >= floor),
                baseline_size=result.baseline_size,
                current_size=result.current_size,
            )
        )
    in_order = iter(verdicts)
    return [next(in_order) if isinstance(r, _Result) else r for r in results]


def _continuous(name: str, check: ContinuousDrift | NotChecked) -> _Result | Unchecked:
    if isinstance(check, NotChecked):
        return Unchecked(name, "ks", check.reason)
    return _Result(
        name, "ks", check.ks_statistic, check.p_value, "wasserstein_sd", check.wasserstein_sd,
        check.baseline_size, check.current_size,
    )  # fmt: skip


def _categorical(name: str, check: CategoricalDrift | NotChecked) -> _Result | Unchecked:
    if isinstance(check, NotChecked):
        return Unchecked(name, "g-test", check.reason)
    return _Result(
        name, "g-test", check.g_statistic, check.p_value, "js_distance", check.js_distance,
        check.baseline_size, check.current_size,
    )  # fmt: skip


def _rate(
    name: str, test: str, baseline_hits: int, baseline_size: int, hits: int, size: int
) -> _Result | Unchecked:
    check = check_rate(baseline_hits, baseline_size, hits, size)
    return _rate_result(name, test, check, baseline_size, size)


def _rate_result(
    name: str, test: str, check: RateDrift | NotChecked, baseline_size: int, size: int
) -> _Result | Unchecked:
    if isinstance(check, NotChecked):
        return Unchecked(name, test, check.reason)
    return _Result(
        name, test, check.difference, check.p_value, "rate_difference", check.difference,
        baseline_size, size,
    )  # fmt: skip


def _joint(check: JointDrift | NotChecked) -> _Result | Unchecked:
    if isinstance(check, NotChecked):
        return Unchecked(JOINT, "pca-reconstruction", check.reason)
    return _Result(
        JOINT, "pca-reconstruction", check.ks_statistic, check.p_value, "error_shift_sd",
        check.error_shift_sd, check.baseline_size, check.current_size,
    )  # fmt: skip

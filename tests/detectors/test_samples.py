"""Samples a baseline does not hold (named scores, which arrive after their decisions), checked
in the window's correction: each side of at least MIN_SAMPLE values, calibrated on the small,
tied windows scores come in (ratings of 1 to 5, rare flags), and a rate of rare events by an
exact test."""

from collections.abc import Callable

import numpy as np
import pytest

from driftline.detectors.baseline import fit_baseline
from driftline.detectors.proportions import check_rate
from driftline.detectors.verdict import MIN_SAMPLE, FeatureVerdict, Unchecked, check_window

RATE = 0.01
BASELINE = fit_baseline({"x": list(np.random.default_rng(0).normal(size=500))})


def _alarms(draw: Callable[[np.random.Generator, int], list[float | bool]], window: int) -> float:
    rng = np.random.default_rng(window)
    alarms = 0
    for _ in range(500):
        verdicts = check_window(
            BASELINE, {"x": list(rng.normal(size=200))}, rate=RATE,
            samples={"score:s": (draw(rng, 500), draw(rng, window))},
        )  # fmt: skip
        alarms += any(
            isinstance(v, FeatureVerdict) and v.drifted and v.feature == "score:s" for v in verdicts
        )
    return alarms / 500


def _rating(rng: np.random.Generator, size: int) -> list[float | bool]:
    return list(rng.choice([4.0, 5.0], size=size, p=[0.1, 0.9]))


def _rare_flag(rng: np.random.Generator, size: int) -> list[float | bool]:
    return [bool(hit) for hit in rng.random(size) < 0.01]


@pytest.mark.parametrize("draw", [_rating, _rare_flag], ids=["rating", "rare flag"])
@pytest.mark.parametrize("window", [MIN_SAMPLE, 100])
def test_scores_of_one_distribution_alarm_within_the_rate(
    draw: Callable[[np.random.Generator, int], list[float | bool]], window: int
) -> None:
    """Welch's test gave 35% on thirty ratings (ten 5s have no spread) and the z-test 2.3% on a
    1% flag; at most 2.4% is what a true 1% gives in 500 checks 99% of the time."""
    assert _alarms(draw, window) <= 0.024


def test_a_handful_of_scores_is_no_verdict_but_says_why() -> None:
    verdicts = check_window(
        BASELINE, {"x": [0.0] * 50}, samples={"score:s": ([5.0] * 500, [5.0] * 9)}
    )
    (unchecked,) = [v for v in verdicts if v.feature == "score:s"]
    assert (
        isinstance(unchecked, Unchecked) and "too few values (then 500, now 9)" in unchecked.reason
    )


def test_a_shifted_score_is_found() -> None:
    rng = np.random.default_rng(3)
    verdicts = check_window(
        BASELINE, {"x": list(rng.normal(size=200))},
        samples={"score:s": (list(rng.uniform(0.7, 1, 500)), list(rng.uniform(0.4, 0.9, 60)))},
    )  # fmt: skip
    found = {v.test for v in verdicts if isinstance(v, FeatureVerdict) and v.drifted}
    assert {"ks", "mean-shift"} <= found


def test_a_rate_of_rare_events_is_tested_exactly() -> None:
    """One hit in thirty against 1%: the z-test said p = 0.008, Fisher's exact test does not."""
    exact = check_rate(5, 500, 1, 30)
    assert not isinstance(exact, Unchecked) and exact.p_value > 0.2
    assert check_rate(0, 500, 10, 30).p_value < 1e-6  # a real change still is one

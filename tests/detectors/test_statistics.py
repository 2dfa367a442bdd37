"""The drift statistics: under no drift, alarms stay within the configured rate per check; shifts
of known size are found with the right effect size; degenerate data gives a verdict or a
reason, never an exception."""

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.stats import binom, false_discovery_control, ttest_ind, wasserstein_distance

from driftline.detectors.categorical import CategoricalDrift, check_categorical
from driftline.detectors.continuous import (
    ContinuousDrift,
    MeanShift,
    NotChecked,
    Reference,
    check_continuous,
)
from driftline.detectors.multiple import adjust
from driftline.detectors.proportions import RateDrift, check_rate

RATE = 0.01  # the configured false-alarm rate per check


def draw(rng: np.random.Generator, shape: str, size: int) -> Any:
    if shape == "normal":
        return rng.normal(3.0, 2.0, size)
    if shape == "exponential":
        return rng.exponential(1.5, size)
    if shape == "lognormal":
        return rng.lognormal(0.0, 1.0, size)
    if shape == "uniform":
        return rng.uniform(-1.0, 1.0, size)
    return rng.integers(0, 20, size).astype(float)  # "discrete": many ties


def alarms(rng: np.random.Generator, shape: str, n: int, m: int, features: int) -> bool:
    """One full check of unshifted features: does any feature alarm after correction?"""
    p_values = []
    for _ in range(features):
        result = check_continuous(np.sort(draw(rng, shape, n)), draw(rng, shape, m))
        assert isinstance(result, ContinuousDrift)
        p_values.append(result.p_value)
    return bool(np.any(adjust(np.array(p_values), "benjamini-hochberg") < RATE))


# Bounds on chance events (alarms without drift) hold for all but a small share of seeds;
# the same examples every run keep the suite from failing on that share.
@settings(max_examples=15, deadline=None, derandomize=True)
@given(
    shape=st.sampled_from(["normal", "exponential", "lognormal", "uniform", "discrete"]),
    n=st.integers(200, 3_000),
    m=st.integers(100, 2_000),
    features=st.integers(1, 12),
    seed=st.integers(0, 2**32 - 1),
)
def test_without_drift_alarms_stay_within_the_rate(
    shape: str, n: int, m: int, features: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    checks = 200
    alarmed = sum(alarms(rng, shape, n, m, features) for _ in range(checks))
    # At a 1% rate, 7 or more alarms in 200 checks has probability below 0.5%.
    assert alarmed <= 6, f"{alarmed} of {checks} unshifted checks alarmed"


def test_the_false_alarm_rate_over_many_checks_is_near_the_configured_one() -> None:
    rng = np.random.default_rng(7)
    share = np.mean([alarms(rng, "normal", 2_000, 1_000, 10) for _ in range(1_000)])
    assert share <= RATE + 0.005


@settings(max_examples=25, deadline=None)
@given(shift_sd=st.floats(0.2, 2.0), scale=st.floats(0.01, 1_000), seed=st.integers(0, 2**32 - 1))
def test_a_known_shift_is_found_with_its_size(shift_sd: float, scale: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    baseline = np.sort(rng.normal(0.0, scale, 5_000))
    current = rng.normal(shift_sd * scale, scale, 5_000)
    result = check_continuous(baseline, current)
    assert isinstance(result, ContinuousDrift)
    assert result.p_value < 1e-6
    exact = wasserstein_distance(baseline, current) / np.std(baseline, ddof=1)
    assert result.wasserstein_sd == pytest.approx(exact, rel=1e-3)
    assert result.wasserstein_sd == pytest.approx(shift_sd, abs=0.1)  # sampling: about 4 sd


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(np.float64, st.integers(0, 50), elements=st.floats(allow_infinity=False, width=32)),
    hnp.arrays(np.float64, st.integers(0, 50), elements=st.floats(allow_infinity=False, width=32)),
)
def test_any_data_gives_a_verdict_or_a_reason(baseline: Any, current: Any) -> None:
    clean = np.sort(baseline[~np.isnan(baseline)])
    result = check_continuous(clean, current)
    if isinstance(result, NotChecked):
        assert "at least 2" in result.reason
    else:
        assert 0.0 <= result.p_value <= 1.0
        assert result.wasserstein_sd >= 0.0


def test_constant_columns_and_all_missing_windows() -> None:
    constant = np.sort(np.full(100, 4.0))
    same = check_continuous(constant, np.full(50, 4.0))
    moved = check_continuous(constant, np.full(50, 5.0))
    missing = check_continuous(constant, np.full(50, np.nan))
    assert isinstance(same, ContinuousDrift) and same.p_value == 1.0 and same.wasserstein_sd == 0
    assert isinstance(moved, ContinuousDrift) and moved.wasserstein_sd == float("inf")
    assert isinstance(missing, NotChecked)


@settings(max_examples=15, deadline=None, derandomize=True)
@given(
    weights=st.lists(st.floats(0.01, 1.0), min_size=2, max_size=15),
    seed=st.integers(0, 2**32 - 1),
)
def test_categories_without_drift_rarely_alarm(weights: list[float], seed: int) -> None:
    rng = np.random.default_rng(seed)
    probabilities = np.array(weights) / sum(weights)
    names = [f"c{i}" for i in range(len(weights))]
    alarmed = 0
    for _ in range(200):
        before = dict(zip(names, rng.multinomial(2_000, probabilities), strict=True))
        after = dict(zip(names, rng.multinomial(1_000, probabilities), strict=True))
        result = check_categorical(before, after)
        assert isinstance(result, CategoricalDrift)
        alarmed += result.p_value < RATE
    # Under the configured rate, more alarms than this happen once in 10,000 runs.
    assert alarmed <= binom.isf(1e-4, 200, RATE)


def test_a_new_category_is_drift_and_is_named() -> None:
    result = check_categorical(
        {"north": 500, "south": 500}, {"north": 400, "south": 400, "moon": 200}
    )
    assert isinstance(result, CategoricalDrift)
    assert result.p_value < 1e-10
    assert result.unseen == ("moon",)
    assert 0.5 < result.cohens_w < 0.8  # sqrt(0.44): shares 0.5/0.5/0 against 0.4/0.4/0.2


def test_degenerate_categories_give_a_verdict_or_a_reason() -> None:
    assert isinstance(check_categorical({}, {"a": 3}), NotChecked)
    single = check_categorical({"a": 10}, {"a": 7})
    assert isinstance(single, CategoricalDrift) and single.p_value == 1.0
    rare = check_categorical({"a": 100, "b": 1}, {"a": 100, "c": 1})  # b and c pooled
    assert isinstance(rare, CategoricalDrift) and rare.unseen == ("c",) and rare.p_value > 0.5


@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=40))
def test_benjamini_hochberg_matches_scipy_and_bonferroni_caps(p_values: list[float]) -> None:
    raw = np.array(p_values)
    assert np.allclose(adjust(raw, "benjamini-hochberg"), false_discovery_control(raw))
    assert np.array_equal(adjust(raw, "bonferroni"), np.minimum(raw * raw.size, 1.0))


def test_rates_missing_values_and_contract_violations() -> None:
    same = check_rate(10, 1_000, 10, 1_000)
    doubled = check_rate(20, 2_000, 60, 2_000)
    assert isinstance(same, RateDrift) and same.p_value == pytest.approx(1.0)
    assert isinstance(doubled, RateDrift) and doubled.p_value < 1e-5
    assert doubled.difference == pytest.approx(0.02)
    assert check_rate(0, 50, 0, 50) == RateDrift(0.0, 0.0, 0.0, 1.0)
    assert isinstance(check_rate(0, 0, 3, 10), NotChecked)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(shift_sd=st.floats(-1.0, 1.0), seed=st.integers(0, 2**32 - 1))
def test_a_mean_shift_matches_welch_and_its_size(shift_sd: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    baseline = np.sort(rng.normal(0.7, 0.1, 3_000))
    current = rng.normal(0.7 + shift_sd * 0.1, 0.1, 2_000)
    result = Reference.of(baseline).mean_shift(current)
    assert isinstance(result, MeanShift)
    welch = ttest_ind(current, baseline, equal_var=False)
    assert result.t_statistic == pytest.approx(welch.statistic, rel=1e-9)
    assert result.p_value == pytest.approx(welch.pvalue, rel=1e-6, abs=1e-300)
    assert result.shift_sd == pytest.approx(shift_sd, abs=0.1)


def test_a_mean_shift_off_constant_data_is_total_and_none_is_nothing() -> None:
    constant = Reference.of(np.full(100, 0.9))
    assert constant.mean_shift(np.full(50, 0.9)) == MeanShift(0.0, 1.0, 0.0, 100, 50)
    moved = constant.mean_shift(np.full(50, 0.8))
    assert isinstance(moved, MeanShift) and moved.p_value == 0.0 and moved.shift_sd == -math.inf
    assert isinstance(constant.mean_shift(np.array([0.5])), NotChecked)

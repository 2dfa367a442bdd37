"""The sequential (CUSUM) check: under no drift it raises no more often than its stated average
run length says, whatever the feature's shape; it sees a large shift within tens of decisions;
and it is the same check however the decisions are split into rounds."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftline.detectors.baseline import fit_baseline
from driftline.detectors.sequential import StreamCheck, arl_of, threshold


def draw(rng: np.random.Generator, shape: str, size: int) -> np.ndarray:
    if shape == "normal":
        return rng.normal(size=size)
    if shape == "lognormal":
        return rng.lognormal(0.0, 1.0, size)
    return rng.integers(0, 20, size).astype(float)  # "discrete": ties everywhere


def run_length(rng: np.random.Generator, shape: str, arl: float, limit: int) -> int:
    check = StreamCheck(fit_baseline({"x": draw(rng, shape, 10_000)}), arl=arl)
    stream = draw(rng, shape, limit)
    for start in range(0, limit, 50):
        if check.update({"x": stream[start : start + 50]})[0].drifted:
            return start + 50
    return limit


@pytest.mark.parametrize("shape", ["normal", "lognormal", "discrete"])
def test_under_no_drift_it_raises_no_more_often_than_stated(shape: str) -> None:
    rng = np.random.default_rng(11)
    stated = 1_000
    lengths = [run_length(rng, shape, stated, 20 * stated) for _ in range(40)]
    # Siegmund's approximation and the baseline's own error: within a factor of two, and on
    # the cautious side for ties.
    assert np.mean(lengths) >= stated / 2, lengths


@settings(max_examples=30, deadline=None)
@given(arl=st.floats(100, 1e9), features=st.integers(1, 200))
def test_the_threshold_gives_the_stated_run_length(arl: float, features: int) -> None:
    h = threshold(arl, features)
    assert math.isclose(arl_of(h), 2 * arl * features, rel_tol=1e-6)
    assert threshold(arl * 2, features) > h


@pytest.mark.parametrize(("shift", "within"), [(0.5, 250), (1.0, 80)])
def test_a_large_shift_is_seen_within_tens_of_decisions(shift: float, within: int) -> None:
    delays = []
    for seed in range(15):
        rng = np.random.default_rng(seed)
        check = StreamCheck(fit_baseline({"x": rng.normal(size=5_000)}))
        shifted = rng.normal(shift, 1.0, 2_000)
        delay = next(
            (i + 1 for i in range(2_000) if check.update({"x": shifted[i : i + 1]})[0].drifted),
            None,
        )
        assert delay is not None
        delays.append(delay)
    assert np.median(delays) <= within, delays


@settings(max_examples=25, deadline=None)
@given(
    cuts=st.lists(st.integers(1, 299), max_size=8, unique=True),
    shift=st.floats(-2, 2),
    seed=st.integers(0, 2**32 - 1),
)
def test_the_statistic_does_not_depend_on_how_decisions_are_split(
    cuts: list[int], shift: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    baseline = fit_baseline({"x": rng.normal(size=1_000)})
    values = rng.normal(shift, 1.0, 300)
    values[::17] = np.nan  # missing values are skipped, wherever they fall
    whole, parts = StreamCheck(baseline, arl=1_000), StreamCheck(baseline, arl=1_000)
    whole.update({"x": values})
    bounds = [0, *sorted(cuts), 300]
    for start, end in itertools.pairwise(bounds):
        parts.update({"x": values[start:end]})
    assert math.isclose(whole.upper["x"], parts.upper["x"], abs_tol=1e-9)
    assert math.isclose(whole.lower["x"], parts.lower["x"], abs_tol=1e-9)
    assert whole.seen == parts.seen == {"x": 300 - len(values[::17])}


def test_an_outlier_counts_no_more_than_the_baseline_edge() -> None:
    check = StreamCheck(fit_baseline({"x": np.random.default_rng(0).normal(size=1_000)}))
    far = check.scores("x", np.array([1e300, -1e300, np.inf]))
    assert np.all(np.abs(far) < 3.5)
    verdict = check.update({"x": [1e300]})[0]
    assert not verdict.drifted and verdict.test == "cusum"


def test_a_small_baseline_raises_the_threshold_and_a_tiny_one_gives_no_verdict() -> None:
    rng = np.random.default_rng(12)
    lengths = []
    for _ in range(40):  # 500 baseline values: its error alone would alarm several times over
        check = StreamCheck(fit_baseline({"x": rng.normal(size=500)}), arl=1_000)
        stream, length = rng.normal(size=20_000), 20_000
        for start in range(0, 20_000, 50):
            if check.update({"x": stream[start : start + 50]})[0].drifted:
                length = start + 50
                break
        lengths.append(length)
    assert np.mean(lengths) >= 500, lengths
    tiny = StreamCheck(fit_baseline({"x": rng.normal(size=100)}))
    assert tiny.update({"x": rng.normal(size=50)}) == []  # left to the window check


def test_a_replay_is_judged_by_where_the_statistic_ends() -> None:
    rng = np.random.default_rng(13)
    baseline = fit_baseline({"x": rng.normal(size=5_000)})
    history = np.concatenate([rng.normal(2.0, 1.0, 100), rng.normal(size=1_500)])  # over
    live, replayed = StreamCheck(baseline), StreamCheck(baseline)
    assert live.update({"x": history})[0].drifted  # it crossed, in its time
    assert not replayed.update({"x": history}, replay=True)[0].drifted  # not a new alarm
    assert replayed.upper == live.upper and replayed.lower == live.lower


def test_a_run_length_shorter_than_any_threshold_gives_zero_not_an_error() -> None:
    assert threshold(0.5) == 0.0
    assert threshold(1e6, 1, reference=100) == math.inf

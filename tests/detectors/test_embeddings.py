"""The embedding check holds its false-alarm rate on random splits at any dimension and size,
catches a move of the centroid with its size in baseline units, and turns away what is not a
vector of the baseline's length with a message naming the row."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.stats import binom

from driftline.detectors.continuous import NotChecked
from driftline.detectors.embeddings import EmbeddingDrift, check_embeddings, vectors

ALPHA = 0.05
CHECKS = 200


@pytest.mark.parametrize(("dimension", "size"), [(4, 40), (64, 200), (384, 200), (16, 1_000)])
def test_random_splits_hold_the_rate(dimension: int, size: int) -> None:
    rng = np.random.default_rng(dimension * size)
    alarms = 0
    for seed in range(CHECKS):
        # Skewed, correlated clouds: not the normal data a linear model likes best.
        rows = rng.exponential(size=(2 * size, dimension)) @ rng.normal(size=(dimension, dimension))
        result = check_embeddings(rows[:size], rows[size:], seed=seed)
        assert isinstance(result, EmbeddingDrift)
        alarms += result.p_value < ALPHA
    low, high = np.asarray(binom.ppf([0.0005, 0.9995], CHECKS, ALPHA))
    assert low <= alarms <= high, f"{alarms} of {CHECKS} at {ALPHA}"


@pytest.mark.parametrize("dimension", [8, 384])
def test_a_moved_centroid_is_caught_with_its_size(dimension: int) -> None:
    rng = np.random.default_rng(dimension)
    baseline = rng.normal(size=(2_000, dimension))
    direction = rng.normal(size=dimension)
    direction /= np.linalg.norm(direction)
    typical = math.sqrt(dimension)  # a baseline vector's distance from the centre
    window = rng.normal(size=(1_000, dimension)) + direction * 0.2 * typical
    result = check_embeddings(baseline, window)
    assert isinstance(result, EmbeddingDrift)
    assert result.p_value < 1e-6
    assert result.auc > 0.6
    assert result.centroid_shift == pytest.approx(0.2, abs=0.03)
    assert result.dimension == dimension


def test_rows_that_are_not_vectors_of_one_length_are_refused_by_row() -> None:
    with pytest.raises(ValueError, match="row 2 has 3 numbers; the others have 2"):
        vectors([[1, 2], [3, 4], [5, 6, 7]])
    with pytest.raises(ValueError, match="prompt_embedding row 0 has 2 numbers; the others have 4"):
        vectors([[1, 2]], dimension=4, name="prompt_embedding")
    with pytest.raises(ValueError, match="row 1 is not a flat vector"):
        vectors([[1, 2], [[1, 2]]])
    with pytest.raises(ValueError, match="4 numbers, the baseline's 2"):
        check_embeddings(np.zeros((30, 2)), np.zeros((30, 4)))


def test_missing_and_non_finite_rows_are_left_out() -> None:
    kept = vectors([[1, 2], None, [math.nan, 1], [math.inf, 0], [3, 4]])
    assert kept.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert vectors([]).shape == (0, 0)


def test_too_few_constant_and_huge_vectors_give_a_reason_or_a_verdict() -> None:
    few = check_embeddings(np.zeros((19, 3)), np.zeros((50, 3)))
    assert isinstance(few, NotChecked)
    assert "20 on each side" in few.reason
    same = check_embeddings(np.ones((40, 3)), np.ones((40, 3)))
    assert isinstance(same, EmbeddingDrift)
    assert same.p_value == 1.0
    assert same.centroid_shift == 0.0
    moved = check_embeddings(np.ones((40, 3)), np.full((40, 3), 2.0))
    assert isinstance(moved, EmbeddingDrift)
    assert moved.centroid_shift == math.inf
    assert moved.p_value < 1e-6
    huge = check_embeddings(np.full((40, 2), 1e300), np.full((40, 2), -1e300))
    assert isinstance(huge, EmbeddingDrift)
    assert huge.p_value < 1e-6
    assert huge.centroid_shift == math.inf


@pytest.mark.timeout(30)
@pytest.mark.parametrize("scale", [1e-170, 1e-310, 1e170])
def test_tiny_and_huge_magnitudes_are_checked_as_any_other(scale: float) -> None:
    # Numbers near 1e-160 once left liblinear running for ever (their spread underflowed).
    rows = np.random.default_rng(0).normal(size=(80, 3))
    same = check_embeddings(rows[:40] * scale, rows[40:] * scale)
    assert isinstance(same, EmbeddingDrift)
    reference = check_embeddings(rows[:40], rows[40:])
    assert isinstance(reference, EmbeddingDrift)
    if scale > 1e-300:  # subnormals keep fewer digits: the same verdict, not the same figures
        assert same.p_value == pytest.approx(reference.p_value, rel=1e-6)
        assert same.centroid_shift == pytest.approx(reference.centroid_shift, rel=1e-6)


@pytest.mark.parametrize(("baseline_rows", "window_rows"), [(25, 30), (21, 37), (100, 33)])
def test_identical_vectors_have_no_shift(baseline_rows: int, window_rows: int) -> None:
    vector = np.array([0.1, 0.2, 0.3, 0.7])  # sums that round differently at every count
    result = check_embeddings(
        np.tile(vector, (baseline_rows, 1)), np.tile(vector, (window_rows, 1))
    )
    assert isinstance(result, EmbeddingDrift)
    assert result.centroid_shift == 0.0
    assert result.p_value == 1.0
    moved = check_embeddings(np.tile(vector, (30, 1)), np.tile(vector + 0.001, (30, 1)))
    assert isinstance(moved, EmbeddingDrift)
    assert moved.centroid_shift == math.inf


@settings(max_examples=40, deadline=None)
@given(
    hnp.arrays(np.float64, st.tuples(st.integers(20, 40), st.integers(1, 5)),
               elements=st.floats(-1e6, 1e6, width=32)),
    st.data(),
)  # fmt: skip
def test_any_finite_vectors_give_a_verdict_in_range(
    baseline: np.ndarray, data: st.DataObject
) -> None:
    window = data.draw(
        hnp.arrays(np.float64, (data.draw(st.integers(20, 40)), baseline.shape[1]),
                   elements=st.floats(-1e6, 1e6, width=32))
    )  # fmt: skip
    result = check_embeddings(baseline, window)
    assert isinstance(result, EmbeddingDrift)
    assert 0.0 <= result.p_value <= 1.0
    assert 0.0 <= result.auc <= 1.0
    assert result.centroid_shift >= 0.0

"""Baselines stay bounded and representative; a full check flags exactly what moved, including a
change only the joint distribution shows, and not a difference too small to matter."""

import json
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from driftline.detectors.baseline import Baseline, BaselineBuilder
from driftline.detectors.continuous import ContinuousDrift, check_continuous
from driftline.detectors.verdict import JOINT, FeatureVerdict, Unchecked, check_window


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), chunks=st.integers(1, 40))
def test_the_reservoir_is_bounded_and_a_fair_sample(seed: int, chunks: int) -> None:
    rng = np.random.default_rng(seed)
    builder = BaselineBuilder(continuous=("x",), reservoir=500, seed=seed)
    everything = []
    for _ in range(chunks):
        chunk = rng.lognormal(0, 1, 1_000)
        everything.append(chunk)
        builder.add({"x": chunk})
    baseline = builder.build()
    assert baseline.rows.shape == (500, 1)
    assert baseline.size == 1_000 * chunks
    fair = check_continuous(np.sort(np.concatenate(everything)), baseline.rows[:, 0])
    assert isinstance(fair, ContinuousDrift) and fair.p_value > 1e-4


def test_a_feature_with_too_many_categories_becomes_an_identifier() -> None:
    builder = BaselineBuilder(continuous=(), categorical=("city", "region"), max_categories=10)
    for start in range(0, 5_000, 1_000):  # the switch happens in the first chunk
        builder.add(
            {
                "city": [f"c{i % 50}" for i in range(start, start + 1_000)] + [None] * 7,
                "region": ["north", "south"] * 503 + [None],
            }
        )
    baseline = builder.build()
    assert "city" not in baseline.categorical and baseline.features()["city"] == "identifier"
    assert baseline.identifiers["city"].size == 5_000  # 50 values: all kept, counted exactly
    assert sorted(baseline.identifiers["city"].counts.values()) == [100] * 50
    assert baseline.missing["city"] == 35
    assert baseline.categorical["region"] == {"north": 2_515, "south": 2_515}
    again = Baseline.from_record(baseline.to_record())
    assert again.identifiers == baseline.identifiers


def test_a_baseline_survives_its_record() -> None:
    builder = BaselineBuilder(continuous=("x", "y"), categorical=("r",), reservoir=50)
    builder.add({"x": [1.0, None, 3.0], "y": [0.5, 0.1, 0.2], "r": ["a", "b", None]})
    baseline = builder.build()
    again = Baseline.from_record(baseline.to_record())
    assert np.array_equal(again.rows, baseline.rows, equal_nan=True)
    assert again.categorical == baseline.categorical and again.missing == baseline.missing


def decisions(rng: np.random.Generator, n: int, **shift: float) -> dict[str, Any]:
    income = rng.lognormal(10.8, 0.4, n) * (1 + shift.get("income", 0.0))
    age = rng.normal(45, 12, n)
    confidence = np.clip(rng.beta(8, 2, n) - shift.get("confidence", 0.0), 0, 1)
    region = rng.choice(["north", "south", "east"], n, p=[0.5, 0.3, 0.2])
    return {"income": income, "age": age, "confidence": confidence, "region": list(region)}


def fitted(rng: np.random.Generator) -> Baseline:
    builder = BaselineBuilder(continuous=("income", "age", "confidence"), categorical=("region",))
    for _ in range(4):
        builder.add(decisions(rng, 5_000))
    return builder.build()


def drifted(verdicts: list[FeatureVerdict | Unchecked]) -> set[tuple[str, str]]:
    return {(v.feature, v.test) for v in verdicts if isinstance(v, FeatureVerdict) and v.drifted}


def test_an_unshifted_window_flags_nothing() -> None:
    rng = np.random.default_rng(1)
    verdicts = check_window(fitted(rng), decisions(rng, 5_000), review_threshold=0.6)
    assert drifted(verdicts) == set()
    assert all(isinstance(v, FeatureVerdict) for v in verdicts)


def test_exactly_the_shifted_feature_and_the_confidence_are_flagged() -> None:
    rng = np.random.default_rng(2)
    baseline = fitted(rng)
    window = decisions(rng, 5_000, income=0.3, confidence=0.15)

    found = drifted(check_window(baseline, window, review_threshold=0.6))

    assert ("income", "ks") in found
    assert {("confidence", "ks"), ("confidence", "mean-shift"), ("confidence", "review-share")} <= (
        found
    )
    assert not {feature for feature, _ in found} & {"age", "region"}


def test_a_change_only_the_joint_distribution_shows_is_flagged() -> None:
    rng = np.random.default_rng(3)
    together = [[1, 0.9], [0.9, 1]]
    builder = BaselineBuilder(continuous=("a", "b"))
    rows = rng.multivariate_normal([0, 0], together, 10_000)
    builder.add({"a": rows[:, 0], "b": rows[:, 1]})
    apart = rng.multivariate_normal([0, 0], [[1, -0.9], [-0.9, 1]], 3_000)

    found = drifted(check_window(builder.build(), {"a": apart[:, 0], "b": apart[:, 1]}))

    assert found == {(JOINT, "pca-reconstruction")}


def test_a_significant_but_tiny_difference_is_not_drift() -> None:
    rng = np.random.default_rng(4)
    builder = BaselineBuilder(continuous=("x",), reservoir=100_000)
    builder.add({"x": rng.normal(0, 1, 100_000)})
    verdicts = check_window(builder.build(), {"x": rng.normal(0.05, 1, 100_000)})
    (ks,) = [v for v in verdicts if isinstance(v, FeatureVerdict) and v.test == "ks"]
    assert ks.adjusted_p < 0.01 and ks.effect < 0.1
    assert not ks.drifted


def test_a_feature_gone_missing_is_reported_not_raised() -> None:
    rng = np.random.default_rng(5)
    window = decisions(rng, 2_000)
    window["age"] = [None] * 2_000
    verdicts = check_window(fitted(rng), window)
    unchecked = [v for v in verdicts if isinstance(v, Unchecked)]
    assert [(v.feature, v.test) for v in unchecked] == [("age", "ks")]
    assert ("age", "missing-rate") in drifted(verdicts)


def test_a_rate_with_no_hits_on_either_side_is_left_out_of_the_correction() -> None:
    rng = np.random.default_rng(5)
    builder = BaselineBuilder(continuous=("x",), flags=("violated",))
    builder.add({"x": rng.normal(size=2_000), "violated": [False] * 2_000})
    baseline = builder.build()
    clean = {"x": rng.normal(size=1_000), "violated": [False] * 1_000}
    tests = {(v.feature, v.test) for v in check_window(baseline, clean)}
    assert ("x", "missing-rate") not in tests and ("violated", "flag-rate") not in tests

    gaps = rng.normal(size=1_000)
    gaps[:100] = np.nan
    broken = {"x": gaps, "violated": [n < 100 for n in range(1_000)]}
    found = drifted(check_window(baseline, broken))
    assert found == {("x", "missing-rate"), ("violated", "flag-rate")}


def test_a_small_spread_around_a_large_value_survives_the_record() -> None:
    # Six significant digits made 101,325 +- 2 a handful of values, and every window drifted.
    rng = np.random.default_rng(8)
    builder = BaselineBuilder(continuous=("pressure",))
    builder.add({"pressure": rng.normal(101_325, 2, 5_000)})
    stored = Baseline.from_record(json.loads(json.dumps(builder.build().to_record())))
    assert np.unique(stored.sorted_columns["pressure"]).size > 4_000
    verdicts = check_window(stored, {"pressure": rng.normal(101_325, 2, 2_000)})
    assert not [v for v in verdicts if isinstance(v, FeatureVerdict) and v.drifted]

"""Categorical checks hold their false-alarm rate at any number of categories, a feature with too
many becomes an identifier whose unseen share is checked, a real change in either is still
caught, and missing values (None, NaN, pandas' NA and NaT) count as missing for every kind."""

import json
from collections import Counter
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binom

from driftline.detectors.baseline import Baseline, fit_baseline
from driftline.detectors.categorical import CategoricalDrift, check_categorical
from driftline.detectors.identifiers import ValueSampler, check_unseen
from driftline.detectors.table import category, infer_kinds, is_missing, numbers
from driftline.detectors.verdict import FeatureVerdict, Unchecked, check_window

RATE = 0.01
SPLITS = 100


def category_draws(rng: np.random.Generator, categories: int, shape: str, size: int) -> list[str]:
    weights = np.ones(categories) if shape == "uniform" else 1 / np.arange(1, categories + 1)
    names = np.array([f"c{i}" for i in range(categories)])
    return list(names[rng.choice(categories, size, p=weights / weights.sum())])


def verdict(verdicts: list[FeatureVerdict | Unchecked], feature: str) -> FeatureVerdict:
    """The feature's drift check (not its missing-value rate)."""
    found = [
        v
        for v in verdicts
        if isinstance(v, FeatureVerdict) and v.feature == feature and v.test != "missing-rate"
    ]
    assert len(found) == 1, verdicts
    return found[0]


# The same examples every run: a chance excess on some seed must not fail the suite at random.
@settings(max_examples=12, deadline=None, derandomize=True)
@given(
    categories=st.sampled_from([10, 30, 100, 300, 1_000, 2_000, 5_000]),
    shape=st.sampled_from(["uniform", "zipf"]),
    baseline_size=st.sampled_from([2_000, 10_000]),
    window_size=st.sampled_from([500, 2_000, 10_000]),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_splits_hold_the_rate_at_any_cardinality(
    categories: int, shape: str, baseline_size: int, window_size: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    alarmed = Counter[str]()
    for _ in range(SPLITS):
        values = category_draws(rng, categories, shape, baseline_size + window_size)
        baseline = fit_baseline({"tail": values[:baseline_size]}, {"tail": "categorical"})
        found = verdict(check_window(baseline, {"tail": values[baseline_size:]}), "tail")
        alarmed[found.test] += found.p_value < RATE
    # More alarms than this happen once in 10,000 runs at the configured rate.
    assert sum(alarmed.values()) <= binom.isf(1e-4, SPLITS, RATE), alarmed


def test_merging_sparse_cells_ignores_which_side_saw_a_category_first() -> None:
    # Seen first by the baseline or only by the window: merging sparse cells in that order
    # alarmed on 100 of 100 null splits of a long tail.
    rng = np.random.default_rng(3)
    alarms = 0
    for _ in range(50):
        values = category_draws(rng, 1_000, "zipf", 12_000)
        result = check_categorical(Counter(values[:10_000]), Counter(values[10_000:]))
        assert isinstance(result, CategoricalDrift)
        alarms += result.p_value < RATE
    assert alarms <= binom.isf(1e-4, 50, RATE)


def test_a_category_that_grows_is_caught_among_hundreds() -> None:
    rng = np.random.default_rng(5)
    before = category_draws(rng, 500, "zipf", 10_000)
    after = category_draws(rng, 500, "zipf", 2_000)
    after[:300] = ["c250"] * 300  # one rare category now takes 15% of the window
    found = verdict(check_window(fit_baseline({"tail": before}), {"tail": after}), "tail")
    assert found.test == "chi-square" and found.drifted and found.effect > 0.1


def test_new_identifiers_are_caught_as_an_unseen_share() -> None:
    rng = np.random.default_rng(9)
    fleet = [f"N{i:05d}" for i in rng.integers(0, 4_000, 10_000)]
    baseline = fit_baseline({"tail_number": fleet})
    assert baseline.features()["tail_number"] == "identifier"
    same = [f"N{i:05d}" for i in rng.integers(0, 4_000, 2_000)]
    calm = verdict(check_window(baseline, {"tail_number": same}), "tail_number")
    assert calm.test == "unseen-share" and not calm.drifted
    joined = same[:1_400] + [f"X{i:05d}" for i in range(600)]  # a new fleet: 30% of the window
    found = verdict(check_window(baseline, {"tail_number": joined}), "tail_number")
    assert found.drifted and found.effect > 0.2


def test_an_identifier_sample_stays_bounded_and_exact_for_what_it_keeps() -> None:
    sampler = ValueSampler(capacity=200)
    counts = Counter(f"id-{i % 5_000}" for i in range(20_000))
    sampler.add(counts)
    sample = sampler.build()
    assert 0 < len(sample.counts) <= 200 and sample.level > 0
    assert set(sample.counts.values()) == {4}  # every kept value counted in full
    assert sample.size == 4 * len(sample.counts)
    unseen = check_unseen(sample, Counter(f"new-{i}" for i in range(5_000)))
    assert not isinstance(unseen, type(None)) and getattr(unseen, "current_share", 0) == 1.0


MISSING: list[Any] = [None, float("nan"), np.nan, pd.NA, pd.NaT, np.datetime64("NaT")]


@pytest.mark.parametrize("value", MISSING, ids=repr)
def test_every_kind_of_missing_value_is_missing(value: Any) -> None:
    assert is_missing(value)


@pytest.mark.parametrize("present", [0, 0.0, "", "nan", False, "NA"], ids=repr)
def test_values_that_look_empty_are_present(present: Any) -> None:
    assert not is_missing(present)


def test_missing_values_count_as_missing_for_every_kind() -> None:
    size = 600
    codes = [f"id{i}" for i in range(size)]
    table = {
        "amount": [1.0, None, float("nan"), pd.NA, 2.0, 3.0] * (size // 6),
        "region": ["north", None, float("nan"), pd.NA, pd.NaT, "south"] * (size // 6),
        "code": [None if i % 3 == 0 else c for i, c in enumerate(codes)],
    }
    baseline = fit_baseline(table, max_categories=50)
    assert baseline.features() == {
        "amount": "continuous",
        "region": "categorical",
        "code": "identifier",
    }
    assert baseline.missing == {"amount": 300, "region": 400, "code": 200}
    assert baseline.categorical["region"] == {"north": 100, "south": 100}  # no "nan" category
    found = {
        v.feature
        for v in check_window(baseline, table)
        if isinstance(v, FeatureVerdict) and v.test == "missing-rate"
    }
    assert found == {"amount", "region", "code"}


def test_a_dataframe_works_end_to_end() -> None:
    rng = np.random.default_rng(1)
    n = 4_000

    def frame(shift: float) -> pd.DataFrame:
        amount = pd.array(rng.normal(100 + shift, 10, n), dtype="Float64")
        amount[::50] = pd.NA
        return pd.DataFrame(
            {
                "amount": amount,
                "count": pd.array(rng.integers(0, 9, n), dtype="Int64"),
                "plan": pd.Categorical(rng.choice(["basic", "pro", None], n)),
                "seen_at": pd.to_datetime(rng.integers(0, 10**9, n), unit="s"),
                "urgent": rng.random(n) < 0.1,
                "zip": pd.array([f"{z:05d}" for z in rng.integers(0, 99_999, n)], dtype="string"),
            }
        )

    reference = frame(0.0)
    kinds = infer_kinds(reference, {"seen_at": "categorical"})
    assert kinds == {
        "amount": "continuous",
        "count": "continuous",
        "plan": "categorical",
        "seen_at": "categorical",
        "urgent": "flag",
        "zip": "categorical",
    }
    baseline = fit_baseline(reference, {"seen_at": "categorical"})
    assert baseline.features()["zip"] == "identifier"
    assert baseline.missing["amount"] == n // 50
    assert 0 < baseline.missing["plan"] < n  # None in a pandas Categorical
    calm = check_window(baseline, frame(0.0))
    assert not [v for v in calm if isinstance(v, FeatureVerdict) and v.drifted]
    shifted = check_window(baseline, frame(5.0))
    assert {v.feature for v in shifted if isinstance(v, FeatureVerdict) and v.drifted} >= {"amount"}


def test_a_window_without_a_feature_names_it() -> None:
    baseline = fit_baseline({"a": [1.0, 2.0, 3.0], "b": ["x", "y", "x"]})
    with pytest.raises(KeyError, match="'b'"):
        check_window(baseline, {"a": [1.0, 2.0]})


def test_an_override_that_names_no_column_is_an_error() -> None:
    with pytest.raises(ValueError, match="colour"):
        infer_kinds({"a": [1]}, {"colour": "categorical"})


def test_real_data_random_halves_stay_quiet_and_a_real_split_is_caught() -> None:
    from vega_datasets import data  # ships its airports inside the wheel: nothing downloaded

    airports = data.airports().drop(columns=["iata", "name"])  # unique per row
    rng = np.random.default_rng(4)
    splits, alarms = 40, 0
    for _ in range(splits):
        order = rng.permutation(len(airports))
        half = len(order) // 2
        baseline = fit_baseline(airports.iloc[order[:half]])
        verdicts = check_window(baseline, airports.iloc[order[half:]])
        alarms += any(isinstance(v, FeatureVerdict) and v.drifted for v in verdicts)
    assert baseline.features()["city"] == "identifier"  # about 2,700 cities
    assert alarms <= binom.isf(1e-4, splits, RATE)
    west = airports["longitude"] < -95
    verdicts = check_window(fit_baseline(airports[~west]), airports[west])
    drifted = {(v.feature, v.test) for v in verdicts if isinstance(v, FeatureVerdict) and v.drifted}
    assert {("state", "chi-square"), ("city", "unseen-share")} <= drifted


def test_integer_categories_match_when_a_missing_value_makes_them_floats() -> None:
    rng = np.random.default_rng(2)
    codes = rng.integers(0, 40, 6_000)
    baseline = fit_baseline({"zip": codes[:4_000]}, {"zip": "categorical"})
    window = pd.Series(codes[4_000:], dtype=float)  # what pandas makes of it with one NaN
    window[0] = np.nan
    found = verdict(check_window(baseline, {"zip": window}), "zip")
    assert not found.drifted and found.p_value > 0.001


def test_a_category_named_like_the_old_pooled_tail_is_a_category() -> None:
    baseline = fit_baseline({"kind": ["(other)"] * 500 + ["a"] * 500})
    found = verdict(check_window(baseline, {"kind": ["b"] * 500 + ["a"] * 500}), "kind")
    assert found.drifted and found.p_value < 1e-20


def test_categories_that_json_or_postgresql_cannot_carry_are_escaped() -> None:
    baseline = fit_baseline({"name": ["a\ud800b", "nul\x00byte", "é"] * 100})
    record = json.dumps(baseline.to_record(), ensure_ascii=False).encode("utf-8")  # no error
    assert b"\\u0000" not in record and "\x00" not in record.decode("utf-8")
    found = verdict(check_window(baseline, {"name": ["a\ud800b", "nul\x00byte", "é"] * 50}), "name")
    assert not found.drifted


def test_unseen_share_holds_its_rate_when_few_unseen_values_are_expected() -> None:
    # A tail of 0.2% of the mass and a window of 200: under one unseen value expected.
    rng = np.random.default_rng(6)
    common = [f"c{i}" for i in range(1_500)]
    alarms, checks = 0, 300
    for _ in range(checks):
        draws = [common[i] for i in rng.integers(0, 1_500, 50_200)]
        tail = rng.random(50_200) < 0.002
        values = [f"t{rng.integers(10**9)}" if t else v for v, t in zip(draws, tail, strict=True)]
        sampler = ValueSampler()
        sampler.add(Counter(values[:50_000]))
        result = check_unseen(sampler.build(), Counter(values[50_000:]))
        alarms += getattr(result, "p_value", 1.0) < RATE
    assert alarms <= binom.isf(1e-4, checks, RATE)


def test_repeated_column_labels_are_an_error() -> None:
    frame = pd.DataFrame([[1, 2], [3, 4]], columns=["c", "c"])
    with pytest.raises(ValueError, match="repeat"):
        fit_baseline(frame)
    with pytest.raises(ValueError, match="repeat"):
        infer_kinds({0: [1], "0": [2]})


def test_times_and_odd_numbers_as_continuous_values() -> None:
    times = pd.Series(pd.to_datetime(["2026-01-01", None, "2026-01-02"]))
    assert numbers(times).tolist()[1] != numbers(times).tolist()[1]  # NaT: NaN
    assert np.isnan(numbers(np.array(["2026-01-01", "NaT"], dtype="datetime64[s]"))[1])
    assert np.isnan(numbers(pd.Series(["1.5", "2"], dtype="string"))).all()  # text is not a number
    assert np.isnan(numbers([10**400, 1.0])[0])  # past any float
    baseline = fit_baseline({"seen_at": times}, {"seen_at": "continuous"})
    assert baseline.missing["seen_at"] == 1


def test_an_older_capped_baseline_is_not_checked_but_says_why() -> None:
    # Its cap kept the categories its own sample made frequent: any window alarmed against it.
    old = {"continuous": [], "rows": [], "categorical": {"city": {"a": 60, "(other)": 40}},
           "flags": {}, "missing": {"city": 0}, "size": 100, "review_threshold": None}  # fmt: skip
    baseline = Baseline.from_record(old)
    assert baseline.pooled_tail
    unchecked = [
        v for v in check_window(baseline, {"city": ["a", "b"] * 50}) if isinstance(v, Unchecked)
    ]
    assert [(v.feature, v.test) for v in unchecked] == [("city", "chi-square")]
    assert "fit it again" in unchecked[0].reason
    assert Baseline.from_record(json.loads(json.dumps(baseline.to_record()))).pooled_tail


def test_a_column_with_nothing_present_fits_and_publishes() -> None:
    baseline = fit_baseline({"optional": [np.nan] * 100, "income": np.arange(100.0)})
    record = json.loads(json.dumps(baseline.to_record(), allow_nan=False))
    assert {row[0] for row in record["rows"]} == {None} and baseline.missing["optional"] == 100


def test_the_same_value_is_one_category_whatever_its_type() -> None:
    assert category(np.float32(0.1)) == category(0.1) == "0.1"
    assert category(Decimal("12.0")) == category(12) == category(np.int64(12)) == category(12.0)
    assert category(np.bool_(True)) == category(True)


def test_zoned_and_far_times_become_seconds() -> None:
    zoned = pd.Series(pd.to_datetime(["2026-01-01", None]).tz_localize("Europe/Paris"))
    assert numbers(zoned)[0] == pd.Timestamp("2025-12-31T23:00Z").timestamp()
    assert np.isnan(numbers(zoned)[1])
    far = np.array(["2500-01-01"], dtype="datetime64[s]")
    assert numbers(far)[0] == 16_725_225_600.0  # in seconds: no overflow through nanoseconds

"""The plots say what they draw: shares per bin that add up, a shift that shows, and names
that cannot break out of the SVG."""

import re

import numpy as np

from driftline.collector.web.ui import plots


def shares(svg: str, series: str) -> list[float]:
    return [float(s) for s in re.findall(rf"{series} ([0-9.]+)%</title>", svg)]


def test_each_series_adds_up_to_the_whole_window() -> None:
    rng = np.random.default_rng(1)
    svg = str(plots.histogram("income", rng.normal(size=5_000), rng.normal(size=800)))
    assert abs(sum(shares(svg, "baseline")) - 100) < 1
    assert abs(sum(shares(svg, "current")) - 100) < 1


def test_a_shift_to_the_right_fills_the_top_bins() -> None:
    rng = np.random.default_rng(2)
    svg = str(plots.histogram("debt_ratio", rng.normal(size=5_000), rng.normal(1, 1, 2_000)))
    baseline, current = shares(svg, "baseline"), shares(svg, "current")
    assert sum(current[-3:]) > 2 * sum(baseline[-3:])


def test_values_beyond_the_baseline_stay_in_view() -> None:
    svg = str(plots.histogram("age", [1.0, 2.0, 3.0, 4.0], [100.0, 200.0]))
    assert shares(svg, "current")[-1] == 100.0


def test_new_categories_come_last_and_names_are_escaped() -> None:
    baseline, current = {"north": 60, "south": 40}, {"north": 5, "mars": 5}
    svg = str(plots.categories("<b>region</b>", baseline, current))
    assert "<b>" not in svg and "&lt;b&gt;region" in svg
    assert svg.index("mars: baseline") > svg.index("south: baseline")
    assert shares(svg, "current") == [50.0, 0.0, 50.0]


def test_nothing_to_compare_says_so() -> None:
    assert "no values to compare" in str(plots.histogram("x", [], [1.0]))

"""Drift states do not flap: entering takes ``raise_after`` alarms in a row, leaving takes
``clear_after`` quiet checks in a row."""

from hypothesis import given
from hypothesis import strategies as st

from detectors.hysteresis import Hysteresis
from detectors.verdict import FeatureVerdict, Unchecked


def verdict(drifted: bool) -> FeatureVerdict:
    return FeatureVerdict(
        feature="x", test="ks", statistic=0.1, p_value=0.5, adjusted_p=0.5,
        effect_name="wasserstein_sd", effect=0.2, drifted=drifted,
        baseline_size=100, current_size=100,
    )  # fmt: skip


def states(hysteresis: Hysteresis, alarms: list[bool]) -> list[str]:
    return [t.state for a in alarms for t in hysteresis.update([verdict(a)])]


def test_it_detects_after_raise_after_alarms_and_resolves_after_clear_after_quiet_checks() -> None:
    hysteresis = Hysteresis(raise_after=2, clear_after=3)
    assert states(hysteresis, [True]) == []
    assert states(hysteresis, [True]) == ["detected"]
    assert states(hysteresis, [False, False, True, False, False]) == []
    assert states(hysteresis, [False]) == ["resolved"]


def test_a_check_that_could_not_be_made_changes_nothing() -> None:
    hysteresis = Hysteresis(clear_after=1, drifting=[("x", "ks")])
    assert hysteresis.update([Unchecked("x", "ks", "window has 0 values")]) == []
    assert hysteresis.drifting == {("x", "ks")}


@given(st.lists(st.booleans(), max_size=200), st.integers(1, 4), st.integers(1, 4))
def test_transitions_alternate_and_each_follows_its_run(
    alarms: list[bool], raise_after: int, clear_after: int
) -> None:
    hysteresis = Hysteresis(raise_after=raise_after, clear_after=clear_after)
    history: list[tuple[int, str]] = []
    for index, alarm in enumerate(alarms):
        history += [(index, t.state) for t in hysteresis.update([verdict(alarm)])]
    assert [s for _, s in history] == ["detected", "resolved"] * (len(history) // 2) + (
        ["detected"] if len(history) % 2 else []
    )
    for index, state in history:
        run = raise_after if state == "detected" else clear_after
        assert alarms[index - run + 1 : index + 1] == [state == "detected"] * run

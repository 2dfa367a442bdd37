"""Drift states do not flap: entering takes ``raise_after`` alarms in a row, leaving takes
``clear_after`` quiet checks in a row; and a state moves only once its transition is recorded,
staying due until then."""

from hypothesis import given
from hypothesis import strategies as st

from driftline.detectors.hysteresis import Hysteresis, Transition
from driftline.detectors.verdict import FeatureVerdict, Unchecked


def verdict(drifted: bool) -> FeatureVerdict:
    return FeatureVerdict(
        feature="x", test="ks", statistic=0.1, p_value=0.5, adjusted_p=0.5,
        effect_name="wasserstein_sd", effect=0.2, drifted=drifted,
        baseline_size=100, current_size=100,
    )  # fmt: skip


def recorded(hysteresis: Hysteresis, alarm: bool) -> list[Transition]:
    """Count one check, and record every transition due."""
    due = hysteresis.update([verdict(alarm)])
    for transition in due:
        hysteresis.settle(transition)
    return due


def states(hysteresis: Hysteresis, alarms: list[bool]) -> list[str]:
    return [t.state for a in alarms for t in recorded(hysteresis, a)]


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
        history += [(index, t.state) for t in recorded(hysteresis, alarm)]
    assert [s for _, s in history] == ["detected", "resolved"] * (len(history) // 2) + (
        ["detected"] if len(history) % 2 else []
    )
    for index, state in history:
        run = raise_after if state == "detected" else clear_after
        assert alarms[index - run + 1 : index + 1] == [state == "detected"] * run


def test_a_transition_not_recorded_moves_nothing_and_is_due_again() -> None:
    hysteresis = Hysteresis(raise_after=1, clear_after=2)
    assert [t.state for t in hysteresis.update([verdict(True)])] == ["detected"]  # not settled
    assert hysteresis.drifting == set()
    assert [t.state for t in hysteresis.due()] == ["detected"]  # without a new check
    assert [t.state for t in hysteresis.update([verdict(True)])] == ["detected"]
    hysteresis.settle(hysteresis.due()[0])
    assert hysteresis.drifting == {("x", "ks")} and hysteresis.due() == []


@given(
    st.lists(st.tuples(st.booleans(), st.booleans()), max_size=200),
    st.integers(1, 4),
    st.integers(1, 4),
)
def test_a_transition_is_due_exactly_while_its_run_says_so_and_its_state_has_not_moved(
    checks: list[tuple[bool, bool]], raise_after: int, clear_after: int
) -> None:
    """Each step: one check (alarm or quiet), then its due transitions recorded or not (a full
    queue); the state moves only by a recorded one."""
    hysteresis = Hysteresis(raise_after=raise_after, clear_after=clear_after)
    drifting, run, last = False, 0, None
    for alarm, taken in checks:
        run = run + 1 if alarm == last else 1
        last = alarm
        due = hysteresis.update([verdict(alarm)])
        expected = []
        if alarm and not drifting and run >= raise_after:
            expected = ["detected"]
        if not alarm and drifting and run >= clear_after:
            expected = ["resolved"]
        assert [t.state for t in due] == expected
        if taken:
            for transition in due:
                hysteresis.settle(transition)
            drifting = drifting != bool(due)
        assert hysteresis.drifting == ({("x", "ks")} if drifting else set())

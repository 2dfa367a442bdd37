"""Drift states that do not flap: a feature starts drifting after ``raise_after`` alarming
checks in a row and stops only after ``clear_after`` quiet checks in a row, so one hovering at
the threshold stays in whichever state it is in (as Prometheus's ``for`` and
``keep_firing_for`` do for alerts). A check that could not be made changes nothing.

A state moves only when the caller says the transition's event was recorded (``settle``): until
then the transition stays due, and is offered again after every later check that keeps it due,
so a verdict that could not be sent is not lost.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from driftline.detectors.verdict import FeatureVerdict, Unchecked

Check = tuple[str, str]  # (feature, test)


@dataclass(frozen=True)
class Transition:
    state: Literal["detected", "resolved"]
    verdict: FeatureVerdict  # the latest check of the run that tipped it


class Hysteresis:
    def __init__(
        self, *, raise_after: int = 1, clear_after: int = 3, drifting: Iterable[Check] = ()
    ) -> None:
        if raise_after < 1 or clear_after < 1:
            raise ValueError("raise_after and clear_after must be at least 1")
        self.raise_after = raise_after
        self.clear_after = clear_after
        self.drifting: set[Check] = set(drifting)
        self._alarms: Counter[Check] = Counter()
        self._quiet: Counter[Check] = Counter()
        self._latest: dict[Check, FeatureVerdict] = {}

    def update(self, verdicts: Sequence[FeatureVerdict | Unchecked]) -> list[Transition]:
        """Count each check's run; return the transitions due (``due``)."""
        for verdict in verdicts:
            if isinstance(verdict, Unchecked):
                continue
            check = (verdict.feature, verdict.test)
            self._latest[check] = verdict
            if verdict.drifted:
                self._quiet[check] = 0
                self._alarms[check] += 1
            else:
                self._alarms[check] = 0
                self._quiet[check] += 1
        return self.due()

    def due(self) -> list[Transition]:
        """Every check whose run has tipped it, and which ``settle`` has not yet moved."""
        due = []
        for check, verdict in self._latest.items():
            if check not in self.drifting and self._alarms[check] >= self.raise_after:
                due.append(Transition("detected", verdict))
            elif check in self.drifting and self._quiet[check] >= self.clear_after:
                due.append(Transition("resolved", verdict))
        return due

    def latest(self, check: Check) -> FeatureVerdict | None:
        """The check's latest verdict counted, if it was counted since this state began."""
        return self._latest.get(check)

    def forget(self, check: Check) -> None:
        """Start the check afresh, not drifting and with no run counted: its drift was
        resolved for a reason of the caller's (no traffic), not by quiet checks."""
        self.drifting.discard(check)
        self._alarms.pop(check, None)
        self._quiet.pop(check, None)
        self._latest.pop(check, None)

    def settle(self, transition: Transition) -> None:
        """Move the check's state: its transition was recorded."""
        check = (transition.verdict.feature, transition.verdict.test)
        if transition.state == "detected":
            self.drifting.add(check)
        else:
            self.drifting.discard(check)

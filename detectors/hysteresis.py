"""Drift states that do not flap: a feature starts drifting after ``raise_after`` alarming
checks in a row and stops only after ``clear_after`` quiet checks in a row, so one hovering at
the threshold stays in whichever state it is in (as Prometheus's ``for`` and
``keep_firing_for`` do for alerts). A check that could not be made changes nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from detectors.verdict import FeatureVerdict, Unchecked

Check = tuple[str, str]  # (feature, test)


@dataclass(frozen=True)
class Transition:
    state: Literal["detected", "resolved"]
    verdict: FeatureVerdict  # the check that tipped it


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

    def update(self, verdicts: Sequence[FeatureVerdict | Unchecked]) -> list[Transition]:
        transitions = []
        for verdict in verdicts:
            if isinstance(verdict, Unchecked):
                continue
            check = (verdict.feature, verdict.test)
            if verdict.drifted:
                self._quiet[check] = 0
                self._alarms[check] += 1
                if check not in self.drifting and self._alarms[check] >= self.raise_after:
                    self.drifting.add(check)
                    transitions.append(Transition("detected", verdict))
            else:
                self._alarms[check] = 0
                self._quiet[check] += 1
                if check in self.drifting and self._quiet[check] >= self.clear_after:
                    self.drifting.discard(check)
                    transitions.append(Transition("resolved", verdict))
        return transitions

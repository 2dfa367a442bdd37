"""Two evaluation runs of one set, case by case: what newly fails in the second, what newly
passes, and whether the drop in pass rate is more than chance. The cases are the same in both,
so the test is McNemar's exact test on the cases whose outcome changed (a paired test: far
stronger than comparing two independent pass rates)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scipy.stats import binomtest


@dataclass(frozen=True)
class CaseOutcome:
    case_id: str
    passed: bool
    tags: tuple[str, ...] = ()
    reason: str = ""


@dataclass(frozen=True)
class Comparison:
    before: Mapping[str, CaseOutcome]
    after: Mapping[str, CaseOutcome]

    @property
    def shared(self) -> list[str]:
        return sorted(self.before.keys() & self.after.keys())

    @property
    def only_before(self) -> list[str]:
        return sorted(self.before.keys() - self.after.keys())

    @property
    def only_after(self) -> list[str]:
        return sorted(self.after.keys() - self.before.keys())

    @property
    def newly_failing(self) -> list[CaseOutcome]:
        return [
            self.after[c] for c in self.shared if self.before[c].passed and not self.after[c].passed
        ]

    @property
    def newly_passing(self) -> list[CaseOutcome]:
        return [
            self.after[c] for c in self.shared if not self.before[c].passed and self.after[c].passed
        ]

    def pass_rates(self) -> tuple[float | None, float | None]:
        """Of the cases both runs asked."""
        shared = self.shared
        if not shared:
            return None, None
        before = sum(self.before[c].passed for c in shared) / len(shared)
        after = sum(self.after[c].passed for c in shared) / len(shared)
        return before, after

    def p_value(self) -> float:
        """One-sided: the chance of at least this many newly failing cases among the changed
        ones if the second run were no worse (McNemar's exact test)."""
        worse, better = len(self.newly_failing), len(self.newly_passing)
        if worse == 0:
            return 1.0
        return float(binomtest(worse, worse + better, 0.5, alternative="greater").pvalue)

    def by_tag(self) -> dict[str, tuple[int, int, int]]:
        """Per tag: cases both runs asked, newly failing, newly passing."""
        found: dict[str, tuple[int, int, int]] = {}
        for case_id in self.shared:
            after = self.after[case_id]
            worse = self.before[case_id].passed and not after.passed
            better = not self.before[case_id].passed and after.passed
            for tag in after.tags:
                n, w, b = found.get(tag, (0, 0, 0))
                found[tag] = (n + 1, w + worse, b + better)
        return dict(sorted(found.items()))

    def regressed(self, *, alpha: float = 0.05, max_drop: float = 0.0) -> bool:
        """The second run is worse: its pass rate fell by more than ``max_drop`` and the fall
        is more than chance at ``alpha``."""
        before, after = self.pass_rates()
        if before is None or after is None:
            return False
        return before - after > max_drop and self.p_value() < alpha


def compare(before: Sequence[CaseOutcome], after: Sequence[CaseOutcome]) -> Comparison:
    return Comparison({c.case_id: c for c in before}, {c.case_id: c for c in after})

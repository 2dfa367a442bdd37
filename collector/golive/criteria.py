"""A go-live criterion: one thing the gate measured, against what was agreed, and its result.
Its own module, so that every area's checks (the gate's, the data contracts', the
accountability map's) build it without importing one another."""

from __future__ import annotations

from dataclasses import dataclass

from driftline.agent.contract import CriterionStatus, ReadinessArea


@dataclass(frozen=True)
class Criterion:
    area: ReadinessArea
    name: str
    threshold: str
    measured: str | None
    sample: int | None
    status: CriterionStatus

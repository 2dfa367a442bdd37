"""The named scores of a version's decisions (from reviews and feedback), as samples the detectors
compare: those of the decisions taken before its baseline was set against those of the window's.

A score arrives after its decision, often long after, so a baseline, fitted when it is set,
cannot hold them; its reference is read from the store when checked instead, from the
decisions the baseline's period covers. Numeric scores are compared as a distribution and a
mean, boolean ones as a rate (``driftline.detectors.verdict.check_window``'s ``samples``);
categorical labels are left to the page. Each score is the feature ``score:{name}``.
``score_trend`` gives each score's daily mean, by its decision's day, for the drift page.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from scipy import stats
from sqlmodel import Session, col, select

from driftline.collector.store.models import Decision, Feedback, Review

PREFIX = "score:"
REFERENCE_ROWS = 10_000  # reviews and feedback read, each, for a baseline's period
MAX_NAMES = 50  # scores checked, the most given in the baseline's period: each costs a test

TREND_ROWS = 50_000  # reviews and feedback read, each, for a trend

Value = float | bool
Samples = dict[str, tuple[list[Value], list[Value]]]


@dataclass(frozen=True)
class DayMean:
    """A score's mean (a boolean one's share of true) over the decisions of one day, with its
    95% interval (Student's t for a number, Wilson's for a share; None under two values)."""

    day: date
    count: int
    mean: float
    low: float | None
    high: float | None


def score_samples(
    session: Session, model: str, version: str, set_at: datetime, window: Sequence[UUID]
) -> Samples:
    """Per score name seen in the baseline's period (the MAX_NAMES most given): its values
    then, and in the window, each name of the kind it had then."""
    kinds: dict[str, str] = {}
    before = _values(_scores_before(session, model, version, set_at), kinds)
    now = _values(_scores_of(session, window), kinds)
    most = sorted(before, key=lambda name: (-len(before[name]), name))[:MAX_NAMES]
    return {f"{PREFIX}{name}": (before[name], now.get(name, [])) for name in most}


def score_trend(
    session: Session, model: str, version: str, since: datetime
) -> dict[str, list[DayMean]]:
    """Each numeric or boolean score's mean per day (of its decision, UTC) since ``since``,
    oldest first."""
    by_day: dict[date, list[Any]] = {}
    for table in (Review, Feedback):
        for scores, occurred_at in session.exec(
            select(table.scores, Decision.occurred_at)
            .join(Decision, col(Decision.decision_id) == col(table.decision_id))
            .where(
                col(Decision.model_name) == model,
                col(Decision.model_version) == version,
                col(Decision.occurred_at) >= since,
                col(table.scores).is_not(None),
            )
            .order_by(col(Decision.occurred_at).desc())
            .limit(TREND_ROWS)
        ).all():
            by_day.setdefault(occurred_at.date(), []).append(scores)
    kinds: dict[str, str] = {}
    trend: dict[str, list[DayMean]] = {}
    for day in sorted(by_day):
        for name, values in _values(by_day[day], kinds).items():
            trend.setdefault(f"{PREFIX}{name}", []).append(_day_mean(day, values))
    return trend


def _day_mean(day: date, values: list[Value]) -> DayMean:
    n = len(values)
    mean = math.fsum(float(v) for v in values) / n
    if n < 2 or not math.isfinite(mean) or max(abs(float(v)) for v in values) > 1e150:
        return DayMean(day, n, mean, None, None)  # squares of such values would overflow
    if isinstance(values[0], bool):
        interval = stats.binomtest(sum(map(bool, values)), n).proportion_ci(method="wilson")
        return DayMean(day, n, mean, interval.low, interval.high)
    spread = math.sqrt(sum((float(v) - mean) ** 2 for v in values) / (n - 1) / n)
    half = float(stats.t.ppf(0.975, n - 1)) * spread
    return DayMean(day, n, mean, mean - half, mean + half)


def _scores_before(session: Session, model: str, version: str, set_at: datetime) -> Iterable[Any]:
    for table in (Review, Feedback):
        yield from session.exec(
            select(table.scores)
            .join(Decision, col(Decision.decision_id) == col(table.decision_id))
            .where(
                col(Decision.model_name) == model,
                col(Decision.model_version) == version,
                col(Decision.occurred_at) <= set_at,
                col(table.scores).is_not(None),
            )
            .limit(REFERENCE_ROWS)
        ).all()


def _scores_of(session: Session, decisions: Sequence[UUID]) -> Iterable[Any]:
    for table in (Review, Feedback):
        for start in range(0, len(decisions), 500):  # bounded IN lists
            chunk = decisions[start : start + 500]
            yield from session.exec(
                select(table.scores).where(
                    col(table.decision_id).in_(chunk), col(table.scores).is_not(None)
                )
            ).all()


def _values(rows: Iterable[Any], kinds: dict[str, str]) -> dict[str, list[Value]]:
    """Each numeric or boolean score's values by name; a name given both kinds keeps the
    first kind seen (in ``kinds``, shared by both sides: a change of kind is the service's
    mistake, not drift)."""
    found: dict[str, list[Value]] = {}
    for scores in rows:
        for score in scores if isinstance(scores, list) else ():
            kind, name, value = score.get("kind"), score.get("name"), score.get("value")
            if not (isinstance(name, str) and isinstance(value, int | float)):
                continue  # a label (categorical), or a row that is not a score
            if kind in ("numeric", "boolean") and kinds.setdefault(name, kind) == kind:
                found.setdefault(name, []).append(
                    bool(value) if kind == "boolean" else float(value)
                )
    return found

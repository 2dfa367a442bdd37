"""What the API returns: public models, kept apart from the table models."""

from datetime import datetime
from typing import Literal

from sqlmodel import SQLModel

from collector.models import DecisionBase, DriftVerdictBase, FeedbackBase, ReviewBase


class DecisionPublic(DecisionBase):
    pass


class ReviewPublic(ReviewBase):
    pass


class FeedbackPublic(FeedbackBase):
    pass


class DecisionTrailPublic(SQLModel):
    decision: DecisionPublic
    reviews: list[ReviewPublic]
    feedback: list[FeedbackPublic]


class DecisionPage(SQLModel):
    items: list[DecisionPublic]
    next_cursor: str | None = None


class Health(SQLModel):
    status: str
    database: str


class DriftVerdictPublic(DriftVerdictBase):
    pass


class BaselinePublic(SQLModel):
    baseline_id: str
    set_at: datetime
    source: str
    set_by: str
    size: int
    features: dict[str, str]  # name: continuous, categorical or flag


class CheckStatus(SQLModel):
    """One check of one feature against the active baseline; ``since``: its last change."""

    feature: str
    test: str
    state: Literal["drifting", "ok"]
    since: datetime
    verdict: DriftVerdictPublic


class VersionDrift(SQLModel):
    model: str
    version: str
    state: Literal["drifting", "ok"]
    baseline: BaselinePublic
    drifting: list[CheckStatus]


class VersionDriftDetail(VersionDrift):
    checks: list[CheckStatus]  # every check that has had a verdict; the rest are ok
    history: list[DriftVerdictPublic]  # newest first

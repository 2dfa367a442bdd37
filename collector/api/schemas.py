"""What the API returns: public models, kept apart from the table models."""

from sqlmodel import SQLModel

from collector.models import DecisionBase, FeedbackBase, ReviewBase


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

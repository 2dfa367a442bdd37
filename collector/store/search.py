"""Searching decisions: the filters an auditor asks by, in time order with a keyset cursor.

The cursor is the position (time, decision id) of the last row handed out, so a page never
repeats or skips a stored decision however many arrive meanwhile. Exports use the same filter.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)
from sqlalchemy import Boolean, ColumnElement, exists, func, literal, tuple_
from sqlalchemy.ext.compiler import compiles
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from driftline.agent.contract import ReviewAction
from driftline.collector.store.models import Decision, Feedback, Review
from driftline.collector.store.prices import PriceTable
from driftline.collector.store.synthetic import MARK

Text = Annotated[str, Field(min_length=1, max_length=200)]


def _not_a_number(value: object) -> object:
    # pydantic would read a number as seconds since 1970; from a person that is a mistake.
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if numeric or (isinstance(value, str) and _reads_as_number(value)):
        raise ValueError("a time is an ISO 8601 date-time with a zone, not a number")
    return value


def _reads_as_number(text: str) -> bool:
    """Whether the text is a number as pydantic would read one: 12, -1.5, 4.6e-24, inf."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def in_utc(value: datetime) -> datetime:
    """The instant in UTC; ValueError for one the calendar cannot hold there (year 1 at +14:00,
    year 9999 at -14:00), which every store would refuse."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(
            f"{value.isoformat()} is before year 1 or after year 9999 once in UTC"
        ) from None


def _held_in_utc(value: datetime) -> datetime:
    in_utc(value)
    return value  # as written: a search's query string shows what was asked


Instant = Annotated[AwareDatetime, BeforeValidator(_not_a_number), AfterValidator(_held_in_utc)]
Probability = Annotated[float, Field(ge=0, le=1)]
Money = Annotated[float, Field(ge=0, allow_inf_nan=False)]
ScoreValue = Annotated[float, Field(allow_inf_nan=False)]


class DecisionFilter(BaseModel):
    """Every condition given must hold; none given: every decision."""

    model_config = ConfigDict(extra="forbid")

    service: Text | None = None
    model: Text | None = None
    version: Text | None = None
    since: Instant | None = Field(default=None, description="inclusive")
    until: Instant | None = Field(default=None, description="exclusive")
    subject: Text | None = Field(default=None, description="the decision's subject reference")
    automated: bool | None = Field(default=None, description="taken without a human")
    review_action: ReviewAction | None = Field(default=None, description="a review did this")
    reviewer: Text | None = Field(
        default=None, description="reviewed by (with review_action: that review)"
    )
    has_feedback: bool | None = None
    feedback_wrong: bool | None = Field(default=None, description="some feedback says it was wrong")
    min_confidence: Probability | None = None
    max_confidence: Probability | None = None
    has_violations: bool | None = Field(default=None, description="its inputs broke the contract")
    operation: Text | None = Field(default=None, description="the GenAI operation, as chat")
    provider: Text | None = Field(default=None, description="the GenAI provider, as openai")
    finish_reason: Text | None = Field(default=None, description="why generation stopped")
    score: Text | None = Field(
        default=None,
        description="a review or feedback gave this named score (numeric or boolean as 0 or 1)"
        " within min_score and max_score",
    )
    min_score: ScoreValue | None = None
    max_score: ScoreValue | None = None
    min_cost: Money | None = Field(default=None, description="in the price table's currency")
    max_cost: Money | None = None
    include_synthetic: bool = Field(
        default=False, description="also the decisions of load tests and incident drills"
    )
    order: Literal["asc", "desc"] = "asc"

    @model_validator(mode="after")
    def _ranges_of_something(self) -> DecisionFilter:
        if self.score is None and (self.min_score is not None or self.max_score is not None):
            raise ValueError("min_score and max_score need score: the name of the score")
        return self

    def conditions(self, prices: PriceTable | None = None) -> list[ColumnElement[bool]]:
        """The SQL conditions; a cost range needs the price table (PricesMissing without)."""
        decision_id = col(Decision.decision_id)
        equal = {
            Decision.service: self.service,
            Decision.model_name: self.model,
            Decision.model_version: self.version,
            Decision.subject_ref: self.subject,
            Decision.automated: self.automated,
            Decision.has_violations: self.has_violations,
            Decision.operation: self.operation,
            Decision.provider: self.provider,
            Decision.finish_reason: self.finish_reason,
        }
        where = [col(column) == value for column, value in equal.items() if value is not None]
        if not self.include_synthetic:
            where.append(~col(Decision.model_version).contains(MARK, autoescape=True))
        if self.since is not None:
            where.append(col(Decision.occurred_at) >= self.since)
        if self.until is not None:
            where.append(col(Decision.occurred_at) < self.until)
        if self.min_confidence is not None:
            where.append(col(Decision.confidence) >= self.min_confidence)
        if self.max_confidence is not None:
            where.append(col(Decision.confidence) <= self.max_confidence)
        if self.min_cost is not None or self.max_cost is not None:
            if prices is None:
                raise PricesMissing("a cost range needs a price table (DRIFTLINE_PRICES)")
            cost = prices.cost_column()
            if self.min_cost is not None:
                where.append(cost >= self.min_cost)
            if self.max_cost is not None:
                where.append(cost <= self.max_cost)
        if self.score is not None:
            where.append(ScoreInRange(self.score, self.min_score, self.max_score))
        if self.review_action is not None or self.reviewer is not None:
            review = exists().where(col(Review.decision_id) == decision_id)
            if self.review_action is not None:
                review = review.where(col(Review.action) == self.review_action)
            if self.reviewer is not None:
                review = review.where(col(Review.reviewer) == self.reviewer)
            where.append(review)
        if self.has_feedback is not None:
            feedback = exists().where(col(Feedback.decision_id) == decision_id)
            where.append(feedback if self.has_feedback else ~feedback)
        if self.feedback_wrong is not None:
            wrong = exists().where(
                col(Feedback.decision_id) == decision_id, col(Feedback.correct).is_(False)
            )
            where.append(wrong if self.feedback_wrong else ~wrong)
        return where

    def query_string(self) -> dict[str, str]:
        """The conditions given, as they would be written in a URL."""
        return {
            name: value.isoformat()
            if isinstance(value, datetime)
            else str(value).lower()
            if isinstance(value, bool)
            else str(value)
            for name, value in self.model_dump(exclude_none=True, exclude_defaults=True).items()
        }


class PricesMissing(ValueError):
    """A cost filter asked of a service that has no price table."""


class ScoreInRange(ColumnElement[bool]):
    """A review or a feedback of the decision gave the named score, numeric or boolean (as 0
    or 1), within the bounds given. SQL of each store's own JSON functions (below)."""

    inherit_cache = False
    type = Boolean()

    def __init__(self, name: str, low: float | None, high: float | None) -> None:
        self.name, self.low, self.high = name, low, high


# Per store: the JSON type function, the set-returning function over an array's items, and how
# an item's name, kind and value read (a boolean as 1 or 0).
_SCORE_SQL = {
    "sqlite": (
        "json_type", "json_each(judged.scores) AS item",
        "json_extract(item.value, '$.name')", "json_extract(item.value, '$.kind')",
        "json_extract(item.value, '$.value')",
    ),
    "postgresql": (
        "jsonb_typeof", "jsonb_array_elements(judged.scores) AS item(score)",
        "item.score->>'name'", "item.score->>'kind'",
        # Every branch guarded by the kind: PostgreSQL need not test the kind first in an AND.
        "CASE item.score->>'kind' WHEN 'boolean' THEN (item.score->>'value')::boolean::int"
        " WHEN 'numeric' THEN (item.score->>'value')::float8 END",
    ),
}  # fmt: skip


@compiles(ScoreInRange, "sqlite")
@compiles(ScoreInRange, "postgresql")
def _score_in_range(element: ScoreInRange, compiler: Any, **kw: Any) -> str:
    json_type, items, name, kind, value = _SCORE_SQL[compiler.dialect.name]

    def bound(parameter: object) -> str:
        return str(compiler.process(literal(parameter), **kw))

    judged = " UNION ALL ".join(
        f"SELECT {table}.scores AS scores FROM {table}"
        f" WHERE {table}.decision_id = decisions.decision_id"
        f" AND {json_type}({table}.scores) = 'array'"
        for table in ("reviews", "feedback")
    )
    where = [f"{name} = {bound(element.name)}", f"{kind} <> 'categorical'"]
    if element.low is not None:
        where.append(f"{value} >= {bound(element.low)}")
    if element.high is not None:
        where.append(f"{value} <= {bound(element.high)}")
    return f"EXISTS (SELECT 1 FROM ({judged}) AS judged, {items} WHERE {' AND '.join(where)})"


@dataclass(frozen=True)
class Cursor:
    """A position in time order: the last decision of the previous page."""

    occurred_at: datetime
    decision_id: uuid.UUID

    def encode(self) -> str:
        position = [self.occurred_at.isoformat(), str(self.decision_id)]
        return base64.urlsafe_b64encode(json.dumps(position).encode()).decode()

    @classmethod
    def decode(cls, token: str) -> Cursor:
        """Raise ValueError for a token this service did not hand out."""
        try:
            occurred_at, decision_id = json.loads(base64.urlsafe_b64decode(token.encode()))
            at = datetime.fromisoformat(occurred_at)
            if at.tzinfo is None:
                raise ValueError("no time zone")
            return cls(in_utc(at), uuid.UUID(decision_id))
        except (ValueError, TypeError, AttributeError) as error:
            raise ValueError(f"not a cursor from this service: {error}") from None


def matching(
    where: DecisionFilter, after: Cursor | None = None, prices: PriceTable | None = None
) -> SelectOfScalar[Decision]:
    """The decisions ``where`` selects, in its order, after ``after``."""
    statement = select(Decision).where(*where.conditions(prices))
    position = tuple_(col(Decision.occurred_at), col(Decision.decision_id))
    if after is not None:
        bound = tuple_(after.occurred_at, after.decision_id)
        statement = statement.where(position > bound if where.order == "asc" else position < bound)
    if where.order == "asc":
        return statement.order_by(col(Decision.occurred_at), col(Decision.decision_id))
    return statement.order_by(col(Decision.occurred_at).desc(), col(Decision.decision_id).desc())


def search(
    session: Session,
    where: DecisionFilter,
    after: Cursor | None = None,
    limit: int = 100,
    prices: PriceTable | None = None,
) -> tuple[list[Decision], Cursor | None]:
    """A page of decisions, and the cursor of the next page when there may be one."""
    rows = list(session.exec(matching(where, after, prices).limit(limit)).all())
    last = rows[-1] if len(rows) == limit else None
    return rows, Cursor(last.occurred_at, last.decision_id) if last else None


def count(session: Session, where: DecisionFilter, prices: PriceTable | None = None) -> int:
    statement = select(func.count()).select_from(Decision).where(*where.conditions(prices))
    return session.exec(statement).one()

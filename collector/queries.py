"""Read queries on the store, kept out of the API routes."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, tuple_
from sqlmodel import Session, col, select

from collector.models import Decision, DriftVerdict, Feedback, LedgerEntry, Review


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
            return cls(datetime.fromisoformat(occurred_at), uuid.UUID(decision_id))
        except (ValueError, TypeError) as error:
            raise ValueError(f"not a cursor from this service: {error}") from None


@dataclass(frozen=True)
class DecisionTrail:
    decision: Decision
    reviews: list[Review]
    feedback: list[Feedback]


def decision_trail(*, session: Session, decision_id: uuid.UUID) -> DecisionTrail | None:
    decision = session.get(Decision, decision_id)
    if decision is None:
        return None
    reviews = session.exec(
        select(Review).where(Review.decision_id == decision_id).order_by(col(Review.occurred_at))
    ).all()
    feedback = session.exec(
        select(Feedback)
        .where(Feedback.decision_id == decision_id)
        .order_by(col(Feedback.occurred_at))
    ).all()
    return DecisionTrail(decision, list(reviews), list(feedback))


def search_decisions(
    *,
    session: Session,
    model: str | None = None,
    version: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after: Cursor | None = None,
    limit: int = 100,
) -> list[Decision]:
    """Decisions in time order (then by id), from ``since`` inclusive to ``until`` exclusive."""
    statement = select(Decision)
    if model is not None:
        statement = statement.where(Decision.model_name == model)
    if version is not None:
        statement = statement.where(Decision.model_version == version)
    if since is not None:
        statement = statement.where(Decision.occurred_at >= since)
    if until is not None:
        statement = statement.where(Decision.occurred_at < until)
    if after is not None:
        statement = statement.where(
            tuple_(col(Decision.occurred_at), col(Decision.decision_id))
            > tuple_(after.occurred_at, after.decision_id)
        )
    statement = statement.order_by(col(Decision.occurred_at), col(Decision.decision_id))
    return list(session.exec(statement.limit(limit)).all())


def count_ledger_entries(*, session: Session, event_types: Sequence[str] | None = None) -> int:
    statement = select(func.count()).select_from(LedgerEntry)
    if event_types is not None:
        statement = statement.where(col(LedgerEntry.event_type).in_(event_types))
    return session.exec(statement).one()


def latest_verdicts(
    *, session: Session, model: str, version: str, baseline_id: str
) -> list[DriftVerdict]:
    """Per (feature, test), the latest verdict against this baseline: its current state."""
    about = (
        col(DriftVerdict.model_name) == model,
        col(DriftVerdict.model_version) == version,
        col(DriftVerdict.baseline_id) == baseline_id,
    )
    latest = (
        select(
            col(DriftVerdict.feature).label("feature"),
            col(DriftVerdict.test).label("test"),
            func.max(DriftVerdict.occurred_at).label("at"),
        )
        .where(*about)
        .group_by(col(DriftVerdict.feature), col(DriftVerdict.test))
        .subquery()
    )
    statement = (
        select(DriftVerdict)
        .join(
            latest,
            (col(DriftVerdict.feature) == latest.c.feature)
            & (col(DriftVerdict.test) == latest.c.test)
            & (col(DriftVerdict.occurred_at) == latest.c.at),
        )
        .where(*about)
        .order_by(col(DriftVerdict.feature), col(DriftVerdict.test))
    )
    return list(session.exec(statement).all())


def verdict_history(
    *, session: Session, model: str, version: str, limit: int = 100
) -> list[DriftVerdict]:
    """The verdicts of a model version, newest first."""
    statement = (
        select(DriftVerdict)
        .where(DriftVerdict.model_name == model, DriftVerdict.model_version == version)
        .order_by(col(DriftVerdict.occurred_at).desc(), col(DriftVerdict.event_id).desc())
    )
    return list(session.exec(statement.limit(limit)).all())

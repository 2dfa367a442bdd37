"""Legal holds: a model's or a subject's records are kept from retention and erasure."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ColumnElement, false, or_
from sqlmodel import Session, col, select

from driftline.collector.store.models import Decision, LegalHold


class HoldError(ValueError):
    """A hold asked for names neither a model nor a subject, or an unknown hold."""


def place_hold(
    session: Session,
    *,
    model: str | None,
    subject: str | None,
    reason: str,
    created_by: str,
    now: datetime,
) -> LegalHold:
    if (model is None) == (subject is None):
        raise HoldError("a legal hold is on one model or one subject: give exactly one")
    hold = LegalHold(
        id=uuid.uuid4(),
        model_name=model,
        subject_ref=subject,
        reason=reason,
        created_by=created_by,
        created_at=now,
    )
    session.add(hold)
    return hold


def release_hold(session: Session, hold_id: uuid.UUID, now: datetime) -> LegalHold:
    hold = session.get(LegalHold, hold_id)
    if hold is None:
        raise HoldError(f"no legal hold {hold_id}")
    if hold.released_at is None:
        hold.released_at = now
        session.add(hold)
    return hold


def active_holds(session: Session) -> list[LegalHold]:
    return list(
        session.exec(
            select(LegalHold)
            .where(col(LegalHold.released_at).is_(None))
            .order_by(col(LegalHold.created_at))
        )
    )


def not_held(holds: list[LegalHold]) -> ColumnElement[bool]:
    """A condition on decisions: none of ``holds`` covers it."""
    models = [h.model_name for h in holds if h.model_name is not None]
    subjects = [h.subject_ref for h in holds if h.subject_ref is not None]
    held = or_(
        col(Decision.model_name).in_(models) if models else false(),
        col(Decision.subject_ref).in_(subjects) if subjects else false(),
    )
    return ~held

"""Silences: created with matchers, an author, a comment and an end; listed; expired early.
The router leaves matching alerts out of notifications while a silence is active."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from sqlmodel import Session, col, select

from collector.matchers import Matcher
from collector.models import Silence

SilenceState = Literal["active", "pending", "expired"]


def create_silence(
    session: Session,
    *,
    matchers: Sequence[str],
    starts_at: datetime,
    ends_at: datetime,
    created_by: str,
    comment: str,
    now: datetime,
) -> Silence:
    """Raise ValueError (naming the matcher or the times) for a silence that cannot work."""
    if not matchers:
        raise ValueError("a silence needs at least one matcher")
    parsed = [Matcher.parse(text) for text in matchers]  # MatcherError is a ValueError
    if ends_at <= starts_at:
        raise ValueError(f"ends_at {ends_at:%Y-%m-%d %H:%M:%S}Z is not after starts_at")
    if ends_at <= now:
        raise ValueError("the silence would already be over")
    silence = Silence(
        id=uuid.uuid4(),
        matchers=[str(m) for m in parsed],
        starts_at=starts_at,
        ends_at=ends_at,
        created_by=created_by,
        comment=comment,
        created_at=now,
    )
    session.add(silence)
    return silence


def state_of(silence: Silence, now: datetime) -> SilenceState:
    if silence.ends_at <= now:
        return "expired"
    return "active" if silence.starts_at <= now else "pending"


def list_silences(session: Session) -> Sequence[Silence]:
    return session.exec(select(Silence).order_by(col(Silence.ends_at).desc())).all()


def expire_silence(session: Session, silence_id: uuid.UUID, now: datetime) -> Silence | None:
    """End it now (it stays listed, as expired); None if there is no such silence."""
    silence = session.get(Silence, silence_id)
    if silence is not None and silence.ends_at > now:
        silence.ends_at = max(now, silence.starts_at)
        session.add(silence)
    return silence

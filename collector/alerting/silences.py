"""Silences: created with matchers, an author, a comment and an end; listed; expired early.
The router leaves matching alerts out of notifications while a silence is active."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from sqlmodel import Session, col, select

from driftline.collector.alerting.matchers import Matcher
from driftline.collector.store.models import Silence

SilenceState = Literal["active", "pending", "expired"]

# What one silence may hold: enough for any real one, and a bound on what each router pass and
# each page carries.
MAX_MATCHERS = 32
MAX_NAME = 200  # characters of a matcher's label name
MAX_VALUE = 1_000  # characters of its value (or regex), unquoted
MAX_MATCHER_TEXT = MAX_NAME + 10 * MAX_VALUE + 16  # as written: quoted, escaped, spaced
MAX_COMMENT = 2_000


def parse_matchers(texts: Sequence[str]) -> list[Matcher]:
    """Raise ValueError naming the matcher (``matchers[2]``) that is wrong or too long."""
    if not texts:
        raise ValueError("a silence needs at least one matcher")
    if len(texts) > MAX_MATCHERS:
        raise ValueError(f"a silence has at most {MAX_MATCHERS} matchers, not {len(texts)}")
    parsed = []
    for index, text in enumerate(texts):
        if len(text) > MAX_MATCHER_TEXT:
            raise ValueError(f"matchers[{index}] is longer than {MAX_MATCHER_TEXT} characters")
        try:
            matcher = Matcher.parse(text)
        except ValueError as error:  # MatcherError
            raise ValueError(f"matchers[{index}]: {error}") from None
        if len(matcher.name) > MAX_NAME:
            raise ValueError(f"matchers[{index}]: a label name has at most {MAX_NAME} characters")
        if len(matcher.value) > MAX_VALUE:
            raise ValueError(f"matchers[{index}]: a value has at most {MAX_VALUE} characters")
        parsed.append(matcher)
    return parsed


def check_comment(comment: str) -> str:
    if not comment.strip():
        raise ValueError("comment: say why, for whoever is paged next")
    if len(comment) > MAX_COMMENT:
        raise ValueError(f"comment: at most {MAX_COMMENT} characters, not {len(comment)}")
    return comment


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
    """Raise ValueError (naming the matcher, the comment or the times) for a silence that
    cannot work or is too big."""
    parsed = parse_matchers(matchers)
    check_comment(comment)
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

"""API tokens and roles: auditors read, operators also manage silences, baselines and holds,
admins also manage tokens and erase. Only a SHA-256 of each token is stored; the token itself
is shown once, when it is created. The web page signs in with a token and then holds a session
of its own, which signing out ends.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlmodel import Session, col, select

from driftline.collector.store.models import ApiToken, UiSession

Role = Literal["auditor", "operator", "admin"]
ROLES: tuple[Role, ...] = ("auditor", "operator", "admin")  # each may do all the previous may
PREFIX = "dl_"
UI_PREFIX = "dls_"  # a web-page session's secret, in its cookie


def ranks_at_least(role: str, needed: Role) -> bool:
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class TokenNameTaken(ValueError):
    """Names are unique, those of revoked tokens too: each names who did what in the records."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"a token named {name!r} exists already (revoked tokens keep their names); "
            "choose another name"
        )


@dataclass(frozen=True)
class IssuedToken:
    token: str  # the secret: shown once, never stored
    record: ApiToken


def create_token(
    session: Session,
    *,
    name: str,
    role: Role,
    created_by: str,
    now: datetime,
    expires_at: datetime | None = None,
) -> IssuedToken:
    """Raise TokenNameTaken if the name is in use (the table's unique constraint also holds
    against a concurrent create)."""
    if _named(session, name):
        raise TokenNameTaken(name)
    token = PREFIX + secrets.token_urlsafe(32)
    record = ApiToken(
        id=uuid.uuid4(),
        name=name,
        role=role,
        secret_sha256=_hash(token),
        created_by=created_by,
        created_at=now,
        expires_at=expires_at,
    )
    session.add(record)
    return IssuedToken(token, record)


def free_name(session: Session, wanted: str) -> str:
    """``wanted``, or ``wanted-2``, ``wanted-3``... the first that no token has."""
    name, n = wanted, 1
    while _named(session, name):
        n += 1
        name = f"{wanted}-{n}"
    return name


def _named(session: Session, name: str) -> bool:
    return session.exec(select(ApiToken.id).where(ApiToken.name == name)).first() is not None


def authenticate(session: Session, token: str, now: datetime) -> ApiToken | str:
    """The token's record, or why it is refused."""
    record = session.exec(select(ApiToken).where(ApiToken.secret_sha256 == _hash(token))).first()
    if record is None:
        return "unknown token"
    return _usable(record, now)


def _usable(record: ApiToken, now: datetime) -> ApiToken | str:
    if record.revoked_at is not None:
        return "token revoked"
    if record.expires_at is not None and record.expires_at <= now:
        return "token expired"
    return record


def open_ui_session(session: Session, *, token: ApiToken, now: datetime, lasts: timedelta) -> str:
    """A web-page session for the token: the secret its cookie holds, shown this once. It
    never outlives the token; the caller commits."""
    secret = UI_PREFIX + secrets.token_urlsafe(32)
    ends = now + lasts
    if token.expires_at is not None:
        ends = min(ends, token.expires_at)
    session.add(
        UiSession(
            id=uuid.uuid4(),
            secret_sha256=_hash(secret),
            token_id=token.id,
            created_at=now,
            expires_at=ends,
        )
    )
    return secret


def ui_session_token(session: Session, secret: str, now: datetime) -> ApiToken | str:
    """The token of an open web-page session, or why the session is refused."""
    found = session.exec(select(UiSession).where(UiSession.secret_sha256 == _hash(secret))).first()
    if found is None:
        return "not signed in"
    if found.ended_at is not None:
        return "signed out"
    if found.expires_at <= now:
        return "session expired"
    token = session.get(ApiToken, found.token_id)
    if token is None:
        return "unknown token"
    return _usable(token, now)


def end_ui_session(session: Session, secret: str, now: datetime) -> None:
    """Sign out: the session's cookie, wherever it was copied, no longer works."""
    found = session.exec(select(UiSession).where(UiSession.secret_sha256 == _hash(secret))).first()
    if found is not None and found.ended_at is None:
        found.ended_at = now
        session.add(found)


def revoke_token(session: Session, token_id: uuid.UUID, now: datetime) -> ApiToken | None:
    record = session.get(ApiToken, token_id)
    if record is not None and record.revoked_at is None:
        record.revoked_at = now
        session.add(record)
    return record


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.exec(select(ApiToken).order_by(col(ApiToken.created_at))))


def has_admin(session: Session, now: datetime) -> bool:
    return any(
        token.role == "admin"
        and token.revoked_at is None
        and (token.expires_at is None or token.expires_at > now)
        for token in list_tokens(session)
    )

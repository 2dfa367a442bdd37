"""API tokens and roles: auditors read, operators also manage silences, baselines and holds,
admins also manage tokens and erase. Only a SHA-256 of each token is stored; the token itself
is shown once, when it is created.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlmodel import Session, col, select

from collector.models import ApiToken

Role = Literal["auditor", "operator", "admin"]
ROLES: tuple[Role, ...] = ("auditor", "operator", "admin")  # each may do all the previous may
PREFIX = "dl_"


def ranks_at_least(role: str, needed: Role) -> bool:
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


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


def authenticate(session: Session, token: str, now: datetime) -> ApiToken | str:
    """The token's record, or why it is refused."""
    record = session.exec(select(ApiToken).where(ApiToken.secret_sha256 == _hash(token))).first()
    if record is None:
        return "unknown token"
    if record.revoked_at is not None:
        return "token revoked"
    if record.expires_at is not None and record.expires_at <= now:
        return "token expired"
    return record


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

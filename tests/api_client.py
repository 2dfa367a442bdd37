"""The API under test, served in-process, called with a real token of the role a test needs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from driftline.collector.audit.access import Role, create_token, free_name
from driftline.collector.audit.integrity import KeyRing
from driftline.collector.web.api.app import create_app


def new_token(engine: Engine, role: Role, name: str | None = None, **options: Any) -> str:
    with Session(engine) as session:
        issued = create_token(
            session,
            name=name or free_name(session, f"test-{role}"),
            role=role,
            created_by="tests",
            now=datetime.now(UTC),
            **options,
        )
        session.commit()
    return issued.token


def api_client(
    engine: Engine, role: Role = "admin", keys: KeyRing | None = None, **app_options: Any
) -> TestClient:
    """A client whose every request carries a fresh token of ``role``."""
    app = create_app(engine, keys=keys or KeyRing.of(Ed25519PrivateKey.generate()), **app_options)
    client = TestClient(app)
    client.headers["Authorization"] = f"Bearer {new_token(engine, role)}"
    return client

"""Access: every route but health refuses a missing, wrong, expired or revoked token; each
role does what it may and no more; every read is recorded; hostile filter values get 4xx."""

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from collector.access import revoke_token
from collector.api.app import create_app
from collector.integrity import KeyRing
from collector.models import ApiToken
from tests.api_client import new_token

HEALTH = {"/healthz"}


@pytest.fixture
def app_client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine, keys=KeyRing.of(Ed25519PrivateKey.generate()))) as client:
        yield client


def routes(client: TestClient) -> list[tuple[str, str]]:
    """(method, path with placeholders filled) of every operation the OpenAPI document lists."""
    found = []
    for path, operations in client.get("/openapi.json").json()["paths"].items():
        if path in HEALTH:
            continue
        filled = re.sub(r"\{[a-z_]+\}", str(uuid.uuid4()), path)
        found += [(method.upper(), filled) for method in operations]
    return found


def call(client: TestClient, method: str, path: str, token: str | None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.request(method, path, headers=headers, json={}).status_code


def test_every_route_but_health_refuses_a_missing_wrong_expired_or_revoked_token(
    engine: Engine, app_client: TestClient
) -> None:
    expired = new_token(engine, "admin", expires_at=datetime.now(UTC) - timedelta(seconds=1))
    revoked = new_token(engine, "admin", name="leaver")
    with Session(engine) as session:
        record = session.exec(select(ApiToken).where(ApiToken.name == "leaver")).one()
        revoke_token(session, record.id, datetime.now(UTC))
        session.commit()
    checked = routes(app_client)
    assert len(checked) >= 20
    for method, path in checked:
        for token in (None, "dl_not-a-token", expired, revoked):
            assert call(app_client, method, path, token) == 401, (method, path, token)
    assert app_client.get("/healthz").status_code == 200


def test_an_auditor_reads_but_cannot_write(engine: Engine, app_client: TestClient) -> None:
    auditor = new_token(engine, "auditor")
    writes = [(m, p) for m, p in routes(app_client) if m != "GET"]
    assert {p.split("/")[1] for _, p in writes} >= {"silences", "tokens", "holds", "integrity"}
    for method, path in writes:
        assert call(app_client, method, path, auditor) == 403, (method, path)
    assert call(app_client, "GET", "/decisions", auditor) == 200
    assert call(app_client, "GET", "/tokens", auditor) == 403  # admins manage tokens


def test_an_operator_manages_silences_and_checkpoints_but_not_tokens_or_holds(
    engine: Engine, app_client: TestClient
) -> None:
    operator = {"Authorization": f"Bearer {new_token(engine, 'operator')}"}
    silence = {"matchers": ["model=x"], "created_by": "me", "comment": "deploy", "duration": "1h"}
    assert app_client.post("/silences", json=silence, headers=operator).status_code == 201
    assert app_client.post("/integrity/checkpoints", headers=operator).status_code == 201
    hold = {"model": "x", "reason": "litigation"}
    assert app_client.post("/holds", json=hold, headers=operator).status_code == 403
    body = {"name": "x", "role": "admin"}
    assert app_client.post("/tokens", json=body, headers=operator).status_code == 403


def test_an_admin_creates_a_token_that_works_once_and_not_after_revocation(
    engine: Engine, app_client: TestClient
) -> None:
    admin = {"Authorization": f"Bearer {new_token(engine, 'admin')}"}
    created = app_client.post("/tokens", json={"name": "ann", "role": "auditor"}, headers=admin)
    assert created.status_code == 201
    issued = created.json()
    assert call(app_client, "GET", "/decisions", issued["token"]) == 200
    listed = app_client.get("/tokens", headers=admin).json()
    assert all("token" not in t and "secret_sha256" not in t for t in listed)
    assert app_client.delete(f"/tokens/{issued['id']}", headers=admin).status_code == 200
    assert call(app_client, "GET", "/decisions", issued["token"]) == 401


def test_every_read_is_recorded_with_who_what_and_when(
    engine: Engine, app_client: TestClient
) -> None:
    auditor = new_token(engine, "auditor", name="ann")
    admin = {"Authorization": f"Bearer {new_token(engine, 'admin', name='root')}"}
    app_client.get(
        "/decisions",
        params={"model": "credit-risk"},
        headers={"Authorization": f"Bearer {auditor}"},
    )
    reads = app_client.get("/audit/reads", params={"token_name": "ann"}, headers=admin).json()
    assert [(r["path"], r["query"], r["role"]) for r in reads] == [
        ("/decisions", "model=credit-risk", "auditor")
    ]
    assert datetime.fromisoformat(reads[0]["at"]) > datetime.now(UTC) - timedelta(minutes=1)


@pytest.mark.parametrize(
    "params",
    [
        {"model": "x' OR '1'='1"},
        {"subject": "'; DROP TABLE decisions; --"},
        {"model": "m" * 201},
        {"reviewer": "r" * 10_000},
        {"min_confidence": "1; DELETE FROM decisions"},
        {"since": "yesterday"},
        {"review_action": "delete"},
        {"cursor": "' OR 1=1 --"},
        {"unknown_filter": "1"},
        {"limit": "100000"},
    ],
)
def test_hostile_or_oversized_filters_are_4xx_and_change_nothing(
    engine: Engine, app_client: TestClient, params: dict[str, str]
) -> None:
    auditor = {"Authorization": f"Bearer {new_token(engine, 'auditor')}"}
    response = app_client.get("/decisions", params=params, headers=auditor)
    if "'" in next(iter(params.values())) and next(iter(params)) in ("model", "subject"):
        # A legal string: it is a value to compare with, never SQL, so it matches nothing.
        assert response.status_code == 200 and response.json()["items"] == []
    else:
        assert 400 <= response.status_code < 500, response.text
    assert app_client.get("/decisions", headers=auditor).status_code == 200  # table still there


def test_unknown_or_repeated_parameters_are_refused_on_every_route(
    engine: Engine, app_client: TestClient
) -> None:
    admin = {"Authorization": f"Bearer {new_token(engine, 'admin')}"}
    misspelt = app_client.get("/audit/reads", params={"token_nme": "ann"}, headers=admin)
    assert misspelt.status_code == 422 and "token_nme" in misspelt.text
    repeated = app_client.get("/decisions?model=a&model=b", headers=admin)
    assert repeated.status_code == 422 and "once: model" in repeated.text
    assert (
        app_client.get("/audit/reads", params={"token_name": "ann"}, headers=admin).status_code
        == 200
    )

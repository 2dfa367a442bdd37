"""Access: every route but health refuses a missing, wrong, expired or revoked token; each
role does what it may and no more; every read is recorded; hostile filter values get 4xx."""

import base64
import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from driftline.collector.audit.access import revoke_token
from driftline.collector.audit.integrity import KeyRing
from driftline.collector.store.models import ApiToken
from driftline.collector.web.api.app import create_app
from tests.api_client import new_token
from tests.test_cli import driftline

HEALTH = {"/healthz", "/metrics"}  # open: liveness, and counts by route template


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
    return int(client.request(method, path, headers=headers, json={}).status_code)


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
    silence = {"matchers": ["model=x"], "comment": "deploy", "duration": "1h"}
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


def test_token_names_are_unique_through_the_api_and_the_command_line(
    engine: Engine, app_client: TestClient
) -> None:
    """A name says who did what (silences, holds, exports, the record of reads): two tokens
    by one name would make those records ambiguous."""
    admin = {"Authorization": f"Bearer {new_token(engine, 'admin')}"}
    first = app_client.post("/tokens", json={"name": "ann", "role": "auditor"}, headers=admin)
    assert first.status_code == 201
    again = app_client.post("/tokens", json={"name": "ann", "role": "admin"}, headers=admin)
    assert again.status_code == 409 and "ann" in again.json()["detail"]
    app_client.delete(f"/tokens/{first.json()['id']}", headers=admin)
    revoked = app_client.post("/tokens", json={"name": "ann", "role": "admin"}, headers=admin)
    assert revoked.status_code == 409  # a revoked token's name still names its records
    assert [t["name"] for t in app_client.get("/tokens", headers=admin).json()].count("ann") == 1
    url = engine.url.render_as_string(hide_password=False)
    created = driftline("token", "create", "--name", "ann", "--role", "auditor",
                        "--database-url", url)  # fmt: skip
    assert created.returncode == 2 and "ann" in created.stderr and "dl_" not in created.stdout


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


def names(answer: Any, field: str) -> bool:
    """Whether a refusal names the field: in the location of a validation error, or in the
    sentence of another."""
    detail = answer.json()["detail"]
    if isinstance(detail, str):
        return field in detail
    return any(field in [str(part) for part in problem["loc"]] for problem in detail)


# Each is a real instant where it is written, and falls before year 1 or after 9999 in UTC.
BEYOND_THE_CALENDAR = [
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+23:59",
    "9999-12-31T23:59:59-23:59",
]


@pytest.mark.parametrize("moment", BEYOND_THE_CALENDAR)
def test_times_beyond_the_calendar_in_utc_are_422_naming_the_field(
    engine: Engine, app_client: TestClient, moment: str
) -> None:
    admin = {"Authorization": f"Bearer {new_token(engine, 'admin')}"}
    silence = {"matchers": ["model=x"], "comment": "deploy"}
    cursor = base64.urlsafe_b64encode(json.dumps([moment, str(uuid.uuid4())]).encode()).decode()
    asks: list[tuple[str, str, dict[str, Any], str]] = [
        ("GET", "/decisions", {"params": {"since": moment}}, "since"),
        ("GET", "/decisions", {"params": {"until": moment}}, "until"),
        ("GET", "/decisions", {"params": {"cursor": cursor}}, "cursor"),
        ("GET", "/decisions/export", {"params": {"since": moment}}, "since"),
        ("GET", "/audit/reads", {"params": {"since": moment}}, "since"),
        ("POST", "/tokens", {"json": {"name": "t", "role": "auditor", "expires_at": moment}},
         "expires_at"),
        ("POST", "/silences", {"json": silence | {"starts_at": moment, "duration": "1h"}},
         "starts_at"),
        ("POST", "/silences", {"json": silence | {"ends_at": moment}}, "ends_at"),
    ]  # fmt: skip
    for method, path, request, field in asks:
        answer = app_client.request(method, path, headers=admin, **request)
        assert answer.status_code == 422, (path, field, answer.text)
        assert names(answer, field), (path, answer.text)
    assert app_client.get("/tokens", headers=admin).json()[-1]["name"] != "t"
    assert app_client.get("/silences", headers=admin).json() == []
    # The last instants the calendar holds are fine.
    for edge in ("0001-01-01T14:00:00+14:00", "9999-12-31T09:59:59-14:00"):
        assert (
            app_client.get("/decisions", params={"since": edge}, headers=admin).status_code == 200
        )


def test_a_silence_that_would_end_beyond_the_calendar_is_422_naming_the_field(
    engine: Engine, app_client: TestClient
) -> None:
    admin = {"Authorization": f"Bearer {new_token(engine, 'admin')}"}
    silence = {"matchers": ["model=x"], "comment": "deploy"}
    for body, field in [
        ({"starts_at": "9999-12-31T23:00:00Z", "duration": "2h"}, "duration"),
        ({"duration": "9" * 30 + "w"}, "duration"),
    ]:
        answer = app_client.post("/silences", json=silence | body, headers=admin)
        assert answer.status_code == 422 and names(answer, field), answer.text


NUL = "a\x00b"
# A body each route takes, so that only the NUL is wrong.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/silences"): {"matchers": ["model=x"], "comment": "deploy", "duration": "1h"},
    ("POST", "/tokens"): {"name": "nul-test", "role": "auditor"},
    ("POST", "/holds"): {"model": "credit-risk", "reason": "litigation"},
    ("POST", "/subjects/{subject}/erasure"): {"reason": "asked"},
}
BODY_STRINGS: dict[tuple[str, str], list[tuple[str, ...]]] = {
    ("POST", "/silences"): [("matchers", "0"), ("comment",)],
    ("POST", "/tokens"): [("name",)],
    ("POST", "/holds"): [("model",), ("reason",)],
    ("POST", "/subjects/{subject}/erasure"): [("reason",)],
}


def _with_nul(body: dict[str, Any], where: tuple[str, ...]) -> dict[str, Any]:
    changed: dict[str, Any] = json.loads(json.dumps(body))
    *parents, last = where
    node = changed
    for part in parents:
        node = node[part]
    if isinstance(node, list):
        node[int(last)] = NUL
    else:
        node[last] = NUL
    return changed


def test_a_nul_in_any_parameter_or_body_string_is_422_naming_it(
    engine: Engine, app_client: TestClient
) -> None:
    """PostgreSQL keeps no NUL in text: without a check each of these was a 500 there."""
    admin = {"Authorization": f"Bearer {new_token(engine, 'admin')}"}
    paths = app_client.get("/openapi.json").json()["paths"]
    asked = 0
    for template, operations in paths.items():
        for method, operation in operations.items():
            key = (method.upper(), template)
            body = BODIES.get(key)
            placeholders = re.findall(r"\{([a-z_]+)\}", template)

            def url(
                nul_in: str | None = None, template: str = template, names: list[str] = placeholders
            ) -> str:
                filled = template
                for name in names:
                    value = quote(NUL) if name == nul_in else str(uuid.uuid4())
                    filled = filled.replace(f"{{{name}}}", value)
                return filled

            asks: list[tuple[str, dict[str, Any], str]] = [
                (url(name), {"json": body}, name) for name in placeholders
            ]
            asks += [
                (url(), {"params": {p["name"]: NUL}, "json": body}, p["name"])
                for p in operation.get("parameters", [])
                if p["in"] == "query"
            ]
            asks += [
                (url(), {"json": _with_nul(body or {}, where)}, where[0])
                for where in BODY_STRINGS.get(key, [])
            ]
            for target, request, field in asks:
                answer = app_client.request(key[0], target, headers=admin, **request)
                assert answer.status_code == 422, (key, field, answer.text)
                assert names(answer, field), (key, answer.text)
                asked += 1
    assert asked >= 40
    assert app_client.get("/silences", headers=admin).json() == []
    assert app_client.get("/holds", headers=admin).json() == []
    assert "nul-test" not in [t["name"] for t in app_client.get("/tokens", headers=admin).json()]

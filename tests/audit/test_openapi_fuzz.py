"""Schemathesis against the OpenAPI document, with and without a token: no server error, and
every response as the document says (status code, content type, body schema). Bounded to a
few examples per operation so that it fits in the suite."""

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import allow_header_conformance, positive_data_acceptance
from sqlmodel import Session

from agent.contract import encode
from collector.api.app import create_app
from collector.database import make_engine, migrate
from collector.ingest import RawMessage, write_batch
from collector.integrity import KeyRing
from tests import events
from tests.api_client import new_token

# Schemathesis needs the application when the module is collected (its pytest fixture
# loader does not work with pytest 9), so the app is made here and its store filled below.
STORE = Path(tempfile.mkdtemp(prefix="driftline-fuzz-"))
ENGINE = make_engine(f"sqlite:///{STORE / 'driftline.db'}")
schema = schemathesis.openapi.from_asgi(
    "/openapi.json", create_app(ENGINE, keys=KeyRing.of(Ed25519PrivateKey.generate()))
)
TOKEN: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def store() -> Iterator[None]:
    migrate(ENGINE)
    decision = events.decision()
    batch = [decision, events.review(decision.decision_id), events.feedback(decision.decision_id)]
    with Session(ENGINE) as session:
        write_batch(session, [RawMessage("t", 0, i, None, encode(e)) for i, e in enumerate(batch)])
        session.commit()
    TOKEN["admin"] = new_token(ENGINE, "admin")
    yield
    ENGINE.dispose()
    shutil.rmtree(STORE)


bounded = settings(
    max_examples=int(os.environ.get("DRIFTLINE_FUZZ_EXAMPLES", "12")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@schema.parametrize()
@bounded
def test_authorized_requests_get_documented_answers(case: schemathesis.Case) -> None:
    # Not every schema-valid value is acceptable: a cursor is opaque, a matcher must be a
    # valid regular expression, a hold names a model or a subject. Those get a 422 with the
    # reason, which the other checks still hold to the document. And FastAPI answers OPTIONS
    # with a 405 whose Allow lists only the first route of the path, when its GET and
    # POST are separate routes (as in every router here).
    case.call_and_validate(
        headers={"Authorization": f"Bearer {TOKEN['admin']}"},
        excluded_checks=[positive_data_acceptance, allow_header_conformance],
    )


@schema.parametrize()
@bounded
def test_requests_without_a_token_are_refused_as_documented(case: schemathesis.Case) -> None:
    response = case.call()
    case.validate_response(response, excluded_checks=[allow_header_conformance])
    if case.path != "/healthz" and case.method.upper() == case.operation.method.upper():
        assert response.status_code == 401, (case.method, case.path, response.text)

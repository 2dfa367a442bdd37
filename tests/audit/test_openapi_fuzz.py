"""Schemathesis against the OpenAPI document, with and without a token, on SQLite and on
PostgreSQL: no server error, and every response as the document says (status code, content
type, body schema). Its strategies reach what a store may refuse: every date-time is also drawn
at offsets up to +-23:59 and in years 1 and 9999 (instants the calendar cannot hold in UTC),
and any string may carry a NUL, which PostgreSQL keeps nowhere. Bounded to a few examples per
operation, each sent to both stores, so that it fits in the suite."""

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest
import schemathesis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import allow_header_conformance, positive_data_acceptance
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlmodel import Session

from driftline.agent.contract import Event, encode
from driftline.collector.audit.integrity import KeyRing
from driftline.collector.consume.ingest import RawMessage, write_batch
from driftline.collector.store.database import make_engine, migrate
from driftline.collector.web.api.app import create_app
from driftline.collector.web.api.auth import OPEN_PATHS
from tests import events
from tests.api_client import new_token
from tests.conftest import POSTGRES_ADMIN_URL

# Schemathesis needs the application when the module is collected (its pytest fixture
# loader does not work with pytest 9), so the app is made here; each call is then made on each
# store in turn, by pointing the app at its engine (every request reads it from app.state).
STORE = Path(tempfile.mkdtemp(prefix="driftline-fuzz-"))
SQLITE = make_engine(f"sqlite:///{STORE / 'driftline.db'}")
APP = create_app(SQLITE, keys=KeyRing.of(Ed25519PrivateKey.generate()))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
STORES: dict[str, tuple[Engine, str]] = {}  # name: engine, an admin token of its own

# Offsets as far as ISO 8601 writes them (+-23:59); the edges of the calendar at the widest.
_OFFSET = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
_EDGES = [
    datetime(year, month, day, hour, minute, tzinfo=timezone(timedelta(minutes=offset)))
    for year, month, day, hour, minute in [(1, 1, 1, 0, 0), (9999, 12, 31, 23, 59)]
    for offset in (-(23 * 60 + 59), -14 * 60, 0, 14 * 60, 23 * 60 + 59)
]
schemathesis.openapi.format(
    "date-time",
    st.one_of(
        st.sampled_from(_EDGES),
        st.datetimes(
            min_value=datetime(1, 1, 1),
            max_value=datetime(9999, 12, 31, 23, 59, 59),
            timezones=st.one_of(st.none(), _OFFSET),  # none: refused, a time needs its zone
        ),
    ).map(datetime.isoformat),
)


def _strings(value: Any, where: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, str):
        yield where
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*where, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*where, index))


def _with_nul(value: Any, where: tuple[Any, ...], at: int) -> Any:
    if not where:
        return value[:at] + "\x00" + value[at:]
    changed = json.loads(json.dumps(value))
    node = changed
    for part in where[:-1]:
        node = node[part]
    text = node[where[-1]]
    node[where[-1]] = text[:at] + "\x00" + text[at:]
    return changed


def _maybe_nul(value: Any) -> st.SearchStrategy[Any]:
    """The value as drawn, or (one time in three) with a NUL in one of its strings."""
    spots = list(_strings(value))
    if not spots:
        return st.just(value)
    nul = st.tuples(st.sampled_from(spots), st.integers(0, 20)).map(
        lambda spot: _with_nul(value, spot[0], spot[1])
    )
    return st.one_of(st.just(value), st.just(value), nul)


for _container in ("path_parameters", "query", "body"):
    schema.hooks.register_hook_with_name(
        lambda _context, value: _maybe_nul(value), f"flatmap_{_container}"
    )


@pytest.fixture(scope="module", autouse=True)
def stores() -> Iterator[None]:
    name = f"driftline_fuzz_{uuid.uuid4().hex[:12]}"
    admin = make_url(POSTGRES_ADMIN_URL)
    libpq = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    postgresql = make_engine(admin.set(database=name).render_as_string(hide_password=False))
    try:
        for store, engine in (("sqlite", SQLITE), ("postgresql", postgresql)):
            migrate(engine)
            decision = events.decision()
            batch: list[Event] = [
                decision,
                events.review(decision.decision_id),
                events.feedback(decision.decision_id),
            ]
            with Session(engine) as session:
                raw = [RawMessage("t", 0, i, None, encode(e)) for i, e in enumerate(batch)]
                write_batch(session, raw)
                session.commit()
            STORES[store] = (engine, new_token(engine, "admin"))
        yield
    finally:
        STORES.clear()
        SQLITE.dispose()
        postgresql.dispose()
        shutil.rmtree(STORE)
        with psycopg.connect(libpq, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def on_each_store(call: Callable[[str], None]) -> None:
    """The call on every store in turn, given its admin token; a failure names the store."""
    for store, (engine, token) in STORES.items():
        APP.state.engine = engine
        try:
            call(token)
        except Exception as failure:
            failure.add_note(f"on {store}")
            raise


bounded = settings(
    max_examples=int(os.environ.get("DRIFTLINE_TEST_FUZZ_EXAMPLES", "12")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@schema.parametrize()
@bounded
def test_authorized_requests_get_documented_answers(case: schemathesis.Case[Any]) -> None:
    # Not every schema-valid value is acceptable: a cursor is opaque, a matcher must be a
    # valid regular expression, a hold names a model or a subject. Those get a 422 with the
    # reason, which the other checks still hold to the document. And FastAPI answers OPTIONS
    # with a 405 whose Allow lists only the first route of the path, when its GET and
    # POST are separate routes (as in every router here).
    def authorized(token: str) -> None:
        case.call_and_validate(
            headers={"Authorization": f"Bearer {token}"},
            excluded_checks=[positive_data_acceptance, allow_header_conformance],
        )

    on_each_store(authorized)


@schema.parametrize()
@bounded
def test_requests_without_a_token_are_refused_as_documented(
    case: schemathesis.Case[Any],
) -> None:
    def unauthorized(_token: str) -> None:
        response = case.call()
        case.validate_response(response, excluded_checks=[allow_header_conformance])
        if case.path not in OPEN_PATHS and case.method.upper() == case.operation.method.upper():
            assert response.status_code == 401, (case.method, case.path, response.text)

    on_each_store(unauthorized)

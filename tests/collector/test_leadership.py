"""One active detector worker (or alert router): on PostgreSQL an advisory lock elects it, a
standby takes over once the leader lets go or its connection dies, and the old leader can tell
that it lost the lead."""

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from driftline.collector.core.leadership import Leadership
from driftline.collector.store.database import make_engine
from tests.waiting import wait_for

ROLE = "driftline-detector"


@pytest.fixture
def second_engine(engine: Engine) -> Iterator[Engine]:
    other = make_engine(engine.url.render_as_string(hide_password=False))
    yield other
    other.dispose()


def test_only_one_worker_leads_and_a_standby_takes_over(
    engine: Engine, second_engine: Engine
) -> None:
    first, second = Leadership(engine, ROLE), Leadership(second_engine, ROLE)
    assert first.hold()
    if engine.dialect.name == "sqlite":
        assert second.hold()  # one file, one machine: every worker leads
        return
    assert not second.hold()
    assert first.hold(), "the leader keeps the lead"
    first.release()
    assert second.hold()
    assert not first.hold()
    second.release()


def test_a_leader_whose_connection_dies_loses_the_lead(
    engine: Engine, second_engine: Engine
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("the lock is a PostgreSQL session's")
    first, second = Leadership(engine, ROLE), Leadership(second_engine, ROLE)
    assert first.hold()
    with second_engine.connect() as admin:
        admin.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_locks"
                " WHERE locktype = 'advisory' AND pid <> pg_backend_pid()"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        )
    # pg_terminate_backend only signals: the old session ends, and frees the lock, a moment later.
    wait_for(second.hold, bool, timeout_s=10, what="the standby to take the lead")
    assert not first.still_held(), "the old leader notices its session is gone"
    assert not first.hold(), "and cannot take the lead back while the standby holds it"
    second.release()


def test_each_role_has_its_own_lead(engine: Engine, second_engine: Engine) -> None:
    detector, router = Leadership(engine, ROLE), Leadership(second_engine, "driftline-router")
    assert detector.hold() and router.hold()
    if engine.dialect.name == "postgresql":
        assert not Leadership(engine, "driftline-router").hold(), "a second router stands by"
    detector.release()
    router.release()

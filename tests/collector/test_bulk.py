"""The collector's bulk writes store exactly what a Core insert of the same rows stores.

On PostgreSQL they go through COPY, whose text format has escaping of its own (backslash, tab,
newline, ``\\N`` for NULL): for any content, odd Unicode, quotes, backslashes, control
characters and numbers too large for 64 bits included, the rows read back are the same, and
what the database refuses (NUL on PostgreSQL) is refused by both paths alike. ``among`` finds
the same rows as ``IN``.
"""

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, Table, exc, insert, select
from sqlmodel import Session

from driftline.agent.contract import (
    DecisionEvent,
    DecisionPayload,
    Event,
    ModelRef,
    ReviewEvent,
    ReviewPayload,
)
from driftline.collector.store import bulk, ledger
from driftline.collector.store.models import LedgerEntry
from driftline.collector.store.projections import row_for
from tests import events, strategies

# COPY's own specials, and what every other layer escapes, weighted up among all of Unicode.
# Not NUL: PostgreSQL refuses a row with one whatever else it holds, which would hide every
# other difference; it has a test of its own.
pieces = st.characters(codec="utf-8", exclude_characters="\x00") | st.sampled_from(
    ["\\", "\\N", "\\.", "\t", "\n", "\r", '"', "'", "\x7f", ",", "\\x00", "\\u0000"]
)
hostile = st.lists(pieces, max_size=8).map("".join)
named = st.lists(pieces, min_size=1, max_size=8).map("".join)
values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**80), 2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | hostile,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(hostile, children, max_size=3)
    ),
    max_leaves=8,
)
decisions = st.builds(
    DecisionEvent,
    decision_id=st.uuids(),
    service=named,
    model=st.builds(ModelRef, name=named, version=named),
    occurred_at=strategies.timestamps,
    trace_id=st.none() | strategies.hex32,
    payload=st.builds(
        DecisionPayload,
        inputs=st.dictionaries(hostile, values, max_size=4),
        output=values,
        confidence=strategies.probabilities,
        class_scores=st.none() | st.dictionaries(hostile, strategies.probabilities, max_size=2),
        latency_ms=st.floats(0, 1e6),
        automated=st.booleans(),
        subject_ref=st.none() | named,
        contract_violations=st.lists(hostile, max_size=2),
    ),
)
reviews = st.builds(
    ReviewEvent,
    decision_id=st.uuids(),
    service=named,
    payload=st.builds(
        ReviewPayload,
        reviewer=named,
        action=st.sampled_from(["approve", "escalate"]),
        new_output=values,
        rationale=st.none() | hostile,
    ),
)


def _payload(inputs: dict[str, Any]) -> DecisionPayload:
    return DecisionPayload(
        inputs=inputs, output="approve", confidence=0.5, latency_ms=1.0, automated=True
    )


Write = Callable[[Session, Table, list[dict[str, Any]]], None]


def _core(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    session.execute(insert(table), rows)


def _stored(engine: Engine, write: Write, table: Table, rows: list[dict[str, Any]]) -> object:
    """What ``write`` leaves in the table, as the driver and as SQLAlchemy read it back, or the
    kind of error it raised; rolled back either way."""
    with Session(engine) as session:
        try:
            write(session, table, rows)
            raw = session.connection().exec_driver_sql(f"SELECT * FROM {table.name}").all()
            typed = session.execute(select(table)).all()
            return sorted(map(tuple, raw), key=repr), sorted(map(tuple, typed), key=repr)
        except (exc.DBAPIError, OverflowError) as error:
            return type(error)
        finally:
            session.rollback()


def _tables_and_rows(event: Event) -> list[tuple[Table, list[dict[str, Any]]]]:
    """The ledger entry and read-model row the collector writes for an event."""
    entry = ledger.new_entry(event.model_dump(mode="json", by_alias=True), kafka_offset=2**40)
    start = ledger.ChainHead(next_seq=0, previous_hash=ledger.GENESIS)
    now = datetime.now(UTC)
    entries = ledger.chain("events", 0, start, [entry], now, {event.event_id: -1.5})
    read_model, row = row_for(event)
    return [(LedgerEntry.__table__, entries), (read_model.__table__, [row])]  # type: ignore[attr-defined]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(event=decisions | reviews)
def test_bulk_insert_stores_what_a_core_insert_stores(engine: Engine, event: Event) -> None:
    for table, rows in _tables_and_rows(event):
        core = _stored(engine, _core, table, rows)
        fast = _stored(engine, bulk.insert_rows, table, rows)
        assert fast == core, table.name


@pytest.mark.parametrize(
    "nul",
    [{"service": "loan\x00desk"}, {"payload": _payload({"re\x00gion": "north"})}],
    ids=["in a text column", "in a JSON key"],
)
def test_nul_is_refused_by_both_paths_alike_on_postgresql(engine: Engine, nul: Any) -> None:
    """As a DataError, the refusal isolation.store splits a batch on; SQLite keeps it."""
    (_, _), (table, rows) = _tables_and_rows(events.decision(**nul))
    outcome = _stored(engine, bulk.insert_rows, table, rows)
    assert outcome == _stored(engine, _core, table, rows)
    if engine.dialect.name == "postgresql":
        assert outcome is exc.DataError
    else:
        assert isinstance(outcome, tuple)


@pytest.mark.parametrize("absent", [0, 1, 700])
def test_among_finds_what_in_finds(engine: Engine, absent: int) -> None:
    table: Table = LedgerEntry.__table__  # type: ignore[attr-defined]
    rows = [_tables_and_rows(events.decision())[0][1][0] for _ in range(4)]
    for seq, row in enumerate(rows):
        row["seq"] = seq
    asked = [rows[0]["event_id"], rows[2]["event_id"], *(uuid.uuid4() for _ in range(absent))]
    with Session(engine) as session:
        bulk.insert_rows(session, table, rows)
        dialect = session.connection().dialect
        found = session.execute(
            select(table.c.event_id).where(bulk.among(table.c.event_id, asked, dialect))
        ).scalars()
        assert set(found) == {rows[0]["event_id"], rows[2]["event_id"]}
        session.rollback()

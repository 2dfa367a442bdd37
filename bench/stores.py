"""Fresh stores for the benches: a migrated SQLite file, or a database of its own on the
PostgreSQL server at DRIFTLINE_TEST_POSTGRES_URL (default
postgresql://postgres@127.0.0.1:5432/test), dropped afterwards. And the baselines the
collector's write rate is held against: the rows it wrote, read back, inserted the plain ways
(SQLAlchemy Core's executemany; COPY on PostgreSQL)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy import JSON, Engine, func, insert, make_url, select

from driftline.collector.store.database import make_engine, migrate
from driftline.collector.store.models import Decision, LedgerEntry

POSTGRES_ADMIN_URL = os.environ.get(
    "DRIFTLINE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@contextmanager
def sqlite_store(directory: Path, name: str = "bench") -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{directory / f'{name}.db'}")
    migrate(engine)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def postgres_store(name: str = "bench") -> Iterator[Engine]:
    database = f"driftline_{name}_{os.getpid()}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{database}"')
    url = make_url(POSTGRES_ADMIN_URL).set(database=database)
    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        migrate(engine)
        yield engine
    finally:
        engine.dispose()
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE "{database}" WITH (FORCE)')


@contextmanager
def store(kind: str, directory: Path, name: str = "bench") -> Iterator[Engine]:
    """``kind`` is "sqlite" or "postgresql"."""
    opened = sqlite_store(directory, name) if kind == "sqlite" else postgres_store(name)
    with opened as engine:
        yield engine


def database_url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def stored_events(engine: Engine) -> int:
    """How many events the store's ledger holds."""
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(LedgerEntry)).scalar_one())


# One batch of the collector's rows, as read back: its ledger entries and its decisions.
Rows = tuple[list[dict[str, Any]], list[dict[str, Any]]]
_TABLES = (LedgerEntry.__table__, Decision.__table__)  # type: ignore[attr-defined]


def collected_rows(engine: Engine, batch: int) -> Iterator[Rows]:
    """The rows the collector wrote (ledger entry and decision of each event), in chain order,
    ``batch`` events at a time."""
    ledger_columns, decision_columns = (table.columns for table in _TABLES)
    statement = (
        select(*ledger_columns, *decision_columns)
        .join_from(_TABLES[0], _TABLES[1], ledger_columns.event_id == decision_columns.event_id)
        .order_by(ledger_columns.topic, ledger_columns.partition, ledger_columns.seq)
    )
    split = len(ledger_columns)
    with engine.connect() as reader:
        result = reader.execution_options(yield_per=batch).execute(statement)
        for rows in result.partitions(batch):
            yield (
                [dict(zip(ledger_columns.keys(), row[:split], strict=True)) for row in rows],
                [dict(zip(decision_columns.keys(), row[split:], strict=True)) for row in rows],
            )


@dataclass(frozen=True)
class Baseline:
    """A plain way to insert a batch of rows, one transaction a batch: ``prepare`` (not timed)
    puts the rows in the form its ``insert`` takes."""

    name: str
    prepare: Callable[[Rows], Any]
    insert: Callable[[Engine, Any], None]


def _executemany(engine: Engine, rows: Rows) -> None:
    with engine.begin() as connection:
        for table, table_rows in zip(_TABLES, rows, strict=True):
            connection.execute(insert(table), table_rows)


def _copy_tuples(rows: Rows) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """Per table, its COPY statement and the rows as tuples psycopg writes (JSON as Jsonb)."""
    copied = []
    for table, table_rows in zip(_TABLES, rows, strict=True):
        names = list(table_rows[0])
        json_columns = {n for n in names if isinstance(table.columns[n].type, JSON)}
        listed = ", ".join(f'"{name}"' for name in names)
        tuples = [
            tuple(Jsonb(row[n]) if n in json_columns else row[n] for n in names)
            for row in table_rows
        ]
        copied.append((f"COPY {table.name} ({listed}) FROM STDIN", tuples))
    return copied


def _copy(engine: Engine, copied: list[tuple[str, list[tuple[Any, ...]]]]) -> None:
    with engine.begin() as connection:
        cursor = connection.connection.cursor()
        for statement, tuples in copied:
            with cursor.copy(statement) as copy:
                for row in tuples:
                    copy.write_row(row)


EXECUTEMANY = Baseline("executemany", lambda rows: rows, _executemany)
COPY = Baseline("copy", _copy_tuples, _copy)


def baselines(kind: str) -> list[Baseline]:
    """SQLAlchemy Core's executemany on either store; COPY too on PostgreSQL, its fastest."""
    return [EXECUTEMANY, COPY] if kind == "postgresql" else [EXECUTEMANY]

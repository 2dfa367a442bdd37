"""Fresh stores for the benches: a migrated SQLite file, or a database of its own on the
PostgreSQL server at DRIFTLINE_TEST_POSTGRES_URL (default
postgresql://postgres@127.0.0.1:5432/test), dropped afterwards."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy import Engine, func, make_url, select

from collector.store.database import make_engine, migrate
from collector.store.models import LedgerEntry

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

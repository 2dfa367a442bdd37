"""Many rows of one table written, or looked up by one column, at the database's own pace.

The collector stores hundreds of rows a batch. Through an ORM or Core insert, building and
converting each row's parameters cost more than the database took to store them, and an ``IN``
over a batch's ids was rendered and parsed again at every batch. Here:

- ``insert_rows`` converts each value with its column type's own bind processor (the conversion
  a Core insert makes, so a row is stored exactly as an insert of the same values stores it),
  column by column, and hands the rows to the driver in one call: PostgreSQL's
  ``COPY ... FROM STDIN`` (psycopg 3, text format, whose escaping psycopg does), SQLite's
  executemany. It writes on the session's connection, inside the caller's transaction.
- ``among`` is ``column IN (values)`` as one bound parameter whatever the number of values (an
  array on PostgreSQL, a JSON array on SQLite), so its statement is compiled once.

A driver's error from COPY is raised as SQLAlchemy raises any other (``DBAPIError.instance``),
so a caller tells a refusal of the data from a lost connection the same way for both paths.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Column,
    Dialect,
    LargeBinary,
    Table,
    any_,
    bindparam,
    func,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session

Processor = Callable[[Any], Any]


@dataclass(frozen=True)
class _Plan:
    """How one table's rows with one set of columns are written on one dialect."""

    names: tuple[str, ...]
    processors: tuple[Processor | None, ...]
    statement: str


@lru_cache(maxsize=64)
def _plan(table: Table, dialect: Dialect, names: tuple[str, ...]) -> _Plan:
    columns = [table.columns[name] for name in names]
    processors = tuple(_processor(column, dialect) for column in columns)
    quote = dialect.identifier_preparer.quote
    listed = ", ".join(quote(column.name) for column in columns)
    target = dialect.identifier_preparer.format_table(table)
    if dialect.name == "postgresql":
        statement = f"COPY {target} ({listed}) FROM STDIN"
    else:  # SQLite's driver takes qmark parameters
        statement = f"INSERT INTO {target} ({listed}) VALUES ({', '.join('?' * len(columns))})"
    return _Plan(names, processors, statement)


def _processor(column: Column[Any], dialect: Dialect) -> Processor | None:
    if isinstance(column.type, LargeBinary):
        # Both drivers take bytes as they are; the DBAPI's Binary wrapper would only copy them.
        return None
    processor: Processor | None = column.type.dialect_impl(dialect).bind_processor(dialect)
    return processor


def insert_rows(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert rows, each giving the same columns (those of the first), in the caller's
    transaction. Raise as a Core insert of them would: a refused value as a DataError or
    IntegrityError, a trigger's RAISE as its SQLSTATE says."""
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    plan = _plan(table, dialect, tuple(rows[0]))
    # Column by column: one map per column instead of a branch per value.
    columns = []
    for name, processor in zip(plan.names, plan.processors, strict=True):
        values = [row[name] for row in rows]
        columns.append(values if processor is None else list(map(processor, values)))
    converted = list(zip(*columns, strict=True))
    if dialect.name != "postgresql":
        connection.exec_driver_sql(plan.statement, converted)
        return
    raw = connection.connection
    cursor = raw.cursor()
    try:
        with cursor.copy(plan.statement) as copy:
            for row in converted:
                copy.write_row(row)
    except dialect.loaded_dbapi.Error as error:
        invalidated = dialect.is_disconnect(error, raw, cursor)
        if invalidated:
            connection.invalidate(error)
        raise DBAPIError.instance(
            plan.statement,
            None,
            error,
            dialect.loaded_dbapi.Error,
            connection_invalidated=invalidated,
            dialect=dialect,
        ) from error
    finally:
        cursor.close()


def among(column: Any, values: Sequence[Any], dialect: Dialect) -> ColumnElement[bool]:
    """``column IN (values)`` with the values as one bound parameter."""
    if dialect.name == "postgresql":
        array = bindparam("among", list(values), type_=ARRAY(column.type))
        return column == any_(array)  # type: ignore[no-any-return]
    processor = _processor(column, dialect)
    converted = [processor(value) for value in values] if processor else list(values)
    listed = func.json_each(bindparam("among", json.dumps(converted)))
    return column.in_(select(literal_column("value")).select_from(listed))  # type: ignore[no-any-return]

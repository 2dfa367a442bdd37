"""Alembic environment: runs on the connection that ``driftline.collector.store.database``
``migrate`` passes in."""

from alembic import context
from sqlmodel import SQLModel

import driftline.collector.store.models  # noqa: F401  (registers the tables on SQLModel.metadata)

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=True,  # SQLite alters tables by copying them
)
with context.begin_transaction():
    context.run_migrations()

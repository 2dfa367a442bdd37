"""Generative decisions and named scores (event schema 2): a decision's operation, provider,
response model, finish reason and token counts; the named scores of reviews and feedback; a
confidence that may be absent; and the evidence of a drift verdict (a text check's words).

Decisions stored before carried their operation and input and output tokens in the ledger only:
they are copied into the new columns from the ledger's bytes, so that each row is again what
its event projects to (row verification compares them).

Revision ID: 0015
Revises: 0014
"""

import json

import sqlalchemy as sa
from alembic import op

from driftline.collector.store.sqltypes import JSONDocument

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

TEXT_COLUMNS = {"operation": 100, "provider": 100, "response_model": 200, "finish_reason": 100}
TOKEN_COLUMNS = ("input_tokens", "output_tokens", "cached_input_tokens", "reasoning_tokens")
MAX_TOKENS = 2**53  # the contract's: a version 1 count over it is kept as unknown, as projected
BATCH = 1_000


def upgrade() -> None:
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.alter_column("confidence", existing_type=sa.Float(), nullable=True)
        for name, length in TEXT_COLUMNS.items():
            batch_op.add_column(sa.Column(name, sa.String(length=length), nullable=True))
        for name in TOKEN_COLUMNS:
            batch_op.add_column(sa.Column(name, sa.BigInteger(), nullable=True))
    for table in ("reviews", "feedback"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("scores", JSONDocument, nullable=True))
    with op.batch_alter_table("drift_verdicts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("evidence", JSONDocument, nullable=True))
    _copy_from_the_ledger()


def _copy_from_the_ledger() -> None:
    """The operation and token counts of decisions stored before, read from their events."""
    connection = op.get_bind()
    decisions = sa.table(
        "decisions",
        sa.column("event_id", sa.Uuid()),
        sa.column("operation", sa.String()),
        sa.column("input_tokens", sa.BigInteger()),
        sa.column("output_tokens", sa.BigInteger()),
    )
    entries = sa.table(
        "ledger_entries",
        sa.column("event_id", sa.Uuid()),
        sa.column("event_type", sa.String()),
        sa.column("event_bytes", sa.LargeBinary()),
    )
    update = (
        decisions.update()
        .where(decisions.c.event_id == sa.bindparam("key"))
        .values(
            operation=sa.bindparam("operation"),
            input_tokens=sa.bindparam("input_tokens"),
            output_tokens=sa.bindparam("output_tokens"),
        )
    )
    rows = connection.execute(
        sa.select(entries.c.event_id, entries.c.event_bytes).where(
            entries.c.event_type == "decision"
        ),
        execution_options={"yield_per": BATCH},
    )
    changes: list[dict[str, object]] = []
    for event_id, event_bytes in rows:
        payload = json.loads(event_bytes)["payload"]
        usage = payload.get("usage") or {}
        if payload.get("operation") is None and not usage:
            continue
        counts = {name: usage.get(name) for name in ("input_tokens", "output_tokens")}
        counts = {name: None if (n or 0) > MAX_TOKENS else n for name, n in counts.items()}
        changes.append({"key": event_id, "operation": payload.get("operation"), **counts})
        if len(changes) == BATCH:
            connection.execute(update, changes)
            changes = []
    if changes:
        connection.execute(update, changes)


def downgrade() -> None:
    with op.batch_alter_table("drift_verdicts", schema=None) as batch_op:
        batch_op.drop_column("evidence")
    for table in ("reviews", "feedback"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("scores")
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        for name in (*TOKEN_COLUMNS, *reversed(TEXT_COLUMNS)):
            batch_op.drop_column(name)
        batch_op.alter_column("confidence", existing_type=sa.Float(), nullable=False)

"""the auditor's service: checkpoints, tokens, reads, holds, erasures, exports, search indexes

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from collector.sqltypes import JSONDocument, UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_checkpoints",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("topic", sa.String(length=249), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("chain_hash", sa.LargeBinary(), nullable=False),
        sa.Column("signed_at", UTCDateTime(), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_checkpoints_chain", "ledger_checkpoints", ["topic", "partition", "seq"], unique=False
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("secret_sha256", sa.LargeBinary(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("secret_sha256"),
    )
    op.create_table(
        "audit_reads",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("token_id", sa.Uuid(), nullable=False),
        sa.Column("token_name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_reads_time", "audit_reads", ["at"], unique=False)
    op.create_index("ix_audit_reads_token_id", "audit_reads", ["token_id"], unique=False)
    op.create_table(
        "legal_holds",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("model_name", sa.String(length=200), nullable=True),
        sa.Column("subject_ref", sa.String(length=200), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("released_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "erasures",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("subject_ref", sa.String(length=200), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("decisions", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "exports",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("format", sa.String(length=10), nullable=False),
        sa.Column("query", JSONDocument, nullable=False),
        sa.Column("ledger_heads", JSONDocument, nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("completed_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("ledger_entries") as batch_op:
        batch_op.add_column(sa.Column("erased_at", UTCDateTime(), nullable=True))
    with op.batch_alter_table("decisions") as batch_op:
        batch_op.add_column(
            sa.Column("has_violations", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.drop_index("ix_decisions_model_time")
        batch_op.create_index(
            "ix_decisions_model_time",
            ["model_name", "model_version", "occurred_at", "decision_id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_decisions_service_time", ["service", "occurred_at", "decision_id"], unique=False
        )
    decisions = sa.table(
        "decisions",
        sa.column("has_violations", sa.Boolean()),
        sa.column("contract_violations", JSONDocument),
    )
    op.execute(
        decisions.update()
        .where(decisions.c.contract_violations != sa.cast("[]", JSONDocument))
        .values(has_violations=True)
    )
    op.create_index("ix_reviews_reviewer", "reviews", ["reviewer"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_reviews_reviewer", table_name="reviews")
    with op.batch_alter_table("decisions") as batch_op:
        batch_op.drop_index("ix_decisions_service_time")
        batch_op.drop_index("ix_decisions_model_time")
        batch_op.create_index(
            "ix_decisions_model_time", ["model_name", "model_version", "occurred_at"], unique=False
        )
        batch_op.drop_column("has_violations")
    with op.batch_alter_table("ledger_entries") as batch_op:
        batch_op.drop_column("erased_at")
    for table in ("exports", "erasures", "legal_holds", "audit_reads", "api_tokens"):
        op.drop_table(table)
    op.drop_table("ledger_checkpoints")

"""the auditor's service: checkpoints, tokens, reads, holds, erasures, exports, search indexes

Revision ID: 0006
Revises: 0005
"""

import hashlib

import sqlalchemy as sa
from alembic import op

from driftline.collector.store import ledger
from driftline.collector.store.ledger import GENESIS
from driftline.collector.store.sqltypes import JSONDocument, UTCDateTime

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
    _redigest_chains()


def _redigest_chains() -> None:
    """Before 0006 a digest covered an event's bytes; from 0006 it covers a decision's inputs
    through their hash, so that they can be erased. No checkpoint was signed before 0006, so
    the chains can be recomputed, but only once they verify under the old rule: rewriting a
    broken chain would hide the break."""
    entries = sa.table(
        "ledger_entries",
        sa.column("topic", sa.String()),
        sa.column("partition", sa.Integer()),
        sa.column("seq", sa.BigInteger()),
        sa.column("event_bytes", sa.LargeBinary()),
        sa.column("event_digest", sa.LargeBinary()),
        sa.column("chain_hash", sa.LargeBinary()),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(entries).order_by(entries.c.topic, entries.c.partition, entries.c.seq)
    ).all()
    updates = []
    chain: tuple[str, int] | None = None
    for row in rows:
        if (row.topic, row.partition) != chain:
            chain, seq, old_hash, new_hash = (row.topic, row.partition), 0, GENESIS, GENESIS
        old_digest = hashlib.sha256(row.event_bytes).digest()
        old_hash = hashlib.sha256(old_hash + old_digest).digest()
        if (row.seq, old_digest, old_hash) != (seq, row.event_digest, row.chain_hash):
            raise RuntimeError(
                f"ledger chain {chain} breaks at entry {seq} under the rule before 0006; "
                "not migrating it (find the break with the previous version's `driftline verify`)"
            )
        digest = ledger.digest(row.event_bytes)
        new_hash = ledger.link(new_hash, digest)
        updates.append(
            {"t": row.topic, "p": row.partition, "s": row.seq, "d": digest, "h": new_hash}
        )
        seq += 1
    if updates:
        bind.execute(
            entries.update()
            .where(
                entries.c.topic == sa.bindparam("t"),
                entries.c.partition == sa.bindparam("p"),
                entries.c.seq == sa.bindparam("s"),
            )
            .values(event_digest=sa.bindparam("d"), chain_hash=sa.bindparam("h")),
            updates,
        )


def downgrade() -> None:
    # Digests stay in the 0006 form: a 0005 collector would call these chains broken.
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

"""ledger_entries.entry_format and inputs_salt: new entries hash a decision's inputs with a salt
of their own, destroyed on erasure, and link over what the collector recorded of them; erasures
and export manifests are signed

Entries stored before keep format 1 and verify as they always did.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

from driftline.collector.store.sqltypes import JSONDocument

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("entry_format", sa.Integer(), nullable=False, server_default="1")
        )
        batch_op.add_column(sa.Column("inputs_salt", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("erasures", schema=None) as batch_op:
        # Erasures recorded before were not signed: they are reported as unsigned, not broken.
        batch_op.add_column(sa.Column("key_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("signature", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("exports", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("tampered", JSONDocument, nullable=False, server_default="[]")
        )
        batch_op.add_column(sa.Column("key_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("signature", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("exports", schema=None) as batch_op:
        batch_op.drop_column("signature")
        batch_op.drop_column("key_id")
        batch_op.drop_column("tampered")
    with op.batch_alter_table("erasures", schema=None) as batch_op:
        batch_op.drop_column("signature")
        batch_op.drop_column("key_id")
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_column("inputs_salt")
        batch_op.drop_column("entry_format")

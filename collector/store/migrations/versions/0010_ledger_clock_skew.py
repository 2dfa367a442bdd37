"""ledger_entries.clock_skew_s: events dated far from the collector's clock are flagged; and an
index for retention, which now counts from when an entry was recorded

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        # Entries recorded before were not checked: none is flagged.
        batch_op.add_column(sa.Column("clock_skew_s", sa.Float(), nullable=True))
    op.create_index("ix_ledger_unerased_time", "ledger_entries", ["erased_at", "recorded_at"])


def downgrade() -> None:
    op.drop_index("ix_ledger_unerased_time", table_name="ledger_entries")
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_column("clock_skew_s")

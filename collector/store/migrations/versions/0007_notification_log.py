"""notification_log: what each receiver was last sent about each alert group

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

from driftline.collector.store.sqltypes import JSONDocument, UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notification_log",
        sa.Column("receiver", sa.String(length=200), nullable=False),
        sa.Column("group_key", sa.String(length=2000), nullable=False),
        sa.Column("firing", JSONDocument, nullable=False),
        sa.Column("resolved", JSONDocument, nullable=False),
        sa.Column("notified_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("receiver", "group_key"),
    )


def downgrade() -> None:
    op.drop_table("notification_log")

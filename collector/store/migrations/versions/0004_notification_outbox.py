"""notification_outbox: notifications stored before they are sent

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from driftline.collector.store.sqltypes import JSONDocument, UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notification_outbox",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("receiver", sa.String(length=200), nullable=False),
        sa.Column("integration", sa.String(length=40), nullable=False),
        sa.Column("group_key", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("fingerprints", JSONDocument, nullable=False),
        sa.Column("common_labels", JSONDocument, nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("body", JSONDocument, nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("notification_outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_due", ["state", "next_attempt_at"], unique=False)


def downgrade() -> None:
    op.drop_table("notification_outbox")

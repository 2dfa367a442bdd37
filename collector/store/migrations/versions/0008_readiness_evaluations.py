"""readiness_evaluations: the go-live gate's evaluations of each model version

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

from driftline.collector.store.sqltypes import JSONDocument, UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "readiness_evaluations",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("model_version", sa.String(length=200), nullable=False),
        sa.Column("asked_by", sa.String(length=200), nullable=False),
        sa.Column("window_start", UTCDateTime(), nullable=False),
        sa.Column("window_end", UTCDateTime(), nullable=False),
        sa.Column("verdict", sa.String(length=20), nullable=False),
        sa.Column("criteria", JSONDocument, nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index(
        "ix_readiness_version",
        "readiness_evaluations",
        ["model_name", "model_version", "occurred_at"],
    )


def downgrade() -> None:
    op.drop_table("readiness_evaluations")

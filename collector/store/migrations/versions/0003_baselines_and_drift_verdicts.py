"""baselines and drift_verdicts: what each model version is compared with, and the verdicts

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from driftline.collector.store.sqltypes import JSONDocument, UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "baselines",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("baseline_id", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("service", sa.String(length=200), nullable=False),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("model_version", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("set_by", sa.String(length=200), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("record", JSONDocument, nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    with op.batch_alter_table("baselines", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_baselines_baseline_id"), ["baseline_id"], unique=False)
        batch_op.create_index(
            "ix_baselines_model_time", ["model_name", "model_version", "occurred_at"], unique=False
        )

    op.create_table(
        "drift_verdicts",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("model_version", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("baseline_id", sa.String(length=64), nullable=False),
        sa.Column("feature", sa.String(length=200), nullable=False),
        sa.Column("test", sa.String(length=40), nullable=False),
        sa.Column("statistic", sa.Float(), nullable=False),
        sa.Column("p_value", sa.Float(), nullable=False),
        sa.Column("adjusted_p", sa.Float(), nullable=False),
        sa.Column("false_alarm_rate", sa.Float(), nullable=False),
        sa.Column("effect_name", sa.String(length=200), nullable=False),
        sa.Column("effect", sa.Float(), nullable=True),
        sa.Column("window_start", UTCDateTime(), nullable=False),
        sa.Column("window_end", UTCDateTime(), nullable=False),
        sa.Column("baseline_size", sa.BigInteger(), nullable=False),
        sa.Column("current_size", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    with op.batch_alter_table("drift_verdicts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_drift_verdicts_model_time",
            ["model_name", "model_version", "occurred_at"],
            unique=False,
        )


def downgrade() -> None:
    op.drop_table("drift_verdicts")
    op.drop_table("baselines")

"""evaluation_sets, evaluation_cases, evaluation_runs and agreed_thresholds: the evaluation sets
registered for each model, the runs of them against its versions case by case, and the go-live
thresholds its decision-maker agreed

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

from driftline.collector.store.sqltypes import JSONDocument, UTCDateTime

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evaluation_sets",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("set_name", sa.String(length=200), nullable=False),
        sa.Column("set_version", sa.String(length=200), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("cases", sa.BigInteger(), nullable=False),
        sa.Column("must_refuse", sa.BigInteger(), nullable=False),
        sa.Column("registered_by", sa.String(length=200), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("tags", JSONDocument, nullable=False),
        sa.Column("thresholds", JSONDocument, nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index(op.f("ix_evaluation_sets_sha256"), "evaluation_sets", ["sha256"])
    op.create_index(
        "ix_evaluation_sets_set", "evaluation_sets", ["model_name", "set_name", "occurred_at"]
    )
    op.create_table(
        "evaluation_cases",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("model_version", sa.String(length=200), nullable=False),
        sa.Column("set_sha256", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.String(length=200), nullable=False),
        sa.Column("tags", JSONDocument, nullable=False),
        sa.Column("must_refuse", sa.Boolean(), nullable=False),
        sa.Column("refused", sa.Boolean(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("output", sa.Text(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("scores", JSONDocument, nullable=True),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index(op.f("ix_evaluation_cases_run_id"), "evaluation_cases", ["run_id"])
    op.create_table(
        "evaluation_runs",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("model_version", sa.String(length=200), nullable=False),
        sa.Column("set_name", sa.String(length=200), nullable=False),
        sa.Column("set_version", sa.String(length=200), nullable=False),
        sa.Column("set_sha256", sa.String(length=64), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("asked_by", sa.String(length=200), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("cases", sa.BigInteger(), nullable=False),
        sa.Column("errors", sa.BigInteger(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("figures", JSONDocument, nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index(op.f("ix_evaluation_runs_run_id"), "evaluation_runs", ["run_id"])
    op.create_index(
        "ix_evaluation_runs_version",
        "evaluation_runs",
        ["model_name", "model_version", "occurred_at"],
    )
    op.create_table(
        "agreed_thresholds",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("model_version", sa.String(length=200), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("threshold", JSONDocument, nullable=False),
        sa.Column("decision_maker", sa.String(length=200), nullable=False),
        sa.Column("stage", sa.String(length=100), nullable=False),
        sa.Column("deadline", UTCDateTime(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index(
        "ix_agreed_thresholds_version",
        "agreed_thresholds",
        ["model_name", "model_version", "occurred_at"],
    )


def downgrade() -> None:
    op.drop_table("agreed_thresholds")
    op.drop_table("evaluation_runs")
    op.drop_table("evaluation_cases")
    op.drop_table("evaluation_sets")

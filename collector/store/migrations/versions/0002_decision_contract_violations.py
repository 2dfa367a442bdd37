"""decisions.contract_violations: how a decision's inputs broke its model's data contract

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from driftline.collector.store.sqltypes import JSONDocument

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        # Decisions stored before contracts existed broke none.
        batch_op.add_column(
            sa.Column("contract_violations", JSONDocument, nullable=False, server_default="[]")
        )


def downgrade() -> None:
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.drop_column("contract_violations")

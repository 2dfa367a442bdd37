"""ui_sessions: the web page's sign-ins, kept on the server so that signing out ends one

Before, the page's cookie held the API token itself: a copied cookie worked until the token
was revoked, whatever sign-out did. Now it holds a session secret of its own (only its SHA-256
is stored), ended at sign-out. Cookies set before this migration no longer sign anyone in:
people sign in again.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

from driftline.collector.store.sqltypes import UTCDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ui_sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("secret_sha256", sa.LargeBinary(), nullable=False),
        sa.Column("token_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("secret_sha256"),
    )
    op.create_index("ix_ui_sessions_token_id", "ui_sessions", ["token_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_ui_sessions_token_id", table_name="ui_sessions")
    op.drop_table("ui_sessions")

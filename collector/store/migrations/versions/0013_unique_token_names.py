"""api_tokens.name unique: a token's name says who made a silence, a hold, an export or a read

Before, two tokens could share a name, and the records they left could not be told apart. Of
tokens that share one, the oldest keeps it; each later one is renamed ``name-2``, ``name-3``...
(the first such name no token has), so every name is unique before the constraint is made.
The record of reads keeps the name as it was, beside the token's id.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

NAME_LENGTH = 200
CONSTRAINT = "api_tokens_name_key"  # what PostgreSQL names an unnamed one

tokens = sa.table("api_tokens", sa.column("id"), sa.column("name"), sa.column("created_at"))


def upgrade() -> None:
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(tokens.c.id, tokens.c.name).order_by(tokens.c.created_at, tokens.c.id)
    ).all()
    taken = {name for _, name in rows}
    kept: set[str] = set()
    for token_id, name in rows:
        if name not in kept:
            kept.add(name)
            continue
        renamed = _free(name, taken)
        taken.add(renamed)
        kept.add(renamed)
        connection.execute(sa.update(tokens).where(tokens.c.id == token_id).values(name=renamed))
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_unique_constraint(CONSTRAINT, ["name"])


def _free(name: str, taken: set[str]) -> str:
    n = 2
    while True:
        suffix = f"-{n}"
        candidate = name[: NAME_LENGTH - len(suffix)] + suffix
        if candidate not in taken:
            return candidate
        n += 1


def downgrade() -> None:
    # Renamed tokens keep their new names: which were renamed is not recorded.
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_constraint(CONSTRAINT, type_="unique")

"""silences' matchers rewritten in Alertmanager's quoting, which reads back exactly

Before, a matcher was stored as ``name op "value"`` with the value as it was, unescaped, and
read with Python's ``unicode_escape``. A value holding a quote was stored in a form that no
longer parsed, and a backslash (``\\d`` in a regex) is not an escape of the new, Go-style
reading. Each matcher is read here as the old code read it and written as the new code writes
it, so that every silence means what it meant. One that the old code could not read either is
left as it was: the router skips it and says why.

This migration carries its own copy of both readings, so that its meaning never changes.

Revision ID: 0011
Revises: 0010
"""

import re
import warnings

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_OLD_SYNTAX = re.compile(
    r'^\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*(?P<value>"(?:[^"\\]|\\.)*"|[^"]*?)\s*$'
)
_GO_ESCAPES = {
    "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
    '"': '\\"', "\\": "\\\\",
}  # fmt: skip

silences = sa.table(
    "silences",
    sa.column("id", sa.Uuid()),
    sa.column("matchers", sa.JSON().with_variant(JSONB(), "postgresql")),
)


def requoted(text: str) -> str:
    """The matcher as the new code writes it, read as the old code read it; unchanged if the
    old code could not read it either."""
    found = _OLD_SYNTAX.match(text)
    if found is None:
        return text
    value = found["value"]
    if value.startswith('"'):
        # The old reading, less its one flaw: text beyond Latin-1 survives unicode_escape. An
        # unknown escape (\d) is kept as written, as it was then, without the warning.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            value = value[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape")
    return f"{found['name']}{found['op']}{_go_quoted(value)}"


def _go_quoted(value: str) -> str:
    return '"' + "".join(_go_escaped(char) for char in value) + '"'


def _go_escaped(char: str) -> str:
    if char in _GO_ESCAPES:
        return _GO_ESCAPES[char]
    if char.isprintable():
        return char
    code = ord(char)
    if code < 0x80:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def upgrade() -> None:
    connection = op.get_bind()
    for silence_id, matchers in connection.execute(sa.select(silences.c.id, silences.c.matchers)):
        rewritten = [requoted(text) for text in matchers]
        if rewritten != matchers:
            connection.execute(
                silences.update().where(silences.c.id == silence_id).values(matchers=rewritten)
            )


def downgrade() -> None:
    pass  # the old code reads the new form as it read any quoted value

"""Database URLs: the driver Driftline uses, and the form that may be shown (no password)."""

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


def normalize_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs that name no driver (SQLAlchemy would pick psycopg2)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def redacted_url(url: str) -> str:
    """The URL as it may be shown: its password as ``***``. Secrets are never printed."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(not a database URL)"

"""``python -m collector`` is the ``driftline`` command."""

from collector.cli import app

app()

"""``python -m collector`` is the ``driftline`` command."""

from collector.cli.entry import main

main()

"""``python -m collector`` is the ``driftline`` command."""

from collector.entry import main

main()

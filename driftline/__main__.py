"""``python -m driftline`` is the ``driftline`` command."""

from driftline.collector.cli.entry import main

main()

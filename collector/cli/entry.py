"""The ``driftline`` command. ``driftline agent`` runs beside every service, so it starts
without importing the rest of the command line (see ``driftline.collector.cli.agent``)."""

import sys


def main() -> None:
    if sys.argv[1:2] == ["agent"]:
        from driftline.collector.cli.agent import sidecar_app

        sidecar_app(args=sys.argv[2:], prog_name="driftline agent")
    else:
        from driftline.collector.cli.main import app

        app()

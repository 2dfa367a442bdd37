"""The ``driftline`` command. ``driftline agent`` runs beside every service, so it starts
without importing the rest of the command line (see ``driftline.collector.cli.agent``). Every
command first refuses ``DRIFTLINE_*`` variables that no setting reads (exit 2)."""

import os
import signal
import sys

from driftline.collector.core.environment import unknown_variables

EXIT_UNKNOWN_VARIABLE = 2  # as for every bad setting (``cli.common.EXIT_UNABLE``)


def main() -> None:
    if problems := unknown_variables(os.environ):
        for problem in problems:
            print(f"✗ {problem}", file=sys.stderr)
        raise SystemExit(EXIT_UNKNOWN_VARIABLE)
    if sys.argv[1:2] == ["agent"]:
        from driftline.collector.cli.agent import sidecar_app

        sidecar_app(args=sys.argv[2:], prog_name="driftline agent")
    else:
        from driftline.collector.cli.main import app
        from driftline.collector.core.logs import configure_logging

        # A short command's log says only what went wrong (librdkafka's retries are debug);
        # a long-running one sets DRIFTLINE_LOG_LEVEL's level as it starts.
        configure_logging("warning")
        # SIGTERM (a supervisor's, Kubernetes') stops a command as Ctrl-C does: cleanly, the
        # embedded broker of `up` included, which the default action left running.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        app()

"""``driftline agent``: the HTTP sidecar for services in any language.

Kept apart from the rest of the command line (``driftline.collector.cli.main``) so that starting it
imports the agent alone: the collector's modules (scipy, SQLAlchemy, the web page) would add about
200 MB to every pod it runs in.
"""

from typing import Annotated

import typer
import uvicorn

from driftline.agent.client import Driftline
from driftline.agent.sidecar import create_sidecar
from driftline.collector.core.logs import configure_logging


def agent_command(
    host: Annotated[str, typer.Option(help="Listen address; keep it local to the pod.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Listen port.")] = 8686,
) -> None:
    """Run the agent as an HTTP sidecar, for services in any language (DRIFTLINE_* settings)."""
    configure_logging("info")
    # A misconfigured agent still serves: /readyz says what is wrong, nothing is recorded.
    driftline = Driftline()
    # A misconfigured agent has no settings, and takes no events anyway.
    settings = getattr(driftline, "settings", None)
    hosts = settings.sidecar_allowed_hosts if settings is not None else []
    uvicorn.run(
        create_sidecar(driftline, allowed_hosts=hosts), host=host, port=port, log_level="warning"
    )


# Run by ``driftline.collector.cli.entry`` for ``driftline agent``; the full command line registers
# ``agent_command`` too, for its help.
sidecar_app = typer.Typer(add_completion=False)
sidecar_app.command()(agent_command)

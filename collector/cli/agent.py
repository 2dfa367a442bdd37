"""``driftline agent``: the HTTP sidecar for services in any language.

Kept apart from the rest of the command line (``driftline.collector.cli.main``) so that starting it
imports the agent alone: the collector's modules (scipy, SQLAlchemy, the web page) would add about
200 MB to every pod it runs in.
"""

from typing import Annotated

import typer
import uvicorn

from driftline.agent.client import Driftline
from driftline.agent.settings import AgentSettings
from driftline.agent.sidecar import create_sidecar
from driftline.collector.core.logs import configure_logging


def agent_command(
    host: Annotated[
        str | None,
        typer.Option(
            help="Listen address; keep it local to the pod. [default: DRIFTLINE_SIDECAR_HOST]"
        ),
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Listen port. [default: DRIFTLINE_SIDECAR_PORT, 8686]")
    ] = None,
) -> None:
    """Run the agent as an HTTP sidecar, for services in any language (DRIFTLINE_* settings)."""
    configure_logging("info")
    # A misconfigured agent still serves: /readyz says what is wrong, nothing is recorded.
    driftline = Driftline()
    # A misconfigured agent has no settings, and takes no events anyway; it listens where the
    # defaults say, to answer /readyz.
    settings = getattr(driftline, "settings", None) or AgentSettings.model_construct()
    uvicorn.run(
        create_sidecar(driftline, allowed_hosts=settings.sidecar_allowed_hosts),
        host=host or settings.sidecar_host,
        port=port or settings.sidecar_port,
        log_level="warning",
    )


# Run by ``driftline.collector.cli.entry`` for ``driftline agent``; the full command line registers
# ``agent_command`` too, for its help.
sidecar_app = typer.Typer(add_completion=False)
sidecar_app.command()(agent_command)

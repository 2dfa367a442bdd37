"""Refusing ``DRIFTLINE_*`` variables that no setting reads: a misspelt name would otherwise be
ignored and its default used in silence (``DRIFTLINE_DATABSE_URL`` left ``audit verify`` on
the default database). Every ``driftline`` command checks them before it starts, the sidecar
included. Left alone: names under ``DRIFTLINE_TEST_`` (the test suite's own), and those
Kubernetes gives every pod for each Service in its namespace (``DRIFTLINE_API_SERVICE_HOST``,
``DRIFTLINE_API_PORT_8000_TCP_ADDR``... for the chart's ``driftline-api``), which no one chose.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping

from driftline.agent.settings import AgentSettings
from driftline.collector.core.settings import CollectorSettings

PREFIX = "DRIFTLINE_"
RESERVED = "DRIFTLINE_TEST_"
# Kubernetes' service links: {SVC}_SERVICE_HOST, {SVC}_SERVICE_PORT[_{NAME}], {SVC}_PORT (a
# tcp:// URL) and {SVC}_PORT_{N}_{PROTO}[_ADDR|_PORT|_PROTO].
SERVICE_LINK = re.compile(r"_SERVICE_HOST$|_SERVICE_PORT(_[A-Z0-9_]+)?$|_PORT_\d+_(TCP|UDP|SCTP)")
LINK_URL = re.compile(r"^(tcp|udp|sctp)://")


def known_variables() -> frozenset[str]:
    """Every variable a Driftline component reads: the collector's settings and the agent's."""
    fields: Iterable[str] = [*CollectorSettings.model_fields, *AgentSettings.model_fields]
    return frozenset(f"{PREFIX}{name.upper()}" for name in fields)


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """A sentence per ``DRIFTLINE_*`` variable no setting reads, with the closest known
    name when one is close; none when all are known."""
    known = known_variables()
    problems = []
    for name in sorted(environ):
        if not name.startswith(PREFIX) or name in known or name.startswith(RESERVED):
            continue
        if SERVICE_LINK.search(name) or (name.endswith("_PORT") and LINK_URL.match(environ[name])):
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
        hint = f"; did you mean {close[0]}?" if close else " (see the README's settings table)"
        problems.append(f"{name} is not a Driftline setting{hint}")
    return problems

"""The agent's logger. Inside a service, the agent logs through structlog as the service
configured it. A service that configured nothing gets structlog's defaults, which print every
level to its stdout, debug included; there the agent leaves out its debug lines (librdkafka's
reconnection attempts, one a try through an outage), as a library should.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog

_UNCONFIGURED = structlog.make_filtering_bound_logger(logging.INFO)


class AgentLogger:
    """structlog's logger for ``name``, chosen at each call: the service may configure
    structlog after importing the agent."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, method: str) -> Any:
        if structlog.is_configured():
            return getattr(structlog.get_logger(self._name), method)
        return getattr(structlog.wrap_logger(None, wrapper_class=_UNCONFIGURED), method)


def agent_logger(name: str) -> AgentLogger:
    return AgentLogger(name)

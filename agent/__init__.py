"""Driftline agent: records model decisions beside an AI service and publishes them to Kafka.

The public surface is the ``Driftline`` client (see ``driftline.agent.client``) and the event
contract (``driftline.agent.contract``), which every other component imports.

The client's names load on first use (PEP 562), so that importing the contract, as the
collector and the API do, costs pydantic and no more: not librdkafka, the OpenTelemetry SDK
or prometheus_client, which only the client needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from driftline.agent.client import DecisionScope, Driftline, Recorded
    from driftline.agent.contract import Embeddings, Score
    from driftline.agent.dispatcher import DeliveryReport

__all__ = ["DecisionScope", "DeliveryReport", "Driftline", "Embeddings", "Recorded", "Score"]

_HOMES = {
    "DecisionScope": "driftline.agent.client",
    "DeliveryReport": "driftline.agent.dispatcher",
    "Driftline": "driftline.agent.client",
    "Embeddings": "driftline.agent.contract",
    "Recorded": "driftline.agent.client",
    "Score": "driftline.agent.contract",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'agent' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # found once: later look-ups do not come here
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])

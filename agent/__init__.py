"""Driftline agent: records model decisions beside an AI service and publishes them to Kafka.

The public surface is the ``Driftline`` client (see ``agent.client``) and the event contract
(``agent.contract``), which every other component imports.
"""

from agent.client import DecisionScope, Driftline, Recorded
from agent.dispatcher import DeliveryReport

__all__ = ["DecisionScope", "DeliveryReport", "Driftline", "Recorded"]

"""Prometheus metrics of one agent, read from its counters when scraped, so that recording a
decision pays nothing for them.

The counters about events are labelled by ``service`` and ``model`` (the event's model name),
at most ``labels.MAX_PAIRS`` pairs of them, the rest folded into ``model="(other)"``
(``driftline.agent.labels``). An event whose service or model could not be read (one the
contract refuses) counts under ``(none)``. ``sum without (model, service)`` gives the totals.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from driftline.agent.dispatcher import Dispatcher
from driftline.agent.input_contracts import ContractCheck
from driftline.agent.labels import LabelledCounts
from driftline.agent.redaction import Redactor
from driftline.agent.spooling import SpoolingPublisher

LABELS = ["model", "service"]


class AgentMetrics(Collector):
    def __init__(
        self,
        dispatcher: Dispatcher,
        publisher: SpoolingPublisher,
        redactor: Redactor,
        contract_check: ContractCheck,
    ) -> None:
        self._dispatcher = dispatcher
        self._publisher = publisher
        self._redactor = redactor
        self._contract_check = contract_check

    def collect(self) -> Iterator[Metric]:
        counts = self._dispatcher.counts
        spool = self._publisher.spool
        counters: dict[str, tuple[LabelledCounts, str]] = {
            "events_recorded": (
                counts.recorded,
                "Events recorded (with those found in the spool).",
            ),
            "events_delivered": (counts.delivered, "Events Kafka acknowledged."),
            "events_failed": (
                counts.failed,
                "Events refused: contract, redaction or a full spool.",
            ),
            "events_dropped": (
                counts.dropped,
                "Events dropped because the in-memory queue was full.",
            ),
            "redactions": (
                self._redactor.counts,
                "Values dropped, hashed or masked by the redaction policy.",
            ),
            "contract_violations": (
                self._contract_check.violations,
                "Decisions whose inputs broke their model's data contract.",
            ),
        }
        for name, (labelled, documentation) in counters.items():
            family = CounterMetricFamily(f"driftline_agent_{name}", documentation, labels=LABELS)
            for labels, count in sorted(labelled.items()):
                family.add_metric([labels.model, labels.service], count)
            yield family
        yield CounterMetricFamily(
            "driftline_agent_send_errors",
            "Events Kafka did not take when sent; they went to the spool.",
            self._publisher.send_errors,
        )
        gauges: dict[str, tuple[float, str]] = {
            "queue_depth": (self._dispatcher.queue_depth, "Events in memory, not yet sent."),
            "spool_events": (spool.count, "Events waiting in the disk spool."),
            "spool_bytes": (spool.size_bytes, "Size of the disk spool."),
            "spool_oldest_age_seconds": (spool.oldest_age_s(), "Age of the oldest spooled event."),
        }
        for name, (value, documentation) in gauges.items():
            yield GaugeMetricFamily(f"driftline_agent_{name}", documentation, value)

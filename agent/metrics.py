"""Prometheus metrics of one agent, read from its counters when scraped, so that recording a
decision pays nothing for them."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from driftline.agent.dispatcher import Dispatcher
from driftline.agent.input_contracts import ContractCheck
from driftline.agent.redaction import Redactor
from driftline.agent.spooling import SpoolingPublisher


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
        report = self._dispatcher.report()
        spool = self._publisher.spool
        counters: dict[str, tuple[float, str]] = {
            "recorded": (report.recorded, "Events recorded (with those found in the spool)."),
            "delivered": (report.delivered, "Events Kafka acknowledged."),
            "failed": (report.failed, "Events refused: contract, redaction or a full spool."),
            "dropped": (report.dropped, "Events dropped because the in-memory queue was full."),
        }
        for name, (value, documentation) in counters.items():
            yield CounterMetricFamily(f"driftline_agent_events_{name}", documentation, value)
        yield CounterMetricFamily(
            "driftline_agent_send_errors",
            "Events Kafka did not take when sent; they went to the spool.",
            self._publisher.send_errors,
        )
        yield CounterMetricFamily(
            "driftline_agent_redactions",
            "Values dropped, hashed or masked by the redaction policy.",
            self._redactor.redactions,
        )
        violations = CounterMetricFamily(
            "driftline_agent_contract_violations",
            "Decisions whose inputs broke their model's data contract.",
            labels=["model", "service"],
        )
        for (model, service), count in self._contract_check.violations.items():
            violations.add_metric([model, service], count)
        yield violations
        gauges: dict[str, tuple[float, str]] = {
            "queue_depth": (self._dispatcher.queue_depth, "Events in memory, not yet sent."),
            "spool_events": (spool.count, "Events waiting in the disk spool."),
            "spool_bytes": (spool.size_bytes, "Size of the disk spool."),
            "spool_oldest_age_seconds": (spool.oldest_age_s(), "Age of the oldest spooled event."),
        }
        for name, (value, documentation) in gauges.items():
            yield GaugeMetricFamily(f"driftline_agent_{name}", documentation, value)

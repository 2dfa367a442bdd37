"""Hands events straight to librdkafka without waiting for the broker.

``send`` queues each event in librdkafka's own buffer and returns at once; librdkafka batches,
sends and retries in its threads. ``collect`` serves the delivery reports that came back since
the last call. The first report of an event that did not arrive (a time-out, the broker away)
purges everything still held, so that every undelivered event is handed back at once and in
the order it was sent: the caller spools them all before anything newer, and a decision's
events stay in order. A fresh producer is made for what follows.

Only the agent's worker thread uses a sender.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from driftline.agent.logs import agent_logger
from driftline.agent.publisher import KafkaTarget, Outgoing, is_permanent

log = agent_logger(__name__)

PURGE_REPORTS_S = 1.0  # how long purged events may take to be reported back


@dataclass
class Reports:
    """What became of events sent earlier: delivered, refused for good, or handed back."""

    acknowledged: list[Outgoing] = field(default_factory=list)
    refused: list[tuple[Outgoing, str]] = field(default_factory=list)
    undelivered: list[Outgoing] = field(default_factory=list)  # in the order they were sent
    reason: str | None = None  # why the first undelivered one did not arrive


@dataclass(frozen=True)
class Handed:
    """What ``send`` could not hand over: refused for good, or left for the caller to keep."""

    refused: list[tuple[Outgoing, str]]
    not_taken: list[Outgoing]
    reason: str | None = None  # why librdkafka would not take them


class DirectSender:
    def __init__(self, target: KafkaTarget) -> None:
        self._target = target
        self._config = target.producer_config()
        self._topic = target.topic
        self._producer: Producer | None = None
        self._sent = 0  # a sequence number per event, to give undelivered ones back in order
        self._reports: list[tuple[int, Outgoing, KafkaError | None]] = []

    @property
    def in_flight(self) -> int:
        """Events handed to librdkafka whose delivery report has not been collected (read
        from other threads too, so the producer is looked at once)."""
        producer = self._producer
        return (len(producer) if producer is not None else 0) + len(self._reports)

    def send(self, batch: list[Outgoing]) -> Handed:
        """Queue ``batch`` in librdkafka; what it will not take now is left to the caller."""
        try:
            producer = self._connected()
        except KafkaException as error:  # a setting librdkafka refuses (a missing CA file...)
            return Handed([], batch, f"the Kafka client cannot be made: {error.args[0].str()}")
        refused: list[tuple[Outgoing, str]] = []
        for position, item in enumerate(batch):
            report = functools.partial(self._report, self._sent, item)
            try:
                producer.produce(
                    self._topic, item.value, item.key, headers=item.headers(), on_delivery=report
                )
            except BufferError:  # librdkafka holds all it may: the rest waits on disk
                return Handed(refused, batch[position:], "the Kafka client's queue is full")
            except KafkaException as error:
                if not is_permanent(error.args[0]):
                    return Handed(refused, batch[position:], self._target.explain(error.args[0]))
                refused.append((item, self._target.explain(error.args[0])))
            self._sent += 1
        producer.poll(0)
        return Handed(refused, [])

    def collect(self) -> Reports:
        """The delivery reports since the last call, with every undelivered event at once."""
        if self._producer is None:
            return Reports()
        self._producer.poll(0)
        reports, self._reports = self._reports, []
        if any(error is not None and not is_permanent(error) for _, _, error in reports):
            reports += self._purged()
        return self._settled(reports)

    def take_back(self) -> Reports:
        """Every report so far, and every event still in flight handed back undelivered: so
        that what is spooled next goes behind them."""
        if self._producer is None:
            return self._settled(self._take_reports())
        self._producer.poll(0)
        return self._settled(self._take_reports() + self._purged())

    def _take_reports(self) -> list[tuple[int, Outgoing, KafkaError | None]]:
        reports, self._reports = self._reports, []
        return reports

    def close(self, timeout_s: float) -> Reports:
        """Wait up to ``timeout_s`` for what is in flight; hand back what did not arrive."""
        if self._producer is None:
            return Reports()
        self._producer.flush(timeout_s)
        reports, self._reports = self._reports, []
        return self._settled(reports + self._purged())

    def _purged(self) -> list[tuple[int, Outgoing, KafkaError | None]]:
        """Purge what librdkafka still holds and take its reports; then drop the producer,
        since its idempotence state no longer matches the broker's."""
        assert self._producer is not None
        producer, self._producer = self._producer, None
        producer.purge(in_queue=True, in_flight=True, blocking=False)
        deadline = time.monotonic() + PURGE_REPORTS_S
        while len(producer) and time.monotonic() < deadline:
            producer.poll(0.01)
        if len(producer):  # not reported back in time; they will not be sent by this client
            log.error("Kafka client kept events after a purge", count=len(producer))
        reports, self._reports = self._reports, []
        return reports

    def _report(
        self, sequence: int, item: Outgoing, error: KafkaError | None, _message: Message[Any, Any]
    ) -> None:
        self._reports.append((sequence, item, error))

    def _connected(self) -> Producer:
        if self._producer is None:
            self._producer = Producer(self._config)
        return self._producer

    def _settled(self, reports: list[tuple[int, Outgoing, KafkaError | None]]) -> Reports:
        settled = Reports()
        for _, item, error in sorted(reports, key=lambda report: report[0]):
            if error is None:
                settled.acknowledged.append(item)
            elif is_permanent(error):
                settled.refused.append((item, self._target.explain(error)))
            else:
                settled.undelivered.append(item)
                settled.reason = settled.reason or self._target.explain(error)
        return settled

"""Moves recorded events off the caller's thread: a bounded queue and one worker thread.

The caller only appends to the queue. The worker validates each record against the contract,
records its span, encodes it and hands batches to the spooling publisher, which sends them to
Kafka or keeps them on disk without waiting on the network; between batches the worker
collects the delivery reports. Every outcome is counted: delivered, failed (with the reason),
spooled, dropped because the queue was full; in all, and by service and model for the metrics
(``EventCounts``). ``flush`` and ``close`` return the totals instead of swallowing failures,
and ``close`` never raises.

``submit_on_disk`` is the write-ahead path: the caller's thread does the worker's part and
returns once the events are written to the spool and synced.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from driftline.agent.contract import Event, validate, wire_bytes
from driftline.agent.labels import (
    UNKNOWN,
    EventLabels,
    LabelCap,
    LabelledCounts,
    of_document,
    of_wire,
)
from driftline.agent.logs import agent_logger
from driftline.agent.publisher import Outgoing, PublishResult
from driftline.agent.spooling import SpoolingPublisher

log = agent_logger(__name__)

MAX_REASONS_KEPT = 100
MAX_WAIT_S = 86_400.0  # a flush or close asked to wait for ever waits a day
# Records encoded between voluntary GIL releases: about half a millisecond of work, so that a
# service thread calling record_* waits that long at most, not CPython's 5 ms switch interval.
YIELD_EVERY = 16


# A step every event document passes through on the worker, in order (redaction, for one);
# it changes the document in place or raises ValueError to refuse the event, saying why.
Processor = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Record:
    """What the caller hands over: the event document and what the worker needs to finish it."""

    document: dict[str, Any]
    finish: Callable[[dict[str, Any]], None] | None = None  # e.g. add the span's trace ids
    # The last step, on the validated event: a component's signature over what will travel.
    seal: Callable[[Event], Event] | None = None


@dataclass(frozen=True)
class Failure:
    event_id: str
    reason: str
    labels: EventLabels = field(default=UNKNOWN, compare=False, repr=False)


@dataclass(frozen=True)
class DeliveryReport:
    """Totals since the agent started; ``recorded`` includes events found in the spool then."""

    recorded: int
    delivered: int
    failed: int
    dropped: int
    pending: int  # recorded, neither delivered nor failed: in memory or in the spool
    spooled: int  # the part of pending that is safe on disk
    failures: list[Failure] = field(default_factory=list)  # the first MAX_REASONS_KEPT

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.dropped == 0 and self.pending == 0


class EventCounts:
    """The dispatcher's counts by service and model, for the metrics. What is delivered or
    failed is counted here before in the totals, so that a flush never returns ahead of them."""

    def __init__(self, cap: LabelCap) -> None:
        self.recorded = LabelledCounts(cap)  # with those found in the spool at start
        self.delivered = LabelledCounts(cap)
        self.failed = LabelledCounts(cap)
        self.dropped = LabelledCounts(cap)


class Dispatcher:
    def __init__(
        self,
        publisher: SpoolingPublisher,
        *,
        queue_size: int,
        batch_size: int,
        linger_ms: int,
        processors: Sequence[Processor] = (),
        cap: LabelCap | None = None,
    ) -> None:
        self._publisher = publisher
        self._processors = processors
        self._queue: queue.Queue[Record] = queue.Queue(maxsize=queue_size)
        self._batch_size = batch_size
        self._linger_s = linger_ms / 1000
        self._settled = threading.Condition()
        self.counts = EventCounts(cap or LabelCap())
        for labels, found in publisher.spool.found.items():
            self.counts.recorded.add(labels, found)
        self._recorded = publisher.backlog
        self._delivered = self._failed = self._dropped = 0
        self._failures: list[Failure] = []
        self._closing = threading.Event()
        self._worker = threading.Thread(target=self._run, name="driftline-agent", daemon=True)
        self._worker.start()
        publisher.start(settle=self._settle)

    def submit(self, record: Record) -> bool:
        """Queue a record without waiting; False if the queue was full and it was dropped."""
        labels = of_document(record.document)  # read before the worker may change it
        with self._settled:  # counted first, so the worker never settles more than recorded
            self._recorded += 1
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self.counts.dropped.add(labels)
            with self._settled:
                self._recorded -= 1
                self._dropped += 1
                dropped = self._dropped
            if dropped == 1 or dropped % 1000 == 0:
                log.warning("agent queue full; events dropped", dropped_total=dropped)
            return False
        # Counted once queued, so that this count never goes down; the worker settles it
        # long after this line.
        self.counts.recorded.add(labels)
        return True

    def refuse(self, document: Mapping[str, Any], reason: str) -> None:
        """Count an event refused on the caller's thread, never queued, as failed, and log why."""
        labels = of_document(document)
        self.counts.recorded.add(labels)
        with self._settled:
            self._recorded += 1
        failure = Failure(str(document.get("event_id")), reason, labels)
        self._count(PublishResult(delivered=0), [failure])

    def submit_on_disk(self, records: Sequence[Record]) -> list[bool]:
        """Process ``records`` on the caller's thread and write them to the spool, synced;
        for each, True once it is on disk, False if it was refused or could not be written."""
        self.counts.recorded.add_all(of_document(record.document) for record in records)
        with self._settled:
            self._recorded += len(records)
        outgoing, failures, positions = self._encode(records)
        result = self._publisher.write_ahead(outgoing)
        self._count(result, failures)
        kept = [False] * len(records)
        for position in positions[: result.spooled]:  # the spool keeps a prefix of the batch
            kept[position] = True
        return kept

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    def report(self) -> DeliveryReport:
        with self._settled:
            return DeliveryReport(
                recorded=self._recorded,
                delivered=self._delivered,
                failed=self._failed,
                dropped=self._dropped,
                pending=self._recorded - self._delivered - self._failed,
                spooled=self._publisher.backlog,
                failures=list(self._failures),
            )

    def flush(self, timeout_s: float) -> DeliveryReport:
        """Wait until everything recorded so far is delivered or failed, or the deadline."""
        deadline = time.monotonic() + min(timeout_s, MAX_WAIT_S)
        with self._settled:
            target = self._recorded
            while self._delivered + self._failed < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._worker.is_alive():
                    break
                self._settled.wait(remaining)
        return self.report()

    def close(self, timeout_s: float) -> DeliveryReport:
        """Deliver what it can within the deadline, spool the rest, stop, and report."""
        self.flush(timeout_s)
        self._closing.set()  # the worker now spools what is queued, without the network
        self._worker.join(timeout=10)
        try:
            self._publisher.shutdown(timeout_s=1.0)
        except Exception:  # closing must never raise into the service; the report says the rest
            log.exception("agent shutdown incomplete")
        report = self.report()
        if not report.ok:
            log.error(
                "agent closed with events not delivered",
                failed=report.failed,
                dropped=report.dropped,
                pending=report.pending,
                spooled=report.spooled,
                spool=str(self._publisher.spool.directory),
            )
        return report

    def _run(self) -> None:
        while not self._closing.is_set():
            try:
                self._step()
            except Exception:  # a bug here must not stop delivery for the service's lifetime
                log.exception("agent worker step failed; continuing")
                time.sleep(0.1)
        while batch := self._take_all():
            self._send(batch, self._publisher.park)

    def _step(self) -> None:
        # While events are in flight their reports are collected every few milliseconds, so
        # that a flush returns soon after Kafka's acknowledgement.
        batch = self._next_batch(wait_s=0.002 if self._publisher.in_flight else 0.1)
        if batch:
            self._send(batch, self._publisher.publish)
        self._settle(self._publisher.collect())

    def _settle(self, result: PublishResult) -> None:
        self._count(result, [])

    def _next_batch(self, wait_s: float) -> list[Record]:
        try:
            batch = [self._queue.get(timeout=wait_s)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + self._linger_s
        while len(batch) < self._batch_size:
            try:
                batch.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
        return batch

    def _take_all(self) -> list[Record]:
        batch: list[Record] = []
        while len(batch) < self._batch_size:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _send(
        self, batch: list[Record], publish: Callable[[list[Outgoing]], PublishResult]
    ) -> None:
        outgoing, failures, _ = self._encode(batch)
        try:
            result = publish(outgoing)
        except Exception as error:  # counted, never lost unseen: the worker goes on
            log.exception("events could not be handed on")
            result = PublishResult(delivered=0, failed=[(o, repr(error)) for o in outgoing])
        self._count(result, failures)

    def _encode(self, batch: Sequence[Record]) -> tuple[list[Outgoing], list[Failure], list[int]]:
        """Each record processed, checked and encoded; or its failure. Also the positions in
        ``batch`` of the encoded ones."""
        outgoing, failures, positions = [], [], []
        for number, record in enumerate(batch):
            if number % YIELD_EVERY == YIELD_EVERY - 1:
                time.sleep(0)  # let the service's threads have the GIL now and then
            try:
                event = self._event(record)
                outgoing.append(
                    Outgoing(
                        event_id=event.event_id,
                        key=event.kafka_key(),
                        value=wire_bytes(event),
                        event_type=event.type,
                        labels=EventLabels(event.service, event.model.name),
                    )
                )
                positions.append(number)
            except (ValueError, RecursionError) as error:  # the contract, a processor refusing
                failures.append(_failure(record.document, str(error)))
            except Exception as error:  # the worker must outlive any one bad record
                failures.append(_failure(record.document, f"could not be encoded: {error!r}"))
        return outgoing, failures, positions

    def _count(self, result: PublishResult, failures: list[Failure]) -> None:
        failures = failures + [
            Failure(str(item.event_id), why, item.labels or of_wire(item.value))
            for item, why in result.failed
        ]
        self.counts.failed.add_all(failure.labels for failure in failures)
        self.counts.delivered.add_all(
            item.labels or of_wire(item.value) for item in result.acknowledged
        )
        if unnamed := result.delivered - len(result.acknowledged):
            self.counts.delivered.add(UNKNOWN, unnamed)
        if failures:
            log.error(
                "events not delivered",
                count=len(failures),
                first_event_id=failures[0].event_id,
                first_reason=failures[0].reason,
            )
        with self._settled:
            self._delivered += result.delivered
            self._failed += len(failures)
            room = MAX_REASONS_KEPT - len(self._failures)
            self._failures += failures[: max(0, room)]
            self._settled.notify_all()

    def _event(self, record: Record) -> Event:
        for process in self._processors:
            process(record.document)
        if record.finish is not None:
            record.finish(record.document)
        event = validate(record.document)
        return event if record.seal is None else record.seal(event)


def _failure(document: dict[str, Any], reason: str) -> Failure:
    return Failure(str(document.get("event_id")), reason, of_document(document))


class RefusingDispatcher:
    """Stands in for the dispatcher when the agent is misconfigured: it records nothing, so no
    unredacted data can leave, and every report says why."""

    def __init__(self, reason: str) -> None:
        self._reason = reason
        self._lock = threading.Lock()
        self._refused = 0
        self.queue_depth = 0

    def submit(self, record: Record) -> bool:
        with self._lock:
            self._refused += 1
        return False

    def refuse(self, document: Mapping[str, Any], reason: str) -> None:
        with self._lock:
            self._refused += 1

    def report(self) -> DeliveryReport:
        with self._lock:
            refused = self._refused
        return DeliveryReport(
            recorded=refused,
            delivered=0,
            failed=refused,
            dropped=0,
            pending=0,
            spooled=0,
            failures=[Failure("*", f"agent misconfigured: {self._reason}")],
        )

    def flush(self, timeout_s: float) -> DeliveryReport:
        return self.report()

    def submit_on_disk(self, records: Sequence[Record]) -> list[bool]:
        with self._lock:
            self._refused += len(records)
        return [False] * len(records)

    def close(self, timeout_s: float) -> DeliveryReport:
        return self.report()

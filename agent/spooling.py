"""Delivery with a disk spool and a breaker, so that nobody waits on an absent broker.

- While the broker takes events and the spool is empty, each batch goes straight to librdkafka
  (``DirectSender``) and the worker moves on; delivery reports come back later.
- The first event that does not arrive opens the breaker: it and everything still in flight
  go to the spool, in order, and so does every new event while the spool holds anything.
- A drain thread of its own sends the spool, oldest first, with a publisher that waits for the
  broker's acknowledgement, backing off while the broker is away. Its waits hold up nobody: the
  worker meanwhile appends to the spool. Once the spool is empty, events go straight again.
- An event Kafka refuses for good (too large, an invalid record) fails alone: it is counted,
  logged and skipped, never retried at the head of the spool.
- A spool the disk will not write (no space left, an I/O error) is waited for as a full one
  is, then the batch is counted as failed; the next write that succeeds clears the fault.

Every outcome reaches the dispatcher's counters through ``settle``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Literal

from prometheus_client import Histogram

from driftline.agent.direct import DirectSender, Reports
from driftline.agent.logs import agent_logger
from driftline.agent.publisher import Outgoing, Publisher, PublishResult
from driftline.agent.spool import Spool, SpoolFull, SpoolWriteError

log = agent_logger(__name__)

FullPolicy = Literal["block", "drop"]
DRAIN_BATCH = 500
SPOOL_CHUNK = 128  # events per spool write: what fits of a large batch is kept
MAX_BACKOFF_S = 5.0
IDLE_WAIT_S = 0.05  # how often an idle drain thread looks at the spool

Settle = Callable[[PublishResult], None]


class SpoolingPublisher:
    def __init__(
        self,
        direct: DirectSender,
        drainer: Publisher,
        spool: Spool,
        *,
        full_policy: FullPolicy,
        block_ms: int,
        send_latency: Histogram | None = None,
    ) -> None:
        self._direct = direct
        self._send_latency = send_latency
        self._drainer = drainer
        self.spool = spool
        self._full_policy = full_policy
        self._block_s = block_ms / 1000
        self._backoff_s = 0.0
        self._next_drain = 0.0
        self._settle: Settle = _ignore
        self._stopping = threading.Event()
        self._drain_thread: threading.Thread | None = None
        self.send_errors = 0  # events Kafka did not take when sent (they went to the spool)
        self.write_errors = 0  # batches the spool's disk refused
        self.connected = True  # the breaker is closed: the last send reached Kafka
        self.disk_fault: str | None = None  # why the last spool write failed, until one works

    @property
    def backlog(self) -> int:
        return self.spool.count

    @property
    def in_flight(self) -> int:
        """Events sent straight whose delivery reports have not been collected."""
        return self._direct.in_flight

    def start(self, settle: Settle) -> None:
        """Start the drain thread; what it delivers or fails is reported to ``settle``."""
        self._settle = settle
        self._drain_thread = threading.Thread(
            target=self._drain_loop, name="driftline-agent-drain", daemon=True
        )
        self._drain_thread.start()

    def publish(self, batch: list[Outgoing]) -> PublishResult:
        """Send straight, or spool behind the backlog; never waits on the network."""
        if not (self.connected and self.spool.count == 0):
            return self._keep(batch)
        handed = self._direct.send(batch)
        if not handed.not_taken:
            return PublishResult(delivered=0, failed=handed.refused)
        # What is still in flight goes to the spool first, then what librdkafka would not
        # take: the drain then sends a decision's events in the order they were recorded.
        reports = self._direct.take_back()
        self._open(len(handed.not_taken), handed.reason or "not taken by the Kafka client")
        result = self._settle_reports(reports, reports.undelivered + handed.not_taken)
        return replace(result, failed=handed.refused + result.failed)

    def collect(self) -> PublishResult:
        """What the straight sends came to since the last call; undelivered events are
        spooled, and the breaker opens."""
        reports = self._direct.collect()
        if reports.undelivered:
            self._open(len(reports.undelivered), reports.reason or "not delivered")
        return self._settle_reports(reports, reports.undelivered)

    def _settle_reports(self, reports: Reports, to_spool: list[Outgoing]) -> PublishResult:
        """Spool ``to_spool``; count what the reports say arrived or was refused."""
        kept = self._keep(to_spool)
        if self._send_latency is not None and reports.acknowledged:
            now_ms = time.time() * 1000  # a UUIDv7 starts with its creation time in ms
            for item in reports.acknowledged:
                self._send_latency.observe(max(0.0, now_ms - (item.event_id.int >> 80)) / 1000)
        return PublishResult(
            delivered=len(reports.acknowledged),
            failed=reports.refused + kept.failed,
            spooled=kept.spooled,
            acknowledged=reports.acknowledged,
        )

    def write_ahead(self, batch: list[Outgoing]) -> PublishResult:
        """Spool ``batch`` (written and synced) for the drain thread to send: the caller may
        then say it is on disk."""
        return self._keep(batch)

    def park(self, batch: list[Outgoing]) -> PublishResult:
        """Spool without waiting for room: for shutdown."""
        return self._keep(batch, wait=False)

    def shutdown(self, timeout_s: float) -> None:
        """Stop draining, spool what straight sends did not deliver in ``timeout_s``, close."""
        self._stopping.set()
        if self._drain_thread is not None:
            # A drain waiting on an absent broker holds its batch for the delivery timeout;
            # the batch is still in the spool, so closing need not wait for it.
            self._drain_thread.join(timeout=max(timeout_s, 1.0))
        reports = self._direct.close(timeout_s)
        # Stopping, so the spool is not waited on: undelivered events are parked.
        self._settle(self._settle_reports(reports, reports.undelivered))
        self._drainer.shutdown(timeout_s=0)
        self.spool.close()

    def _keep(self, batch: list[Outgoing], *, wait: bool = True) -> PublishResult:
        """Spool the batch, in chunks so that what fits is kept. When the spool is full or its
        disk refuses, wait (policy "block") for the drain thread to make room, if the broker
        takes what it drains; what still does not fit is counted as failed. With the broker
        away nothing makes room, and a wait would only hold up the worker until its queue
        overflowed."""
        waiting = (
            wait and self._full_policy == "block" and self.connected and not self._stopping.is_set()
        )
        deadline = time.monotonic() + (self._block_s if waiting else 0)
        spooled = 0
        while spooled < len(batch):
            chunk = batch[spooled : spooled + SPOOL_CHUNK]
            try:
                self.spool.append(chunk)
            except (SpoolFull, SpoolWriteError) as refusal:
                if isinstance(refusal, SpoolWriteError):
                    self.disk_fault = str(refusal)
                if time.monotonic() < deadline:
                    self._next_drain = 0.0  # draining is what makes room
                    time.sleep(0.01)
                    continue
                lost = self._lost(batch[spooled:], refusal)
                return PublishResult(delivered=0, failed=lost.failed, spooled=spooled)
            spooled += len(chunk)
            if self.disk_fault is not None:
                log.info("spool writable again", spool=str(self.spool.directory))
                self.disk_fault = None
        return PublishResult(delivered=0, spooled=spooled)

    def _lost(self, batch: list[Outgoing], refusal: Exception) -> PublishResult:
        if isinstance(refusal, SpoolWriteError):
            self.write_errors += 1
        # Said once per batch; a full spool in a long outage says it at most every batch.
        log.error("events lost: the spool cannot keep them", count=len(batch), reason=str(refusal))
        return PublishResult(delivered=0, failed=[(item, str(refusal)) for item in batch])

    def _drain_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                # Not while straight sends are in flight: they are older than the spool's
                # tail, and go to its head if they fail.
                due = self.spool.count and time.monotonic() >= self._next_drain
                if due and self._direct.in_flight == 0:
                    self._settle(self._drain_once())
                else:
                    self._stopping.wait(IDLE_WAIT_S)
            except Exception:  # a bug here must not end delivery for the service's lifetime
                log.exception("spool drain failed; continuing")
                self._stopping.wait(1.0)

    def _drain_once(self) -> PublishResult:
        """Send the oldest batch of the spool; forget the events, from the first, that Kafka
        took or refused for good. Those after the first failure are sent again next time (the
        collector absorbs a copy that did arrive), so they are counted only then."""
        items = self.spool.peek(DRAIN_BATCH)
        if not items:
            return PublishResult(delivered=0)
        result = self._drainer.publish(items)
        failed = {id(item) for item, _ in result.failed}
        settled = next((n for n, item in enumerate(items) if id(item) in failed), len(items))
        self.spool.commit(settled)
        within = {id(item) for item in items[:settled]}
        refused = [(item, why) for item, why in result.refused if id(item) in within]
        for item, why in refused:
            log.error("event refused by Kafka; skipped", event_id=str(item.event_id), reason=why)
        if result.failed:
            self._open(len(result.failed), result.failed[0][1], draining=True)
        else:
            self._reconnected()
        skipped = {id(item) for item, _ in refused}
        delivered = [item for item in items[:settled] if id(item) not in skipped]
        return PublishResult(delivered=len(delivered), failed=refused, acknowledged=delivered)

    def _open(self, failed: int, reason: str, *, draining: bool = False) -> None:
        self.send_errors += failed
        if draining:
            self._backoff_s = min(MAX_BACKOFF_S, max(0.1, self._backoff_s * 2))
            self._next_drain = time.monotonic() + self._backoff_s
        # Said once per outage; the retries that follow are for the debug log only.
        report = log.warning if self.connected else log.debug
        report("Kafka not taking events; spooling them", reason=reason, retry_in_s=self._backoff_s)
        self.connected = False

    def _reconnected(self) -> None:
        self._backoff_s = 0.0
        if not self.connected:
            log.info("Kafka takes events again; draining the spool", spooled=self.spool.count)
        self.connected = True


def _ignore(_result: PublishResult) -> None:
    pass

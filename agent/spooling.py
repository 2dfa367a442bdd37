"""Wraps any publisher with the disk spool, so that what Kafka cannot take now is kept.

While the spool holds anything, new events go behind it and the spool drains oldest first:
events about one decision stay in order. A failed drain backs off, so new events are spooled
at once instead of each waiting out the broker's timeouts.
"""

from __future__ import annotations

import time
from typing import Literal

import structlog

from agent.publisher import Outgoing, Publisher, PublishResult
from agent.spool import Spool, SpoolFull

log = structlog.get_logger(__name__)

FullPolicy = Literal["block", "drop"]
DRAIN_BATCH = 500
# A drain hands the worker back after this long, so that events recorded meanwhile go to the
# spool behind the backlog instead of filling the in-memory queue until they drop: a large
# spool takes many seconds to drain.
DRAIN_SLICE_S = 0.2
MAX_BACKOFF_S = 5.0


class SpoolingPublisher:
    def __init__(
        self, inner: Publisher, spool: Spool, *, full_policy: FullPolicy, block_ms: int
    ) -> None:
        self._inner = inner
        self.spool = spool
        self._full_policy = full_policy
        self._block_s = block_ms / 1000
        self._backoff_s = 0.0
        self._next_drain = 0.0
        self.send_errors = 0  # sends Kafka did not take (those events went to the spool)
        self.connected = True  # the last send reached Kafka

    @property
    def backlog(self) -> int:
        return self.spool.count

    @property
    def drain_due(self) -> bool:
        """The spool holds events and no failed send is being backed off from."""
        return self.spool.count > 0 and time.monotonic() >= self._next_drain

    def publish(self, batch: list[Outgoing]) -> PublishResult:
        if self.spool.count == 0 and time.monotonic() >= self._next_drain:
            result = self._inner.publish(batch)
            if not result.failed:
                self._reconnected()
                return result
            self._back_off(len(result.failed), result.failed[0][1])
            delivered, batch = result.delivered, [item for item, _ in result.failed]
        else:
            delivered = 0
        spooled, lost = self._keep(batch)
        drained = self.drain()
        return PublishResult(delivered=delivered + drained, failed=lost, spooled=spooled)

    def drain(self) -> int:
        """Send what the spool holds, oldest first, until it is empty, a send fails or
        DRAIN_SLICE_S has passed."""
        drained = 0
        until = time.monotonic() + DRAIN_SLICE_S
        while self.drain_due and time.monotonic() < until:
            items = self.spool.peek(DRAIN_BATCH)
            result = self._inner.publish(items)
            delivered_prefix = _delivered_prefix(items, result)
            self.spool.commit(delivered_prefix)
            drained += delivered_prefix
            if result.failed:
                self._back_off(len(result.failed), result.failed[0][1])
                break
            self._reconnected()
        return drained

    def park(self, batch: list[Outgoing]) -> PublishResult:
        """Spool without trying the network: for shutdown, when the deadline has passed."""
        try:
            self.spool.append(batch)
        except SpoolFull as full:
            log.error("spool full at shutdown; events lost", count=len(batch))
            return PublishResult(delivered=0, failed=[(item, str(full)) for item in batch])
        return PublishResult(delivered=0, spooled=len(batch))

    def shutdown(self, timeout_s: float) -> None:
        self._inner.shutdown(timeout_s)
        self.spool.close()

    def _keep(self, batch: list[Outgoing]) -> tuple[int, list[tuple[Outgoing, str]]]:
        """Spool the batch; when the spool is full, wait (policy "block") or lose it."""
        if not batch:
            return 0, []
        deadline = time.monotonic() + (self._block_s if self._full_policy == "block" else 0)
        while True:
            try:
                self.spool.append(batch)
                return len(batch), []
            except SpoolFull as full:
                if time.monotonic() >= deadline:
                    log.error("spool full; events lost", count=len(batch), spool=str(full))
                    return 0, [(item, str(full)) for item in batch]
                self._next_drain = 0.0
                if not self.drain():
                    time.sleep(0.01)

    def _back_off(self, failed: int, reason: str) -> None:
        self.send_errors += failed
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


def _delivered_prefix(items: list[Outgoing], result: PublishResult) -> int:
    """How many of ``items``, from the first, were delivered: the spool drops only those."""
    failed = {id(item) for item, _ in result.failed}
    for position, item in enumerate(items):
        if id(item) in failed:
            return position
    return len(items)

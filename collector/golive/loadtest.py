"""The stability audit: drive the agent at a steady rate (three times the stated peak, say)
against the live pipeline, and measure what the service and the auditors would see.

The decisions go to a synthetic version of the model (``driftline.collector.store.synthetic``), so
they never count in the real version's figures. Measured: the time each ``record_decision`` call
took the caller (median, p99), events lost (dropped or failed), the error rate, the delay from
recording to queryable in the store (median, p99: read off the store's progress, which is polled
every 50 ms), and the recovery time: from the end of the load until every event is queryable.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import Engine
from sqlmodel import Session, col, func, select

from driftline.agent import Driftline
from driftline.agent.contract import LoadTestedPayload
from driftline.collector.store.models import Decision
from driftline.collector.store.synthetic import synthetic_version

POLL_S = 0.05


@dataclass(frozen=True)
class LoadTestResult:
    model: str
    version: str  # the real version this load test qualifies
    synthetic_version: str
    rate_per_s: float
    duration_s: float
    peak_per_s: float | None
    sent: int
    lost: int
    error_rate: float
    achieved_per_s: float
    call_median_us: float
    call_p99_us: float
    delay_median_ms: float | None
    delay_p99_ms: float | None
    recovery_s: float | None  # None: not every event became queryable before the deadline

    @property
    def passed(self) -> bool:
        """Nothing lost, everything queryable, and the rate held within 5%."""
        return (
            self.lost == 0
            and self.recovery_s is not None
            and self.achieved_per_s >= 0.95 * self.rate_per_s
        )

    def document(self) -> dict[str, Any]:
        return asdict(self) | {"passed": self.passed}

    def payload(self) -> LoadTestedPayload:
        """The ``load_tested`` event's payload; the event's envelope names the model."""
        figures = self.document()
        del figures["model"]
        return LoadTestedPayload(**figures)


def run_load_test(
    agent: Driftline,
    engine: Engine,
    *,
    model: str,
    version: str,
    rate_per_s: float,
    duration_s: float,
    peak_per_s: float | None = None,
    settle_s: float = 120.0,
) -> LoadTestResult:
    target = synthetic_version(version, "load", datetime.now(UTC))
    total = int(rate_per_s * duration_s)
    calls_ns: list[int] = []
    recorded_at = np.zeros(total)
    progress = _StoreProgress(engine, model, target)
    progress.start()
    began = time.perf_counter()
    for n in range(total):
        delay = began + n / rate_per_s - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        started = time.perf_counter_ns()
        agent.record_decision(
            model=model,
            version=target,
            inputs={"load_sequence": n, "amount": (n * 7919) % 10_000},
            output="approve",
            confidence=0.9,
            latency_ms=1.0,
        )
        calls_ns.append(time.perf_counter_ns() - started)
        recorded_at[n] = time.perf_counter()
    load_ended = time.perf_counter()
    report = agent.flush(timeout_s=settle_s)
    delivered = report.delivered
    stored_all = progress.wait_for(total, deadline=load_ended + settle_s)
    progress.stop()
    queryable = progress.times_of(total)
    delays_ms = (queryable - recorded_at) * 1000 if stored_all else None
    calls_us = np.asarray(calls_ns) / 1000
    lost = report.dropped + report.failed
    return LoadTestResult(
        model=model,
        version=version,
        synthetic_version=target,
        rate_per_s=rate_per_s,
        duration_s=duration_s,
        peak_per_s=peak_per_s,
        sent=total,
        lost=lost,
        error_rate=(total - delivered) / total if total else 0.0,
        achieved_per_s=round(total / (load_ended - began), 1),
        call_median_us=round(float(np.median(calls_us)), 2),
        call_p99_us=round(float(np.percentile(calls_us, 99)), 2),
        delay_median_ms=round(float(np.median(delays_ms)), 1) if delays_ms is not None else None,
        delay_p99_ms=round(float(np.percentile(delays_ms, 99)), 1)
        if delays_ms is not None
        else None,
        recovery_s=round(float(queryable[-1]) - load_ended, 2) if stored_all else None,
    )


class _StoreProgress:
    """How many of the load test's decisions the store holds, over time, polled on a thread."""

    def __init__(self, engine: Engine, model: str, version: str) -> None:
        self._engine, self._model, self._version = engine, model, version
        self._seen: list[tuple[float, int]] = [(time.perf_counter(), 0)]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="loadtest-progress", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def wait_for(self, count: int, deadline: float) -> bool:
        while self._seen[-1][1] < count:
            if time.perf_counter() > deadline:
                return False
            time.sleep(POLL_S)
        return True

    def times_of(self, count: int) -> np.ndarray[Any, np.dtype[np.float64]]:
        """When the store first held 1, 2, ... ``count`` of the decisions (by its progress)."""
        moments = np.array([t for t, _ in self._seen], dtype=np.float64)
        counts = np.array([c for _, c in self._seen])
        first = np.searchsorted(counts, np.arange(1, count + 1), side="left")
        found: np.ndarray[Any, np.dtype[np.float64]] = moments[first.clip(max=len(moments) - 1)]
        return found

    def _poll(self) -> None:
        statement = select(func.count()).where(
            col(Decision.model_name) == self._model, col(Decision.model_version) == self._version
        )
        with Session(self._engine) as session:
            while not self._stop.is_set():
                stored = session.exec(statement).one()
                session.rollback()  # a fresh snapshot next time
                if stored != self._seen[-1][1]:
                    self._seen.append((time.perf_counter(), stored))
                self._stop.wait(POLL_S)

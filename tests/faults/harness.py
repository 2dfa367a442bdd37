"""What every fault scenario is made of: a steady stream of decisions from an agent, collector
processes that can be killed, and the tally of what the store holds at the end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlmodel import Session

from driftline.agent import Driftline
from driftline.collector.store import ledger
from driftline.collector.store.models import DeadLetter, LedgerEntry


@dataclass(frozen=True)
class Row:
    """One line of the reliability table."""

    scenario: str
    load: str
    fault: str
    sent: int  # events (or notifications) the system accepted
    stored: int  # rows holding them (ledger entries, or notifications received)
    distinct: int  # of those, different events
    intact: bool  # the ledger verifies
    seconds: float
    note: str = ""

    @property
    def lost(self) -> int:
        return self.sent - self.distinct

    @property
    def duplicated(self) -> int:
        return self.stored - self.distinct

    @property
    def clean(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and self.intact


@dataclass(frozen=True)
class Tally:
    stored: int
    distinct: int
    dead_letters: int
    intact: bool


def tally(engine: Engine) -> Tally:
    with Session(engine) as session:
        stored = session.execute(select(func.count()).select_from(LedgerEntry)).scalar_one()
        distinct = session.execute(
            select(func.count(func.distinct(LedgerEntry.event_id)))
        ).scalar_one()
        dead = session.execute(select(func.count()).select_from(DeadLetter)).scalar_one()
        intact = ledger.verify(session).intact
    return Tally(stored, distinct, dead, intact)


def dead_letter_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(DeadLetter)).scalar_one())


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Poll ``condition`` until true; the seconds it took. Fails with ``what``."""
    began = time.monotonic()
    while not condition():
        if time.monotonic() - began > timeout_s:
            raise TimeoutError(f"gave up after {timeout_s:.0f}s waiting for {what}")
        time.sleep(0.2)
    return time.monotonic() - began


class CollectorProcess:
    """``driftline collect`` in a process of its own, its output in a log file."""

    def __init__(
        self,
        *,
        database_url: str,
        bootstrap_servers: str,
        topic: str,
        group: str,
        log: Path,
        producer_key_file: Path,
    ) -> None:
        self._log = log
        self._environment = os.environ | {
            "DRIFTLINE_DATABASE_URL": database_url,
            "DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers,
            "DRIFTLINE_TOPIC": topic,
            "DRIFTLINE_CONSUMER_GROUP": group,
            "DRIFTLINE_LOG_LEVEL": "warning",
            "DRIFTLINE_PRODUCER_KEY_FILE": str(producer_key_file),  # trusted: it exists
        }
        self._process = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        with self._log.open("ab") as output:
            return subprocess.Popen(
                [sys.executable, "-m", "driftline", "collect"],
                env=self._environment,
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    def check_alive(self) -> None:
        if self._process.poll() is not None:
            tail = self._log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"collector exited with {self._process.returncode}: {tail}")

    def kill_and_restart(self) -> None:
        self._process.send_signal(signal.SIGKILL)
        self._process.wait(timeout=10)
        self._process = self._start()

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=30)


@dataclass(frozen=True)
class StreamResult:
    calls: int
    slowest_call_ms: float
    p99_call_ms: float


class Stream:
    """Decisions recorded at a steady rate on a thread, as a service records them."""

    def __init__(self, agent: Driftline, rate_per_s: float) -> None:
        self._agent = agent
        self._rate = rate_per_s
        self._stop = threading.Event()
        self._calls_s: list[float] = []
        self._thread = threading.Thread(target=self._run, name="stream", daemon=True)

    def start(self) -> Stream:
        self._thread.start()
        return self

    @property
    def calls(self) -> int:
        return len(self._calls_s)

    def stop(self) -> StreamResult:
        self._stop.set()
        self._thread.join()
        ordered = sorted(self._calls_s)
        return StreamResult(
            calls=len(ordered),
            slowest_call_ms=round(ordered[-1] * 1000, 2),
            p99_call_ms=round(ordered[int(len(ordered) * 0.99)] * 1000, 3),
        )

    def _run(self) -> None:
        began = time.monotonic()
        n = 0
        while not self._stop.is_set():
            delay = began + n / self._rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            called = time.perf_counter()
            self._agent.record_decision(
                model="reliability", version="1", inputs={"n": n, "amount": (n * 7919) % 10_000},
                output="approve", confidence=0.9, latency_ms=1.0,
            )  # fmt: skip
            self._calls_s.append(time.perf_counter() - called)
            n += 1

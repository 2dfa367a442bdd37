"""The detector worker loses no verdict: one its agent does not take (the queue full) moves no
drift state, and the next round sends it, though no decision came in between."""

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from sqlalchemy import Engine
from sqlmodel import Session

from driftline.agent import Driftline, Recorded
from driftline.agent.contract import (
    BaselineSetEvent,
    BaselineSetPayload,
    DecisionPayload,
    DriftDetectedEvent,
    Event,
    decode,
    encode,
)
from driftline.collector.consume.ingest import RawMessage, write_batch
from driftline.collector.core.settings import CollectorSettings
from driftline.collector.drift.baselines import fit_rows, for_one_event
from driftline.collector.drift.worker import DetectorWorker
from driftline.collector.runtime.broker import EmbeddedBroker
from tests import events
from tests.topic_reader import read_topic


class Gate(SpanProcessor):
    """Holds the agent's worker thread in the first decision's span until opened, so that its
    queue fills up behind it."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()

    def on_end(self, span: ReadableSpan) -> None:
        self.entered.set()
        self.opened.wait(timeout=30)


@pytest.fixture
def gate() -> Iterator[Gate]:
    held = Gate()
    yield held
    held.opened.set()  # never leave the agent's worker held


def store(engine: Engine, batch: list[Event]) -> None:
    with Session(engine) as session:
        messages = [RawMessage("events", 0, n, None, encode(e)) for n, e in enumerate(batch)]
        write_batch(session, messages)
        session.commit()


def baseline_of_x(rng: random.Random, size: int) -> BaselineSetEvent:
    """The event that sets a baseline of ``size`` values of ``x`` around 0."""
    fitted = for_one_event(fit_rows([[{"x": rng.gauss(0, 1)} for _ in range(size)]]), "test")
    return BaselineSetEvent(
        service="ml-lead",
        model=events.MODEL,
        payload=BaselineSetPayload(
            version=events.MODEL.version, baseline_id=fitted.baseline_id, source=fitted.source,
            set_by="ml-lead", size=fitted.baseline.size, record=fitted.record,
        ),
    )  # fmt: skip


def shifted_decisions(engine: Engine) -> None:
    """A baseline of ``x`` around 0, and 300 decisions with ``x`` around 3."""
    rng = random.Random(1)
    baseline = baseline_of_x(rng, 1_000)
    payloads = [
        DecisionPayload(
            inputs={"x": rng.gauss(3, 1)},
            output="approve",
            confidence=0.9,
            latency_ms=1.0,
            automated=True,
        )
        for _ in range(300)
    ]
    decisions = [events.decision(payload=payload) for payload in payloads]
    store(engine, [baseline, *decisions])


def decide(agent: Driftline) -> Recorded:
    return agent.record_decision(
        model="service", version="1", inputs={}, output=0, confidence=1.0, latency_ms=1.0
    )


def test_a_verdict_the_agent_drops_is_sent_on_the_next_round(
    broker: EmbeddedBroker, topic: str, engine: Engine, gate: Gate, tmp_path: Path
) -> None:
    shifted_decisions(engine)
    settings = CollectorSettings(  # the window's check alone: one verdict for one queue place
        topic=topic,
        detect_min_decisions=100,
        detect_window_decisions=500,
        detect_raise_after=1,
        detect_stream_arl=0,
    )
    provider = TracerProvider()
    provider.add_span_processor(gate)
    with Driftline(
        service="driftline-detector", kafka_bootstrap_servers=broker.bootstrap_servers,
        topic=topic, queue_size=1, tracer_provider=provider, spool_dir=tmp_path / "spool",
    ) as agent:  # fmt: skip
        worker = DetectorWorker(engine, agent, settings)
        decide(agent)
        assert gate.entered.wait(timeout=10), "the agent's worker never took the decision"
        assert decide(agent).queued  # the one place in the queue, taken

        assert worker.check_all() == []  # the queue is full: nothing recorded
        assert agent.flush(timeout_s=0).dropped >= 1
        gate.opened.set()
        # The queue has room again only once the agent's worker has taken what it held: on a
        # loaded machine, retrying at once could find it still full.
        assert agent.flush(timeout_s=30).pending == 0
        retried = worker.check_all()  # no new decision: only what was due and not recorded
        assert [(t.state, t.verdict.feature) for t in retried] == [("detected", "x")]
        assert worker.check_all() == []  # recorded once
        report = agent.flush(timeout_s=30)
        assert report.delivered == 3, report

    sent = [decode(r.value) for r in read_topic(broker.bootstrap_servers, topic, 3)]
    assert [e.payload.feature for e in sent if isinstance(e, DriftDetectedEvent)] == ["x"]


def test_the_sequential_check_raises_between_rounds_and_survives_a_restart(
    broker: EmbeddedBroker, topic: str, engine: Engine, tmp_path: Path
) -> None:
    rng = random.Random(2)
    baseline = baseline_of_x(rng, 2_000)

    def decisions(mean: float, count: int) -> list[Event]:
        return [
            events.decision(
                payload=DecisionPayload(
                    inputs={"x": rng.gauss(mean, 1)}, output="approve", confidence=0.9,
                    latency_ms=1.0, automated=True,
                )
            )
            for _ in range(count)
        ]  # fmt: skip

    store(engine, [baseline, *decisions(0.0, 1_500)])
    settings = CollectorSettings(topic=topic, detect_min_decisions=100)
    with Driftline(
        service="driftline-detector", kafka_bootstrap_servers=broker.bootstrap_servers,
        topic=topic, spool_dir=tmp_path / "spool",
    ) as agent:  # fmt: skip
        worker = DetectorWorker(engine, agent, settings)
        assert worker.check_all() == []  # no shift: neither check alarms
        store(engine, decisions(1.5, 40))  # 40 decisions 1.5 sd off: too few for the window
        raised = worker.check_streams()  # between full rounds, the sequential check alone
        assert [(t.state, t.verdict.test) for t in raised] == [("detected", "cusum")]
        assert raised[0].verdict.current_size == 40  # only the decisions it had not taken
        assert agent.flush(timeout_s=30).delivered == 1
        store(engine, [decode(r.value) for r in read_topic(broker.bootstrap_servers, topic, 1)])

        # A worker started afresh replays the window, so its statistic is as high as it was:
        # starting from zero, rounds of five shifted decisions would stay under the threshold,
        # count as quiet, and resolve the drift while it goes on.
        restarted = DetectorWorker(engine, agent, settings)
        for _ in range(4):
            store(engine, decisions(1.5, 5))
            again = [t for t in restarted.check_all() if t.verdict.test == "cusum"]
            assert again == []  # neither raised again nor resolved


def test_a_drift_whose_traffic_stops_resolves_as_stale_and_raises_again_when_it_returns(
    broker: EmbeddedBroker, topic: str, engine: Engine, tmp_path: Path
) -> None:
    """Timed by arrival, not by the decisions' own times (these are dated now, and would be
    as stale in a backfill); a worker that starts on a drift it did not count takes the stored
    verdict."""
    shifted_decisions(engine)
    settings = CollectorSettings(
        topic=topic, detect_min_decisions=100, detect_window_decisions=500,
        detect_raise_after=1, detect_stream_arl=0, detect_stale_after_s=0.5,
    )  # fmt: skip
    with Driftline(
        service="driftline-detector", kafka_bootstrap_servers=broker.bootstrap_servers,
        topic=topic, spool_dir=tmp_path / "spool",
    ) as agent:  # fmt: skip
        worker = DetectorWorker(engine, agent, settings)
        assert [(t.state, t.verdict.feature) for t in worker.check_all()] == [("detected", "x")]
        assert worker.check_all() == []  # quiet for less than 0.5 s
        time.sleep(0.6)
        (stale,) = worker.check_all()
        assert stale.state == "resolved" and stale.verdict.feature == "x"
        (reason,) = stale.verdict.evidence
        assert reason.startswith("stale: no new decision for 1 s (stale after 0.5 s)"), reason
        assert "not because the drift ended" in reason
        time.sleep(0.6)
        assert worker.check_all() == []  # resolved once, and not raised again without traffic

        shifted_decisions(engine)  # traffic returns, still shifted
        assert [(t.state, t.verdict.feature) for t in worker.check_all()] == [("detected", "x")]
        assert agent.flush(timeout_s=30).ok
        sent = [decode(r.value) for r in read_topic(broker.bootstrap_servers, topic, 3)]
        store(engine, sent)

        # A worker that never counted the window (too small for it to check) resolves the
        # drift the store says is open, from the stored verdict.
        cannot_check = settings.model_copy(update={"detect_min_decisions": 10_000})
        restarted = DetectorWorker(engine, agent, cannot_check)
        assert restarted.check_all() == []
        time.sleep(0.6)
        (again,) = restarted.check_all()
        assert (again.state, again.verdict.feature, again.verdict.test) == ("resolved", "x", "ks")
        assert again.verdict.evidence[0].startswith("stale: ")
        assert agent.flush(timeout_s=30).ok
        store(engine, [decode(r.value) for r in read_topic(broker.bootstrap_servers, topic, 4)])
        # Another restart, no new decision: the stale window is not checked, nor raised, again.
        assert DetectorWorker(engine, agent, settings).check_all() == []
    kinds = [type(decode(r.value)).__name__ for r in read_topic(broker.bootstrap_servers, topic, 4)]
    assert kinds == ["DriftDetectedEvent", "DriftResolvedEvent", "DriftDetectedEvent",
                     "DriftResolvedEvent"]  # fmt: skip

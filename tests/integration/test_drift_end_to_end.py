"""Drift, end to end: the demo's service shifts one input and loses confidence; the detector
worker fits a baseline from the first decisions, and its verdicts travel through Kafka into the
ledger and the API; when the shift stops, the drift resolves."""

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from driftline.agent import Driftline
from driftline.collector.core.settings import CollectorSettings
from driftline.collector.drift.baselines import active_baseline
from driftline.collector.drift.worker import DETECTOR_SERVICE, DetectorWorker
from driftline.collector.runtime.broker import EmbeddedBroker
from driftline.collector.runtime.simulation import (
    MODEL,
    REVIEW_BELOW,
    SERVICE,
    VERSION,
    run_simulation,
)
from driftline.collector.store.models import DriftVerdict, LedgerEntry
from tests.api_client import api_client
from tests.waiting import wait_for

BATCH = 150


@pytest.fixture
def detector(
    broker: EmbeddedBroker, topic: str, engine: Engine, database_url: str, tmp_path: Path
) -> Iterator[None]:
    settings = CollectorSettings(
        database_url=database_url,
        topic=topic,
        detect_interval_s=0.3,
        detect_window_decisions=500,
        detect_min_decisions=200,
        detect_baseline_first=1_000,
        detect_review_threshold=REVIEW_BELOW,
        # Many checks run in this test; a stricter rate and two alarms in a row keep a false
        # alarm on an unshifted feature unlikely, while the real shift is caught at once.
        detect_false_alarm_rate=0.001,
        detect_raise_after=2,
        detect_clear_after=3,
    )
    stop = threading.Event()
    with Driftline(
        service=DETECTOR_SERVICE,
        kafka_bootstrap_servers=broker.bootstrap_servers,
        topic=topic,
        spool_dir=tmp_path / "detector-spool",
    ) as agent:
        worker = threading.Thread(
            target=DetectorWorker(engine, agent, settings).run, args=(stop,), daemon=True
        )
        worker.start()
        yield
        stop.set()
        worker.join(timeout=15)


def verdicts(engine: Engine) -> list[tuple[str, str, str]]:
    with Session(engine) as session:
        rows = session.exec(select(DriftVerdict).order_by(DriftVerdict.occurred_at)).all()
        return [(v.state, v.feature, v.test) for v in rows]


def test_a_shift_is_detected_for_that_feature_and_confidence_then_resolved(
    broker: EmbeddedBroker,
    topic: str,
    engine: Engine,
    run_collector: Callable[[], None],
    detector: None,
) -> None:
    run_collector()
    sent = 0
    with Driftline(
        service=SERVICE, kafka_bootstrap_servers=broker.bootstrap_servers, topic=topic
    ) as service:

        def stream(*, shifted: bool, until: Callable[[list[tuple[str, str, str]]], bool]) -> None:
            """Decisions in steady batches, as a live service makes them, until ``until``."""
            nonlocal sent
            for _ in range(40):
                run_simulation(
                    service, decisions=BATCH, seed=sent, shifted=shifted, deploy=sent == 0,
                    first_number=sent,
                )  # fmt: skip
                sent += BATCH
                assert service.flush(timeout_s=30).ok
                try:
                    wait_for(lambda: verdicts(engine), until, timeout_s=0.8)
                    return
                except AssertionError:
                    continue
            raise AssertionError(f"still waiting after {sent} decisions: {verdicts(engine)}")

        def has_baseline() -> bool:
            with Session(engine) as session:
                return active_baseline(session, MODEL, VERSION) is not None

        stream(shifted=False, until=lambda _: has_baseline() and sent >= 1_800)
        assert verdicts(engine) == [], "drift reported before anything shifted"

        def detected(found: list[tuple[str, str, str]]) -> bool:
            return {("debt_ratio", "ks"), ("confidence", "ks")} <= {(f, t) for _, f, t in found}

        stream(shifted=True, until=detected)
        inputs = {"income", "age", "debt_ratio", "employment_years", "region"}
        drifted_inputs = {f for state, f, _ in verdicts(engine) if f in inputs}
        assert drifted_inputs == {"debt_ratio"}

        def resolved(found: list[tuple[str, str, str]]) -> bool:
            return {("resolved", "debt_ratio", "ks"), ("resolved", "confidence", "ks")} <= set(
                found
            )

        stream(shifted=False, until=resolved)

    with Session(engine) as session:
        in_ledger = session.exec(
            select(LedgerEntry.event_type).where(LedgerEntry.event_type.startswith("drift_"))
        ).all()
    assert in_ledger.count("drift_detected") == sum(s == "detected" for s, _, _ in verdicts(engine))
    assert "drift_resolved" in in_ledger

    with api_client(engine) as api:
        detail = api.get(f"/drift/{MODEL}/{VERSION}").json()
        by_check = {(c["feature"], c["test"]): c for c in detail["checks"]}
        assert by_check[("debt_ratio", "ks")]["state"] == "ok"
        assert by_check[("debt_ratio", "ks")]["verdict"]["p_value"] <= 1
        assert detail["baseline"]["features"]["region"] == "categorical"
        history = [(v["state"], v["feature"]) for v in detail["history"]]
        assert ("detected", "debt_ratio") in history and ("resolved", "debt_ratio") in history
        overview = api.get("/drift").json()
        assert [(o["model"], o["version"]) for o in overview] == [(MODEL, VERSION)]
        assert api.get(f"/drift/{MODEL}/0.0.0").status_code == 404

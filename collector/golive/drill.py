"""An incident drill: a clearly labelled synthetic incident injected into the live pipeline, to
show that an alert about the model reaches its receivers, and how fast.

The drill's decisions are recorded under a synthetic version (``<version>~drill-<time>``), so
they never count in real figures or exports. It sets that version a baseline of normal
decisions, then sends a burst with one feature shifted and low confidence; the detector
worker flags it, the router notifies the model's receivers, and the drill passes once a
receiver has accepted the notification (an ``alert_notified`` event in the store). It fails,
saying why, when nothing reached a receiver before the deadline. Normal decisions follow, so
the detector resolves the drill's alert in its own time.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from driftline.agent import Driftline
from driftline.agent.contract import DrillCompletedPayload, ModelRef
from driftline.collector.drift.baselines import baseline_payload, fit_rows, for_one_event
from driftline.collector.store.models import (
    AlertNotification,
    BaselineRecord,
    DriftVerdict,
    OutboxMessage,
)
from driftline.collector.store.synthetic import synthetic_version

FEATURE = "drill_signal"
POLL_S = 0.5


@dataclass(frozen=True)
class DrillResult:
    model: str
    version: str
    synthetic_version: str
    passed: bool
    reason: str
    seconds_to_notification: float | None
    receivers: list[str]

    def payload(self) -> DrillCompletedPayload:
        """The ``drill_completed`` event's payload; the event's envelope names the model."""
        figures = asdict(self)
        del figures["model"]
        return DrillCompletedPayload(**figures)


def run_drill(
    agent: Driftline,
    engine: Engine,
    *,
    model: str,
    version: str,
    burst: int = 500,
    timeout_s: float = 600.0,
    seed: int = 0,
) -> DrillResult:
    rng = random.Random(seed)
    target = synthetic_version(version, "drill", datetime.now(UTC))
    normal = [_row(rng, shifted=False) for _ in range(2_000)]
    fitted = for_one_event(fit_rows([normal]), f"drill of {model} {version}")
    agent.record_component(
        "baseline_set",
        baseline_payload(fitted, version=target, set_by="driftline drill"),
        model=ModelRef(name=model, version=target),
    )
    agent.flush(timeout_s=30)
    deadline = time.monotonic() + timeout_s
    if not _wait(lambda: _baseline_stored(engine, model, target), deadline):
        return _failed(model, version, target, "the drill's baseline never reached the store "
                       "(is a collector consuming the topic?)")  # fmt: skip
    injected = datetime.now(UTC)
    for _ in range(burst):
        _decide(agent, model, target, _row(rng, shifted=True))
    agent.flush(timeout_s=30)
    if not _wait(lambda: bool(_notified(engine, target)), deadline):
        return _failed(model, version, target, _why_nothing_arrived(engine, model, target))
    notifications = _notified(engine, target)
    first = min(n.occurred_at for n in notifications)
    for _ in range(burst * 4):  # back to normal: the detector resolves the drill's alert
        _decide(agent, model, target, _row(rng, shifted=False))
    agent.flush(timeout_s=30)
    receivers = sorted({n.receiver for n in notifications})
    seconds = round((first - injected).total_seconds(), 1)
    return DrillResult(
        model, version, target, True,
        f"notified {', '.join(receivers)} {seconds} s after the injection", seconds, receivers,
    )  # fmt: skip


def _row(rng: random.Random, *, shifted: bool) -> dict[str, float]:
    return {
        FEATURE: rng.gauss(3.0 if shifted else 0.0, 1.0),
        "confidence": rng.uniform(0.05, 0.3) if shifted else rng.uniform(0.75, 0.99),
    }


def _decide(agent: Driftline, model: str, version: str, row: dict[str, float]) -> None:
    agent.record_decision(
        model=model,
        version=version,
        inputs={FEATURE: row[FEATURE], "drill": True},
        output="drill",
        confidence=row["confidence"],
        latency_ms=1.0,
        subject_ref="driftline-drill",
    )


def _wait(condition: Callable[[], bool], deadline: float) -> bool:
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_S)
    return True


def _baseline_stored(engine: Engine, model: str, version: str) -> bool:
    with Session(engine) as session:
        return (
            session.exec(
                select(BaselineRecord.event_id).where(
                    BaselineRecord.model_name == model, BaselineRecord.model_version == version
                )
            ).first()
            is not None
        )


def _notified(engine: Engine, version: str) -> list[AlertNotification]:
    """Firing notifications about the drill's version that a receiver accepted."""
    with Session(engine) as session:
        rows = session.exec(
            select(AlertNotification, OutboxMessage.common_labels)
            .join(OutboxMessage, col(OutboxMessage.id) == col(AlertNotification.notification_id))
            .where(AlertNotification.status == "firing")
        ).all()
    return [n for n, labels in rows if labels.get("version") == version]


def _why_nothing_arrived(engine: Engine, model: str, version: str) -> str:
    with Session(engine) as session:
        verdicts = session.exec(
            select(DriftVerdict.feature).where(
                DriftVerdict.model_name == model, DriftVerdict.model_version == version
            )
        ).all()
        if not verdicts:
            return (
                "the detector reported no drift on the injected incident in time "
                "(is a detector worker running?)"
            )
        messages = [
            m
            for m in session.exec(select(OutboxMessage)).all()
            if m.common_labels.get("version") == version
        ]
    if not messages:
        return (
            f"drift was detected ({', '.join(sorted(set(verdicts)))}) but no notification was "
            "routed (is the alert router running with an alerting file?)"
        )
    failures = [f"{m.receiver} ({m.integration}): {m.last_error}" for m in messages if m.last_error]
    return "no receiver accepted the alert: " + ("; ".join(failures) or "still pending")


def _failed(model: str, version: str, target: str, reason: str) -> DrillResult:
    return DrillResult(model, version, target, False, reason, None, [])

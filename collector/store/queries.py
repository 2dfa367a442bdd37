"""Read queries on the store, kept out of the API routes."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy import func
from sqlmodel import Session, col, select

from driftline.collector.store.models import (
    AlertNotification,
    BaselineRecord,
    Decision,
    DriftVerdict,
    Feedback,
    LedgerEntry,
    ModelDeployment,
    OutboxMessage,
    ReadinessEvaluation,
    Review,
)
from driftline.collector.store.synthetic import is_synthetic


@dataclass(frozen=True)
class DecisionTrail:
    decision: Decision
    reviews: list[Review]
    feedback: list[Feedback]


def decision_trail(*, session: Session, decision_id: uuid.UUID) -> DecisionTrail | None:
    decision = session.get(Decision, decision_id)
    if decision is None:
        return None
    reviews = session.exec(
        select(Review).where(Review.decision_id == decision_id).order_by(col(Review.occurred_at))
    ).all()
    feedback = session.exec(
        select(Feedback)
        .where(Feedback.decision_id == decision_id)
        .order_by(col(Feedback.occurred_at))
    ).all()
    return DecisionTrail(decision, list(reviews), list(feedback))


@dataclass(frozen=True)
class OpenAlert:
    """The last notification of an alert group about a model version, while it was firing."""

    notification: AlertNotification
    labels: dict[str, str]


@dataclass(frozen=True)
class Lineage:
    """Everything that bears on one decision, as it stood when the decision was taken."""

    trail: DecisionTrail
    ledger_entry: LedgerEntry | None
    drifting: list[DriftVerdict]  # checks of its model version in drift at that time
    alerts: list[OpenAlert]
    baseline: BaselineRecord | None  # the baseline in force at that time
    deployment: ModelDeployment | None  # the latest deployment of its version before it


def lineage(*, session: Session, decision_id: uuid.UUID) -> Lineage | None:
    trail = decision_trail(session=session, decision_id=decision_id)
    if trail is None:
        return None
    decision = trail.decision
    model, version, at = decision.model_name, decision.model_version, decision.occurred_at
    entry = ledger_entry(session=session, event_id=decision.event_id)
    baseline = _latest_until(session, BaselineRecord, model, version, at)
    deployment = _latest_until(session, ModelDeployment, model, version, at)
    drifting = []
    if baseline is not None:
        drifting = [
            verdict
            for verdict in latest_verdicts(
                session=session,
                model=model,
                version=version,
                baseline_id=baseline.baseline_id,
                at=at,
            )
            if verdict.state == "detected"
        ]
    return Lineage(
        trail=trail,
        ledger_entry=entry,
        drifting=drifting,
        alerts=open_alerts(session=session, model=model, version=version, at=at),
        baseline=baseline,
        deployment=deployment,
    )


VersionRecord = TypeVar("VersionRecord", BaselineRecord, ModelDeployment)


def _latest_until(
    session: Session, table: type[VersionRecord], model: str, version: str, at: datetime
) -> VersionRecord | None:
    """The latest row about a model version that happened at or before ``at``."""
    return session.exec(
        select(table)
        .where(
            col(table.model_name) == model,
            col(table.model_version) == version,
            col(table.occurred_at) <= at,
        )
        .order_by(col(table.occurred_at).desc())
        .limit(1)
    ).first()


def ledger_entry(*, session: Session, event_id: uuid.UUID) -> LedgerEntry | None:
    return session.exec(select(LedgerEntry).where(LedgerEntry.event_id == event_id)).first()


def open_alerts(
    *, session: Session, model: str, version: str, at: datetime, scan: int = 1_000
) -> list[OpenAlert]:
    """Alert groups about a model version whose last notification before ``at`` was firing.

    Looks at the last ``scan`` notifications before ``at``: alerts are grouped, so few.
    """
    rows = session.exec(
        select(AlertNotification, OutboxMessage.common_labels)
        .join(OutboxMessage, col(OutboxMessage.id) == col(AlertNotification.notification_id))
        .where(col(AlertNotification.occurred_at) <= at)
        .order_by(col(AlertNotification.occurred_at).desc())
        .limit(scan)
    ).all()
    latest: dict[tuple[str, str], OpenAlert] = {}
    for notification, labels in rows:
        if labels.get("model") != model or labels.get("version", version) != version:
            continue
        group = (notification.receiver, notification.group_key)
        latest.setdefault(group, OpenAlert(notification, dict(labels)))
    return [alert for alert in latest.values() if alert.notification.status == "firing"]


def count_ledger_entries(*, session: Session, event_types: Sequence[str] | None = None) -> int:
    statement = select(func.count()).select_from(LedgerEntry)
    if event_types is not None:
        statement = statement.where(col(LedgerEntry.event_type).in_(event_types))
    return session.exec(statement).one()


def latest_verdicts(
    *, session: Session, model: str, version: str, baseline_id: str, at: datetime | None = None
) -> list[DriftVerdict]:
    """Per (feature, test), the latest verdict against this baseline (up to ``at``): its state."""
    about = [
        col(DriftVerdict.model_name) == model,
        col(DriftVerdict.model_version) == version,
        col(DriftVerdict.baseline_id) == baseline_id,
    ]
    if at is not None:
        about.append(col(DriftVerdict.occurred_at) <= at)
    latest = (
        select(
            col(DriftVerdict.feature).label("feature"),
            col(DriftVerdict.test).label("test"),
            func.max(DriftVerdict.occurred_at).label("at"),
        )
        .where(*about)
        .group_by(col(DriftVerdict.feature), col(DriftVerdict.test))
        .subquery()
    )
    statement = (
        select(DriftVerdict)
        .join(
            latest,
            (col(DriftVerdict.feature) == latest.c.feature)
            & (col(DriftVerdict.test) == latest.c.test)
            & (col(DriftVerdict.occurred_at) == latest.c.at),
        )
        .where(*about)
        .order_by(col(DriftVerdict.feature), col(DriftVerdict.test))
    )
    return list(session.exec(statement).all())


def verdict_history(
    *, session: Session, model: str, version: str, limit: int = 100
) -> list[DriftVerdict]:
    """The verdicts of a model version, newest first."""
    statement = (
        select(DriftVerdict)
        .where(DriftVerdict.model_name == model, DriftVerdict.model_version == version)
        .order_by(col(DriftVerdict.occurred_at).desc(), col(DriftVerdict.event_id).desc())
    )
    return list(session.exec(statement.limit(limit)).all())


def latest_readiness(*, session: Session, model: str, version: str) -> ReadinessEvaluation | None:
    """The latest go-live evaluation of a model version."""
    return session.exec(
        select(ReadinessEvaluation)
        .where(
            ReadinessEvaluation.model_name == model, ReadinessEvaluation.model_version == version
        )
        .order_by(col(ReadinessEvaluation.occurred_at).desc())
    ).first()


def latest_version(session: Session, model: str) -> str | None:
    """The real (not synthetic) version of a model that decided last."""
    versions = session.exec(
        select(Decision.model_version)
        .where(Decision.model_name == model)
        .order_by(col(Decision.occurred_at).desc())
        .limit(1_000)
    ).all()
    return next((v for v in versions if not is_synthetic(v)), None)

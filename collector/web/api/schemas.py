"""What the API returns: public models, kept apart from the table models."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from sqlmodel import SQLModel

from driftline.collector.store.models import (
    BaselineRecord,
    Decision,
    DecisionBase,
    DriftVerdictBase,
    FeedbackBase,
    ReviewBase,
)
from driftline.collector.store.prices import PriceTable
from driftline.detectors.baseline import record_features


class DecisionPublic(DecisionBase):
    cost: float | None = None  # by the price table in force at its time; None: unpriced
    currency: str | None = None

    @classmethod
    def priced(cls, decision: Decision, prices: PriceTable | None) -> DecisionPublic:
        cost = None if prices is None else prices.cost(decision)
        currency = None if cost is None or prices is None else prices.currency
        return cls.model_validate(decision, update={"cost": cost, "currency": currency})


class ReviewPublic(ReviewBase):
    pass


class FeedbackPublic(FeedbackBase):
    pass


class DecisionTrailPublic(SQLModel):
    decision: DecisionPublic
    reviews: list[ReviewPublic]
    feedback: list[FeedbackPublic]


class DecisionPage(SQLModel):
    items: list[DecisionPublic]
    next_cursor: str | None = None


class Health(SQLModel):
    status: str
    database: str


class DriftVerdictPublic(DriftVerdictBase):
    pass


class BaselinePublic(SQLModel):
    baseline_id: str
    set_at: datetime
    source: str
    set_by: str
    size: int
    features: dict[str, str]  # name: continuous, categorical, identifier, flag or text

    @classmethod
    def of(cls, record: BaselineRecord) -> BaselinePublic:
        return cls(
            baseline_id=record.baseline_id,
            set_at=record.occurred_at,
            source=record.source,
            set_by=record.set_by,
            size=record.size,
            features=record_features(record.record),
        )


class CheckStatus(SQLModel):
    """One check of one feature against the active baseline; ``since``: its last change."""

    feature: str
    test: str
    state: Literal["drifting", "ok"]
    since: datetime
    verdict: DriftVerdictPublic


class VersionDrift(SQLModel):
    model: str
    version: str
    state: Literal["drifting", "ok"]
    baseline: BaselinePublic
    drifting: list[CheckStatus]


class VersionDriftDetail(VersionDrift):
    checks: list[CheckStatus]  # every check that has had a verdict; the rest are ok
    history: list[DriftVerdictPublic]  # newest first


class LedgerPosition(SQLModel):
    topic: str
    partition: int
    seq: int
    erased: bool


class AlertPublic(SQLModel):
    receiver: str
    group_key: str
    status: str
    notified_at: datetime
    labels: dict[str, str]


class DeploymentPublic(SQLModel):
    service: str
    deployed_at: datetime
    owner: str
    approved_by: str


class RowsVerified(SQLModel):
    """The decision's row, its reviews' and feedback's, checked against their ledger entries
    as this read served them; ``tampering`` names each table and key that differs."""

    intact: bool
    tampering: list[str]


class LineagePublic(DecisionTrailPublic):
    """The decision, what happened to it, and the state of its model when it was taken."""

    ledger: LedgerPosition | None
    verified: RowsVerified
    drifting: list[DriftVerdictPublic]  # checks of its model version in drift at that time
    alerts: list[AlertPublic]  # alert groups about its model version firing at that time
    baseline: BaselinePublic | None  # in force at that time
    deployment: DeploymentPublic | None
    trace_url: str | None


class ExportManifestPublic(SQLModel):
    id: uuid.UUID
    created_at: datetime
    created_by: str
    format: str
    query: dict[str, str]
    ledger_heads: list[dict[str, Any]]  # topic, partition, seq, chain_hash of every chain
    rows: int
    sha256: str
    completed_at: datetime
    tampered: list[str]  # exported rows that differed from their ledger entry
    key_id: str | None  # None for manifests from before they were signed
    signature: str | None  # base64 Ed25519 over ``exports.statement`` of this manifest


class Problem(SQLModel):
    """Why a request was refused: a sentence, or FastAPI's list of invalid fields."""

    detail: str | list[dict[str, Any]]

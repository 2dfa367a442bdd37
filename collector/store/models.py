"""The SQL tables: the append-only ledger, the read models projected from it, dead letters.

The ledger is the record; every other table can be rebuilt from it. Alembic migrations under
``collector/store/migrations`` create exactly these tables (a test compares them).
"""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from driftline.collector.store.sqltypes import JSONDocument, UTCDateTime


class LedgerEntry(SQLModel, table=True):
    """One event in its partition's hash chain.

    ``chain_hash = SHA-256(previous chain_hash || leaf)``, the leaf covering ``event_digest``
    (see ``ledger.leaf``): the chain covers the digest rather than the bytes so that erasing
    personal data from ``event_bytes`` later leaves the chain verifiable.
    """

    __tablename__ = "ledger_entries"
    # Retention looks for entries not yet erased, by the time they were recorded.
    __table_args__ = (Index("ix_ledger_unerased_time", "erased_at", "recorded_at"),)

    topic: str = Field(primary_key=True, max_length=249)
    partition: int = Field(primary_key=True)
    seq: int = Field(primary_key=True, sa_type=BigInteger)
    event_id: uuid.UUID = Field(unique=True)
    event_type: str = Field(max_length=40)
    kafka_offset: int = Field(sa_type=BigInteger)
    event_bytes: bytes = Field(sa_type=LargeBinary)
    event_digest: bytes = Field(sa_type=LargeBinary)
    chain_hash: bytes = Field(sa_type=LargeBinary)
    recorded_at: datetime = Field(sa_type=UTCDateTime)
    # Set when a decision's inputs were replaced by a tombstone (erasure or retention).
    erased_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Set when the event's occurred_at was further from the collector's clock than allowed
    # (``ingest.ClockBounds``): occurred_at - recorded_at in seconds.
    clock_skew_s: float | None = None
    # 1: stored before migration 0012 (plain input hashes, links over the digest only);
    # 2: salted input hashes, links that also cover kafka_offset, recorded_at and clock_skew_s.
    entry_format: int = Field(nullable=False, sa_column_kwargs={"server_default": "1"})
    # A decision's: the key of its inputs' HMAC in the digest. Destroyed on erasure.
    inputs_salt: bytes | None = Field(default=None, sa_type=LargeBinary)


class LedgerCheckpoint(SQLModel, table=True):
    """A signed statement that a chain's entry ``seq`` had hash ``chain_hash`` at ``signed_at``.

    Copied out of the database, checkpoints let anyone detect later rewriting or truncation.
    """

    __tablename__ = "ledger_checkpoints"
    __table_args__ = (Index("ix_checkpoints_chain", "topic", "partition", "seq"),)

    id: uuid.UUID = Field(primary_key=True)
    topic: str = Field(max_length=249)
    partition: int
    seq: int = Field(sa_type=BigInteger)
    chain_hash: bytes = Field(sa_type=LargeBinary)
    signed_at: datetime = Field(sa_type=UTCDateTime)
    key_id: str = Field(max_length=64)
    signature: bytes = Field(sa_type=LargeBinary)


class DeadLetter(SQLModel, table=True):
    """A message kept byte for byte with the reason it is not in the ledger: it does not decode,
    the database refused its event, or it reuses a stored event's id with other content."""

    __tablename__ = "dead_letters"
    __table_args__ = (UniqueConstraint("topic", "partition", "kafka_offset"),)

    id: int | None = Field(default=None, primary_key=True)
    topic: str = Field(max_length=249)
    partition: int
    kafka_offset: int = Field(sa_type=BigInteger)
    key: bytes | None = Field(default=None, sa_type=LargeBinary)
    raw: bytes = Field(sa_type=LargeBinary)
    reason: str = Field(sa_type=Text)
    received_at: datetime = Field(sa_type=UTCDateTime)


class DecisionBase(SQLModel):
    decision_id: uuid.UUID = Field(primary_key=True)
    event_id: uuid.UUID = Field(unique=True)
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    service: str = Field(max_length=200)
    model_name: str = Field(max_length=200)
    model_version: str = Field(max_length=200)
    inputs: dict[str, Any] = Field(sa_type=JSONDocument)
    output: Any = Field(sa_type=JSONDocument)
    confidence: float | None = None  # optional since schema 2
    class_scores: dict[str, float] | None = Field(default=None, sa_type=JSONDocument)
    latency_ms: float
    automated: bool
    subject_ref: str | None = Field(default=None, max_length=200, index=True)
    contract_violations: list[str] = Field(default_factory=list, sa_type=JSONDocument)
    has_violations: bool = False
    trace_id: str | None = Field(default=None, max_length=32)
    span_id: str | None = Field(default=None, max_length=16)
    # A generative model's (schema 2 for all but operation and the first two token counts).
    operation: str | None = Field(default=None, max_length=100)
    provider: str | None = Field(default=None, max_length=100)
    response_model: str | None = Field(default=None, max_length=200)
    finish_reason: str | None = Field(default=None, max_length=100)
    input_tokens: int | None = Field(default=None, sa_type=BigInteger)
    output_tokens: int | None = Field(default=None, sa_type=BigInteger)
    cached_input_tokens: int | None = Field(default=None, sa_type=BigInteger)
    reasoning_tokens: int | None = Field(default=None, sa_type=BigInteger)


class Decision(DecisionBase, table=True):
    __tablename__ = "decisions"
    __table_args__ = (
        Index("ix_decisions_time", "occurred_at", "decision_id"),
        Index(
            "ix_decisions_model_time", "model_name", "model_version", "occurred_at", "decision_id"
        ),
        Index("ix_decisions_service_time", "service", "occurred_at", "decision_id"),
    )


class ReviewBase(SQLModel):
    event_id: uuid.UUID = Field(primary_key=True)
    decision_id: uuid.UUID = Field(index=True)
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    reviewer: str = Field(max_length=200)
    action: str = Field(max_length=20)
    new_output: Any = Field(default=None, sa_type=JSONDocument, nullable=True)
    rationale: str | None = Field(default=None, sa_type=Text)
    scores: list[dict[str, Any]] | None = Field(default=None, sa_type=JSONDocument)


class Review(ReviewBase, table=True):
    __tablename__ = "reviews"
    __table_args__ = (Index("ix_reviews_reviewer", "reviewer"),)


class FeedbackBase(SQLModel):
    event_id: uuid.UUID = Field(primary_key=True)
    decision_id: uuid.UUID = Field(index=True)
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    ground_truth: Any = Field(default=None, sa_type=JSONDocument, nullable=True)
    correct: bool | None = None
    reporter: str = Field(max_length=200)
    comment: str | None = Field(default=None, sa_type=Text)
    scores: list[dict[str, Any]] | None = Field(default=None, sa_type=JSONDocument)


class Feedback(FeedbackBase, table=True):
    __tablename__ = "feedback"


class ModelDeploymentBase(SQLModel):
    event_id: uuid.UUID = Field(primary_key=True)
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    service: str = Field(max_length=200)
    model_name: str = Field(max_length=200, index=True)
    model_version: str = Field(max_length=200)
    owner: str = Field(max_length=200)
    approved_by: str = Field(max_length=200)


class ModelDeployment(ModelDeploymentBase, table=True):
    __tablename__ = "model_deployments"


class BaselineRecordBase(SQLModel):
    event_id: uuid.UUID = Field(primary_key=True)
    baseline_id: str = Field(max_length=64, index=True)
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    service: str = Field(max_length=200)
    model_name: str = Field(max_length=200)
    model_version: str = Field(max_length=200)
    source: str = Field(max_length=500)
    set_by: str = Field(max_length=200)
    size: int = Field(sa_type=BigInteger)
    record: dict[str, Any] = Field(sa_type=JSONDocument)


class BaselineRecord(BaselineRecordBase, table=True):
    """A baseline set for a model version; the latest one set is the active one."""

    __tablename__ = "baselines"
    __table_args__ = (
        Index("ix_baselines_model_time", "model_name", "model_version", "occurred_at"),
    )


class DriftVerdictBase(SQLModel):
    event_id: uuid.UUID = Field(primary_key=True)
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    model_name: str = Field(max_length=200)
    model_version: str = Field(max_length=200)
    state: str = Field(max_length=20)  # "detected" or "resolved"
    baseline_id: str = Field(max_length=64)
    feature: str = Field(max_length=200)
    test: str = Field(max_length=40)
    statistic: float
    p_value: float
    adjusted_p: float
    false_alarm_rate: float
    effect_name: str = Field(max_length=200)
    effect: float | None = None
    window_start: datetime = Field(sa_type=UTCDateTime)
    window_end: datetime = Field(sa_type=UTCDateTime)
    evidence: list[str] | None = Field(default=None, sa_type=JSONDocument)
    baseline_size: int = Field(sa_type=BigInteger)
    current_size: int = Field(sa_type=BigInteger)


class DriftVerdict(DriftVerdictBase, table=True):
    """A feature of a model version started or stopped drifting, with the evidence."""

    __tablename__ = "drift_verdicts"
    __table_args__ = (
        Index("ix_drift_verdicts_model_time", "model_name", "model_version", "occurred_at"),
    )


class OutboxMessage(SQLModel, table=True):
    """A notification stored before it is sent, and marked when its receiver accepts it."""

    __tablename__ = "notification_outbox"
    __table_args__ = (Index("ix_outbox_due", "state", "next_attempt_at"),)

    id: uuid.UUID = Field(primary_key=True)
    created_at: datetime = Field(sa_type=UTCDateTime)
    receiver: str = Field(max_length=200)
    integration: str = Field(max_length=40)  # "webhook[0]", "pagerduty[0]"...
    group_key: str = Field(sa_type=Text)
    status: str = Field(max_length=20)  # the notification's: firing or resolved
    fingerprints: list[str] = Field(sa_type=JSONDocument)  # of the alerts it carries
    common_labels: dict[str, str] = Field(sa_type=JSONDocument)
    url: str = Field(sa_type=Text)
    body: Any = Field(sa_type=JSONDocument)
    state: str = Field(max_length=20)  # pending, sent, or failed for good
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, sa_type=Text)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AlertNotification(SQLModel, table=True):
    """Who was told what, and when: a receiver accepted a notification (``alert_notified``)."""

    __tablename__ = "alert_notifications"

    event_id: uuid.UUID = Field(primary_key=True)
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    notification_id: uuid.UUID = Field(index=True)
    receiver: str = Field(max_length=200)
    integration: str = Field(max_length=40)
    group_key: str = Field(sa_type=Text)
    status: str = Field(max_length=20)
    fingerprints: list[str] = Field(sa_type=JSONDocument)
    attempts: int


class ReadinessEvaluation(SQLModel, table=True):
    """A go-live gate's evaluation of one model version (``readiness_evaluated``)."""

    __tablename__ = "readiness_evaluations"
    __table_args__ = (Index("ix_readiness_version", "model_name", "model_version", "occurred_at"),)

    event_id: uuid.UUID = Field(primary_key=True)
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    model_name: str = Field(max_length=200)
    model_version: str = Field(max_length=200)
    asked_by: str = Field(max_length=200)
    window_start: datetime = Field(sa_type=UTCDateTime)
    window_end: datetime = Field(sa_type=UTCDateTime)
    verdict: str = Field(max_length=20)  # go, no-go, or not enough data
    criteria: list[dict[str, Any]] = Field(sa_type=JSONDocument)


class LoadTest(SQLModel, table=True):
    """A stability audit of a model version (``load_tested``)."""

    __tablename__ = "load_tests"
    __table_args__ = (Index("ix_load_tests_version", "model_name", "model_version", "occurred_at"),)

    event_id: uuid.UUID = Field(primary_key=True)
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    model_name: str = Field(max_length=200)
    model_version: str = Field(max_length=200)
    rate_per_s: float
    peak_per_s: float | None = None
    error_rate: float
    passed: bool
    figures: dict[str, Any] = Field(sa_type=JSONDocument)  # the whole payload


class Drill(SQLModel, table=True):
    """An incident drill on a model version (``drill_completed``)."""

    __tablename__ = "drills"
    __table_args__ = (Index("ix_drills_version", "model_name", "model_version", "occurred_at"),)

    event_id: uuid.UUID = Field(primary_key=True)
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    model_name: str = Field(max_length=200)
    model_version: str = Field(max_length=200)
    passed: bool
    reason: str = Field(sa_type=Text)
    seconds_to_notification: float | None = None


class EvaluationSet(SQLModel, table=True):
    """An evaluation set registered for a model, with its content's SHA-256
    (``evaluation_set_registered``)."""

    __tablename__ = "evaluation_sets"
    __table_args__ = (Index("ix_evaluation_sets_set", "model_name", "set_name", "occurred_at"),)

    event_id: uuid.UUID = Field(primary_key=True)
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    model_name: str = Field(max_length=200)
    set_name: str = Field(max_length=200)
    set_version: str = Field(max_length=200)
    sha256: str = Field(max_length=64, index=True)
    cases: int = Field(sa_type=BigInteger)
    must_refuse: int = Field(sa_type=BigInteger)
    registered_by: str = Field(max_length=200)
    source: str = Field(sa_type=Text)
    tags: list[str] = Field(sa_type=JSONDocument)
    thresholds: list[dict[str, Any]] = Field(sa_type=JSONDocument)


class EvaluationCase(SQLModel, table=True):
    """One case of an evaluation run against a model version (``evaluation_case_scored``)."""

    __tablename__ = "evaluation_cases"

    event_id: uuid.UUID = Field(primary_key=True)
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    run_id: uuid.UUID = Field(index=True)
    model_name: str = Field(max_length=200)
    model_version: str = Field(max_length=200)
    set_sha256: str = Field(max_length=64)
    case_id: str = Field(max_length=200)
    tags: list[str] = Field(sa_type=JSONDocument)
    must_refuse: bool
    refused: bool
    passed: bool
    output: str | None = Field(default=None, sa_type=Text)
    latency_ms: float | None = None
    error: str | None = Field(default=None, sa_type=Text)
    reason: str = Field(sa_type=Text)
    scores: list[dict[str, Any]] | None = Field(default=None, sa_type=JSONDocument)


class EvaluationRun(SQLModel, table=True):
    """An evaluation run of a set against a model version, its figures and whether it passed
    (``evaluation_completed``)."""

    __tablename__ = "evaluation_runs"
    __table_args__ = (
        Index("ix_evaluation_runs_version", "model_name", "model_version", "occurred_at"),
    )

    event_id: uuid.UUID = Field(primary_key=True)
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    run_id: uuid.UUID = Field(index=True)
    model_name: str = Field(max_length=200)
    model_version: str = Field(max_length=200)
    set_name: str = Field(max_length=200)
    set_version: str = Field(max_length=200)
    set_sha256: str = Field(max_length=64)
    target: str = Field(sa_type=Text)
    asked_by: str = Field(max_length=200)
    started_at: datetime = Field(sa_type=UTCDateTime)
    cases: int = Field(sa_type=BigInteger)
    errors: int = Field(sa_type=BigInteger)
    passed: bool
    figures: list[dict[str, Any]] = Field(sa_type=JSONDocument)


class AgreedThresholds(SQLModel, table=True):
    """A model's go-live thresholds as a named decision-maker agreed them, for one version or
    ("*") every version (``thresholds_agreed``)."""

    __tablename__ = "agreed_thresholds"
    __table_args__ = (
        Index("ix_agreed_thresholds_version", "model_name", "model_version", "occurred_at"),
    )

    event_id: uuid.UUID = Field(primary_key=True)
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    model_name: str = Field(max_length=200)
    model_version: str = Field(max_length=200)
    sha256: str = Field(max_length=64)
    threshold: dict[str, Any] = Field(sa_type=JSONDocument)
    decision_maker: str = Field(max_length=200)
    stage: str = Field(max_length=100)
    deadline: datetime = Field(sa_type=UTCDateTime)
    source: str = Field(sa_type=Text)


class NotificationLogEntry(SQLModel, table=True):
    """What a receiver was last sent about a group, as Alertmanager's notification log keeps
    it: a restarted router compares with it instead of notifying the same alerts again."""

    __tablename__ = "notification_log"

    receiver: str = Field(primary_key=True, max_length=200)
    group_key: str = Field(primary_key=True, max_length=2000)
    firing: list[str] = Field(sa_type=JSONDocument)  # fingerprints notified as firing
    resolved: list[str] = Field(sa_type=JSONDocument)  # and as resolved
    notified_at: datetime = Field(sa_type=UTCDateTime)


class Silence(SQLModel, table=True):
    """Alerts matching all of ``matchers`` are not notified from ``starts_at`` to ``ends_at``."""

    __tablename__ = "silences"

    id: uuid.UUID = Field(primary_key=True)
    matchers: list[str] = Field(sa_type=JSONDocument)
    starts_at: datetime = Field(sa_type=UTCDateTime)
    ends_at: datetime = Field(sa_type=UTCDateTime, index=True)
    created_by: str = Field(max_length=200)
    comment: str = Field(sa_type=Text)
    created_at: datetime = Field(sa_type=UTCDateTime)


class ApiToken(SQLModel, table=True):
    """Who may call the API, and as what; only a SHA-256 of the secret is kept."""

    __tablename__ = "api_tokens"

    id: uuid.UUID = Field(primary_key=True)
    name: str = Field(max_length=200, unique=True)  # revoked tokens keep theirs (0013)
    role: str = Field(max_length=20)  # auditor, operator or admin
    secret_sha256: bytes = Field(sa_type=LargeBinary, unique=True)
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class UiSession(SQLModel, table=True):
    """A sign-in to the web page. Its cookie holds a secret of its own, never the token (only a
    SHA-256 is kept); it stops working at sign-out, at ``expires_at``, or with its token."""

    __tablename__ = "ui_sessions"

    id: uuid.UUID = Field(primary_key=True)
    secret_sha256: bytes = Field(sa_type=LargeBinary, unique=True)
    token_id: uuid.UUID = Field(index=True)
    created_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AuditRead(SQLModel, table=True):
    """One read through the API: who asked what, and when."""

    __tablename__ = "audit_reads"
    __table_args__ = (Index("ix_audit_reads_time", "at"),)

    id: uuid.UUID = Field(primary_key=True)
    at: datetime = Field(sa_type=UTCDateTime)
    token_id: uuid.UUID = Field(index=True)
    token_name: str = Field(max_length=200)
    role: str = Field(max_length=20)
    path: str = Field(sa_type=Text)
    query: str = Field(sa_type=Text)


class LegalHold(SQLModel, table=True):
    """Keeps a model's or a subject's records from retention and erasure until released."""

    __tablename__ = "legal_holds"

    id: uuid.UUID = Field(primary_key=True)
    model_name: str | None = Field(default=None, max_length=200)
    subject_ref: str | None = Field(default=None, max_length=200)
    reason: str = Field(sa_type=Text)
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(sa_type=UTCDateTime)
    released_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Erasure(SQLModel, table=True):
    """A subject's inputs were replaced by tombstones: by whom, why, how many decisions."""

    __tablename__ = "erasures"

    id: uuid.UUID = Field(primary_key=True)
    subject_ref: str | None = Field(default=None, max_length=200)
    reason: str = Field(sa_type=Text)
    requested_by: str = Field(max_length=200)
    at: datetime = Field(sa_type=UTCDateTime)
    decisions: int
    # Ed25519 over ``erasure.erasure_statement``, by the key that signs checkpoints; None for
    # erasures recorded before migration 0012.
    key_id: str | None = Field(default=None, max_length=64)
    signature: bytes | None = Field(default=None, sa_type=LargeBinary)


class ExportManifest(SQLModel, table=True):
    """What an export holds, so that the file can be checked later: its query, its row count,
    the ledger positions it covers and the SHA-256 of its bytes."""

    __tablename__ = "exports"

    id: uuid.UUID = Field(primary_key=True)
    created_at: datetime = Field(sa_type=UTCDateTime)
    created_by: str = Field(max_length=200)
    format: str = Field(max_length=10)
    query: dict[str, str] = Field(sa_type=JSONDocument)
    ledger_heads: list[dict[str, Any]] = Field(sa_type=JSONDocument)
    rows: int | None = Field(default=None, sa_type=BigInteger)  # None until complete
    sha256: str | None = Field(default=None, max_length=64)
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Rows that differed from their ledger entry when exported (see ``exports``).
    tampered: list[str] = Field(default_factory=list, sa_type=JSONDocument)
    # Ed25519 over ``exports.statement``; None for manifests from before migration 0012.
    key_id: str | None = Field(default=None, max_length=64)
    signature: bytes | None = Field(default=None, sa_type=LargeBinary)

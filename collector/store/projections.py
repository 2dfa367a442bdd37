"""Read models projected from events: decisions, reviews, feedback, model deployments,
baselines, drift verdicts, notifications, readiness evaluations, load tests, drills, evaluation
sets, runs and cases, and agreed thresholds.

Projection is a pure function of the events, so replaying the ledger rebuilds the same rows.
Rows are inserted as plain column values in one statement per table: building an ORM object per
event cost the collector more than the database did.
"""

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import structlog
from sqlmodel import Session, SQLModel, select

from driftline.agent.contract import (
    MAX_TOKENS,
    AlertNotifiedEvent,
    BaselineSetEvent,
    DecisionEvent,
    DriftDetectedEvent,
    DriftResolvedEvent,
    DrillCompletedEvent,
    EvaluationCaseScoredEvent,
    EvaluationCompletedEvent,
    EvaluationSetRegisteredEvent,
    Event,
    FeedbackEvent,
    LoadTestedEvent,
    ModelDeployedEvent,
    ReadinessEvaluatedEvent,
    ReviewEvent,
    Score,
    ThresholdsAgreedEvent,
    TokenUsage,
)
from driftline.collector.store import bulk
from driftline.collector.store.models import (
    AgreedThresholds,
    AlertNotification,
    BaselineRecord,
    Decision,
    DriftVerdict,
    Drill,
    EvaluationCase,
    EvaluationRun,
    EvaluationSet,
    Feedback,
    LoadTest,
    ModelDeployment,
    ReadinessEvaluation,
    Review,
)

log = structlog.get_logger(__name__)

# Every table projected from events, in the order a rebuild empties them.
READ_MODELS: tuple[type[SQLModel], ...] = (
    Decision,
    Review,
    Feedback,
    ModelDeployment,
    BaselineRecord,
    DriftVerdict,
    AlertNotification,
    ReadinessEvaluation,
    LoadTest,
    Drill,
    EvaluationSet,
    EvaluationCase,
    EvaluationRun,
    AgreedThresholds,
)
# The read model each event type goes to (what ``row_for`` does, by the type's name).
TABLE_OF_TYPE: dict[str, type[SQLModel]] = {
    "decision": Decision,
    "review": Review,
    "feedback": Feedback,
    "model_deployed": ModelDeployment,
    "baseline_set": BaselineRecord,
    "drift_detected": DriftVerdict,
    "drift_resolved": DriftVerdict,
    "alert_notified": AlertNotification,
    "readiness_evaluated": ReadinessEvaluation,
    "load_tested": LoadTest,
    "drill_completed": Drill,
    "evaluation_set_registered": EvaluationSet,
    "evaluation_case_scored": EvaluationCase,
    "evaluation_completed": EvaluationRun,
    "thresholds_agreed": AgreedThresholds,
}


def project(session: Session, events: Sequence[Event]) -> None:
    """Add the read-model rows for events that are new to the ledger."""
    decided = _decisions_already_stored(session, events)
    rows: dict[type[SQLModel], list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        if isinstance(event, DecisionEvent):
            if event.decision_id in decided:
                # The ledger keeps both events; the read model keeps the first decision.
                log.warning(
                    "decision id recorded twice; read model keeps the first",
                    decision_id=str(event.decision_id),
                    event_id=str(event.event_id),
                )
                continue
            decided.add(event.decision_id)
        table, row = row_for(event)
        rows[table].append(row)
    for table, table_rows in rows.items():
        bulk.insert_rows(session, table.__table__, table_rows)  # type: ignore[attr-defined]


Row = tuple[type[SQLModel], dict[str, Any]]


def row_for(event: Event) -> Row:
    """The read model an event goes to, and the row's column values."""
    match event:
        case DecisionEvent(payload=p):
            return Decision, dict(
                decision_id=event.decision_id,
                event_id=event.event_id,
                occurred_at=event.occurred_at,
                service=event.service,
                model_name=event.model.name,
                model_version=event.model.version,
                inputs=p.inputs,
                output=p.output,
                confidence=p.confidence,
                class_scores=p.class_scores,
                latency_ms=p.latency_ms,
                automated=p.automated,
                subject_ref=p.subject_ref,
                contract_violations=p.contract_violations,
                has_violations=bool(p.contract_violations),
                trace_id=event.trace_id,
                span_id=event.span_id,
                operation=p.operation,
                provider=p.provider,
                response_model=p.response_model,
                finish_reason=p.finish_reason,
                **_token_counts(p.usage),
            )
        case ReviewEvent(payload=p):
            return Review, dict(
                event_id=event.event_id,
                decision_id=event.decision_id,
                occurred_at=event.occurred_at,
                reviewer=p.reviewer,
                action=p.action,
                new_output=p.new_output,
                rationale=p.rationale,
                scores=_scores(p.scores),
            )
        case FeedbackEvent(payload=p):
            return Feedback, dict(
                event_id=event.event_id,
                decision_id=event.decision_id,
                occurred_at=event.occurred_at,
                ground_truth=p.ground_truth,
                correct=p.correct,
                reporter=p.reporter,
                comment=p.comment,
                scores=_scores(p.scores),
            )
        case ModelDeployedEvent(payload=p):
            return ModelDeployment, dict(
                event_id=event.event_id,
                occurred_at=event.occurred_at,
                service=event.service,
                model_name=event.model.name,
                model_version=p.version,
                owner=p.owner,
                approved_by=p.approved_by,
            )
        case BaselineSetEvent(payload=p):
            return BaselineRecord, dict(
                event_id=event.event_id,
                baseline_id=p.baseline_id,
                occurred_at=event.occurred_at,
                service=event.service,
                model_name=event.model.name,
                model_version=p.version,
                source=p.source,
                set_by=p.set_by,
                size=p.size,
                record=p.record,
            )
        case DriftDetectedEvent(payload=p) | DriftResolvedEvent(payload=p):
            return DriftVerdict, dict(
                event_id=event.event_id,
                occurred_at=event.occurred_at,
                model_name=event.model.name,
                model_version=p.version,
                state="detected" if isinstance(event, DriftDetectedEvent) else "resolved",
                # Every row of a table gives the same columns (``bulk``), evidence too when unset.
                **p.model_dump(exclude={"version"}) | {"evidence": p.evidence},
            )
        case AlertNotifiedEvent(payload=p):
            return AlertNotification, dict(
                event_id=event.event_id,
                occurred_at=event.occurred_at,
                notification_id=p.notification_id,
                receiver=p.receiver,
                integration=p.integration,
                group_key=p.group_key,
                status=p.status,
                fingerprints=p.fingerprints,
                attempts=p.attempts,
            )
        case ReadinessEvaluatedEvent(payload=p):
            return ReadinessEvaluation, dict(
                event_id=event.event_id,
                occurred_at=event.occurred_at,
                model_name=event.model.name,
                model_version=p.version,
                asked_by=p.asked_by,
                window_start=p.window_start,
                window_end=p.window_end,
                verdict=p.verdict,
                criteria=[c.model_dump() for c in p.criteria],
            )
        case LoadTestedEvent(payload=p):
            return LoadTest, dict(
                event_id=event.event_id,
                occurred_at=event.occurred_at,
                model_name=event.model.name,
                model_version=p.version,
                rate_per_s=p.rate_per_s,
                peak_per_s=p.peak_per_s,
                error_rate=p.error_rate,
                passed=p.passed,
                figures=p.model_dump(mode="json"),
            )
        case DrillCompletedEvent(payload=p):
            return Drill, dict(
                event_id=event.event_id,
                occurred_at=event.occurred_at,
                model_name=event.model.name,
                model_version=p.version,
                passed=p.passed,
                reason=p.reason,
                seconds_to_notification=p.seconds_to_notification,
            )
        case EvaluationSetRegisteredEvent(payload=p):
            return EvaluationSet, dict(
                event_id=event.event_id,
                occurred_at=event.occurred_at,
                model_name=event.model.name,
                set_name=p.set_name,
                set_version=p.set_version,
                sha256=p.sha256,
                cases=p.cases,
                must_refuse=p.must_refuse,
                registered_by=p.registered_by,
                source=p.source,
                tags=p.tags,
                thresholds=[t.model_dump(mode="json") for t in p.thresholds],
            )
        case EvaluationCaseScoredEvent(payload=p):
            return EvaluationCase, dict(
                event_id=event.event_id,
                occurred_at=event.occurred_at,
                run_id=p.run_id,
                model_name=event.model.name,
                model_version=p.version,
                set_sha256=p.set_sha256,
                case_id=p.case_id,
                tags=p.tags,
                must_refuse=p.must_refuse,
                refused=p.refused,
                passed=p.passed,
                output=p.output,
                latency_ms=p.latency_ms,
                error=p.error,
                reason=p.reason,
                scores=_scores(p.scores),
            )
        case EvaluationCompletedEvent(payload=p):
            return EvaluationRun, dict(
                event_id=event.event_id,
                occurred_at=event.occurred_at,
                run_id=p.run_id,
                model_name=event.model.name,
                model_version=p.version,
                set_name=p.set_name,
                set_version=p.set_version,
                set_sha256=p.set_sha256,
                target=p.target,
                asked_by=p.asked_by,
                started_at=p.started_at,
                cases=p.cases,
                errors=p.errors,
                passed=p.passed,
                figures=[f.model_dump(mode="json") for f in p.figures],
            )
        case ThresholdsAgreedEvent(payload=p):
            return AgreedThresholds, dict(
                event_id=event.event_id,
                occurred_at=event.occurred_at,
                model_name=event.model.name,
                model_version=p.version,
                sha256=p.sha256,
                threshold=p.threshold,
                decision_maker=p.decision_maker,
                stage=p.stage,
                deadline=p.deadline,
                source=p.source,
            )
    raise TypeError(f"no read model for {type(event).__name__}")


def _decisions_already_stored(session: Session, events: Sequence[Event]) -> set[object]:
    ids = [e.decision_id for e in events if isinstance(e, DecisionEvent)]
    if not ids:
        return set()
    column = Decision.__table__.c.decision_id  # type: ignore[attr-defined]
    dialect = session.connection().dialect
    return set(session.execute(select(column).where(bulk.among(column, ids, dialect))).scalars())


def _token_counts(usage: TokenUsage | None) -> dict[str, int | None]:
    """The read model's column of each count. A version 1 event's count over MAX_TOKENS (that
    version bounded none) is kept in the ledger, and as unknown (None) here: no store's integer
    column holds every such number, and sums of them must not overflow."""
    counts = {
        name: None if usage is None else getattr(usage, name) for name in TokenUsage.model_fields
    }
    return {name: None if (n or 0) > MAX_TOKENS else n for name, n in counts.items()}


def _scores(scores: list[Score] | None) -> list[dict[str, Any]] | None:
    """Each score with its kind, which the search's score range reads."""
    if scores is None:
        return None
    return [score.model_dump(mode="json") | {"kind": score.kind} for score in scores]

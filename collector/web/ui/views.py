"""What the web pages show, read from the store. The page routes render these and hold no
queries. Figures per model version come from its most recent decisions (``SAMPLE``), read
through the (model, version, time) index, so a page costs the same at a thousand decisions
as at a million."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlencode

import numpy as np
from markupsafe import Markup
from sqlalchemy import Float, and_, case, cast, literal
from sqlalchemy import select as sql_select
from sqlmodel import Session, col, func, select

from driftline.collector.alerting.alerts import owner_for
from driftline.collector.alerting.config import AlertingConfig
from driftline.collector.alerting.matchers import Matcher, all_match
from driftline.collector.alerting.muting import active_silences
from driftline.collector.alerting.silences import state_of
from driftline.collector.audit.integrity import KeyRing
from driftline.collector.audit.proofs import ProofUnavailable, check_proof, prove_decision
from driftline.collector.audit.row_verification import check_decision
from driftline.collector.drift.baselines import active_baseline
from driftline.collector.drift.features import decision_row, flatten
from driftline.collector.drift.scores import DayMean, Value, score_samples, score_trend
from driftline.collector.golive.accountability import (
    AccountabilityMap,
    DecisionType,
    Survey,
    survey_store,
)
from driftline.collector.golive.contracts import Contracts
from driftline.collector.golive.overview import VersionStatus, version_statuses
from driftline.collector.golive.thresholds import ReadinessConfig
from driftline.collector.store import queries
from driftline.collector.store.models import (
    Decision,
    DriftVerdict,
    ModelDeployment,
    NotificationLogEntry,
    OutboxMessage,
    ReadinessEvaluation,
    Review,
    Silence,
)
from driftline.collector.store.prices import PriceTable
from driftline.collector.store.synthetic import is_synthetic
from driftline.collector.web.ui import plots
from driftline.detectors.baseline import Baseline, record_features
from driftline.detectors.table import category

SAMPLE = 2_000  # recent decisions per version behind the rates and percentiles
RECENTLY = timedelta(hours=24)  # a drift resolved this recently is still shown as such
SCORE_TREND = timedelta(days=30)  # the days of each named score's daily means on the drift page
DriftStatus = Literal["drifting", "resolved recently", "green", "no baseline"]


@dataclass(frozen=True)
class VersionRow:
    service: str
    model: str
    version: str
    status: DriftStatus
    drifting: list[str]
    open_alerts: int
    silences: int
    decisions_last_hour: int
    sample: int
    violation_rate: float | None
    override_rate: float | None
    latency_ms: dict[str, float]  # p50, p95, p99 over the sample
    owner: str | None
    readiness: str | None  # the latest go-live verdict
    usage: Usage | None  # a generative model's: tokens and cost; None for a classic model


@dataclass(frozen=True)
class Spend:
    decisions: int
    tokens: int
    cost: float | None  # None: no price table, or none of them priced


@dataclass(frozen=True)
class Usage:
    """Tokens, cost and latency of a generative model version, over the sample and by time."""

    tokens_per_decision: float | None
    cost_per_decision: float | None  # over the sample's priced decisions
    currency: str | None
    last_hour: Spend
    last_day: Spend
    latency_by_operation: dict[str, dict[str, float]]


def overview(
    session: Session,
    *,
    now: datetime,
    alerting: AlertingConfig | None,
    prices: PriceTable | None = None,
) -> list[VersionRow]:
    versions = session.exec(
        select(Decision.model_name, Decision.model_version)
        .distinct()
        .order_by(col(Decision.model_name), col(Decision.model_version))
    ).all()
    silences = active_silences(session, now).silences
    rows = []
    for model, version in versions:
        if is_synthetic(version):
            continue  # a load test's or a drill's, shown on their own pages
        recent = session.execute(  # sqlmodel types a select of four columns at most
            sql_select(
                col(Decision.decision_id),
                col(Decision.service),
                col(Decision.latency_ms),
                col(Decision.has_violations),
                col(Decision.operation),
                _tokens(),
                prices.cost_column() if prices else literal(None),
            )
            .where(col(Decision.model_name) == model, col(Decision.model_version) == version)
            .order_by(col(Decision.occurred_at).desc())
            .limit(SAMPLE)
        ).all()
        service = recent[0][1] if recent else ""
        labels = {"service": service, "model": model, "version": version}
        status, drifting = drift_status(session, model=model, version=version, now=now)
        rows.append(
            VersionRow(
                service=service,
                model=model,
                version=version,
                status=status,
                drifting=drifting,
                open_alerts=len(
                    queries.open_alerts(session=session, model=model, version=version, at=now)
                ),
                silences=sum(
                    1
                    for s in silences
                    if any(m.name == "model" for m in s.matchers) and _silences(s.matchers, labels)
                ),
                decisions_last_hour=session.exec(
                    select(func.count())
                    .select_from(Decision)
                    .where(
                        Decision.model_name == model,
                        Decision.model_version == version,
                        col(Decision.occurred_at) >= now - timedelta(hours=1),
                    )
                ).one(),
                sample=len(recent),
                violation_rate=_share(sum(bool(r[3]) for r in recent), len(recent)),
                override_rate=_share(_overridden(session, [r[0] for r in recent]), len(recent)),
                latency_ms=_percentiles([r[2] for r in recent]),
                owner=_owner(session, alerting, labels),
                readiness=_verdict(session, model, version),
                usage=_usage(session, recent, model, version, now, prices),
            )
        )
    return rows


def _tokens() -> Any:
    """A decision's input and output tokens, NULL when it counted neither; a float, so that
    sums of many never overflow a store's integers."""
    counts = (col(Decision.input_tokens), col(Decision.output_tokens))
    total = sum((cast(func.coalesce(c, 0), Float) for c in counts), literal(0.0))
    return case((and_(*(c.is_(None) for c in counts)), literal(None)), else_=total)


def _usage(
    session: Session,
    recent: Sequence[Any],
    model: str,
    version: str,
    now: datetime,
    prices: PriceTable | None,
) -> Usage | None:
    """None for a classic model: none of its sampled decisions has an operation or tokens."""
    generative = [r for r in recent if r[4] is not None or r[5] is not None]
    if not generative:
        return None
    tokens = [r[5] for r in generative if r[5] is not None]
    costs = [float(r[6]) for r in generative if r[6] is not None]
    by_operation: dict[str, list[float]] = {}
    for row in generative:
        by_operation.setdefault(row[4] or "(none)", []).append(row[2])
    return Usage(
        tokens_per_decision=sum(tokens) / len(tokens) if tokens else None,
        cost_per_decision=sum(costs) / len(costs) if costs else None,
        currency=prices.currency if prices and costs else None,
        last_hour=_spend(session, model, version, now - timedelta(hours=1), prices),
        last_day=_spend(session, model, version, now - timedelta(days=1), prices),
        latency_by_operation={op: _percentiles(ms) for op, ms in sorted(by_operation.items())},
    )


def _spend(
    session: Session, model: str, version: str, since: datetime, prices: PriceTable | None
) -> Spend:
    decisions, tokens, cost = session.exec(
        select(
            func.count(),
            func.coalesce(func.sum(_tokens()), 0),
            func.sum(prices.cost_column()) if prices else literal(None),
        ).where(
            col(Decision.model_name) == model,
            col(Decision.model_version) == version,
            col(Decision.occurred_at) >= since,
        )
    ).one()
    return Spend(decisions, int(tokens), None if cost is None else float(cost))


def drift_status(
    session: Session, *, model: str, version: str, now: datetime
) -> tuple[DriftStatus, list[str]]:
    """The version's status and the features drifting now."""
    record = active_baseline(session, model, version)
    if record is None:
        return "no baseline", []
    latest = queries.latest_verdicts(
        session=session, model=model, version=version, baseline_id=record.baseline_id
    )
    drifting = sorted({v.feature for v in latest if v.state == "detected"})
    if drifting:
        return "drifting", drifting
    if any(v.occurred_at >= now - RECENTLY for v in latest):
        return "resolved recently", []
    return "green", []


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    kind: str
    state: Literal["drifting", "ok"]  # verdicts are stored on changes: none is no drift seen
    since: datetime | None
    checks: list[DriftVerdict]  # the latest verdict of each test on this feature
    plot: Markup | None
    silence_query: str  # the alerts page's query that proposes a silence of this feature
    trend: list[DayMean] = field(default_factory=list)  # a named score's daily means


@dataclass(frozen=True)
class VersionDrift:
    model: str
    version: str
    status: DriftStatus
    baseline: Any
    window: tuple[datetime, datetime] | None
    window_size: int
    features: list[FeatureDrift]
    history: list[DriftVerdict]
    notifications: list[OutboxMessage]


def version_drift(
    session: Session, *, model: str, version: str, now: datetime
) -> VersionDrift | None:
    record = active_baseline(session, model, version)
    if record is None:
        return None
    latest = queries.latest_verdicts(
        session=session, model=model, version=version, baseline_id=record.baseline_id
    )
    window = _current_window(session, model, version, latest)
    baseline = Baseline.from_record(record.record)
    current = [decision_row(d, baseline.refusals) for d in window]
    features = [
        _feature_drift(model, name, kind, latest, _plot(name, kind, baseline, current))
        for name, kind in sorted(record_features(record.record).items())
    ]
    scores = score_samples(
        session, model, version, record.occurred_at, [d.decision_id for d in window]
    )
    trend = score_trend(session, model, version, now - SCORE_TREND)
    features += [
        _feature_drift(
            model, name, "score", latest, _score_plot(name, then, lately), trend.get(name, [])
        )
        for name, (then, lately) in sorted(scores.items())
    ]
    features.sort(key=lambda f: (f.state != "drifting", f.feature))
    status, _ = drift_status(session, model=model, version=version, now=now)
    return VersionDrift(
        model=model,
        version=version,
        status=status,
        baseline=record,
        window=(window[-1].occurred_at, window[0].occurred_at) if window else None,
        window_size=len(window),
        features=features,
        history=queries.verdict_history(session=session, model=model, version=version, limit=50),
        notifications=_notifications_about(session, model, version),
    )


@dataclass(frozen=True)
class AlertGroup:
    receiver: str
    group_key: str
    state: Literal["firing", "resolved"]
    firing: int
    resolved: int
    notified_at: datetime
    labels: dict[str, str]


@dataclass(frozen=True)
class AlertsPage:
    groups: list[AlertGroup]
    notifications: list[OutboxMessage]
    silences: list[tuple[Silence, str]]  # with its state: active, pending or expired


def alerts_page(session: Session, *, now: datetime) -> AlertsPage:
    notifications = list(
        session.exec(
            select(OutboxMessage).order_by(col(OutboxMessage.created_at).desc()).limit(100)
        ).all()
    )
    labels_of = {(m.receiver, m.group_key): m.common_labels for m in reversed(notifications)}
    groups = [
        AlertGroup(
            receiver=entry.receiver,
            group_key=entry.group_key,
            state="firing" if entry.firing else "resolved",
            firing=len(entry.firing),
            resolved=len(entry.resolved),
            notified_at=entry.notified_at,
            labels=labels_of.get((entry.receiver, entry.group_key), {}),
        )
        for entry in session.exec(
            select(NotificationLogEntry).order_by(col(NotificationLogEntry.notified_at).desc())
        ).all()
    ]
    silences = session.exec(select(Silence).order_by(col(Silence.ends_at).desc()).limit(100)).all()
    return AlertsPage(
        groups=groups,
        notifications=notifications,
        silences=[(s, state_of(s, now)) for s in silences],
    )


@dataclass(frozen=True)
class Verification:
    state: Literal["verified", "pending", "failed"]
    detail: str


@dataclass(frozen=True)
class Challenge:
    """A decision a review overrode or escalated, or feedback said was wrong, and the entry of
    the accountability map that answers for it (None: no map, or no entry covers it)."""

    reasons: list[str]  # "overridden by a.kim on 2026-11-02", "reported wrong by ..."
    entry: DecisionType | None
    configured: bool


@dataclass(frozen=True)
class DecisionPage:
    lineage: queries.Lineage
    verification: Verification
    inputs: list[tuple[str, Any]] = field(default_factory=list)
    cost: str | None = None  # with its currency; None: no price table, or no price for it
    challenge: Challenge | None = None  # None: nobody challenged it


def decision_page(
    session: Session,
    *,
    decision_id: uuid.UUID,
    keys: KeyRing,
    prices: PriceTable | None = None,
    accountability: AccountabilityMap | None = None,
) -> DecisionPage | None:
    lineage = queries.lineage(session=session, decision_id=decision_id)
    if lineage is None:
        return None
    cost = prices.cost(lineage.trail.decision) if prices else None
    return DecisionPage(
        lineage=lineage,
        verification=verify_decision(session, decision_id=decision_id, keys=keys),
        inputs=sorted(flatten(lineage.trail.decision.inputs).items()),
        cost=None if cost is None or prices is None else f"{cost:.6f} {prices.currency}",
        challenge=_challenge(lineage.trail, accountability),
    )


def _challenge(
    trail: queries.DecisionTrail, accountability: AccountabilityMap | None
) -> Challenge | None:
    said = {"override": "overridden", "escalate": "escalated"}
    reasons = [
        f"{said[r.action]} by {r.reviewer} on {r.occurred_at.date()}"
        for r in trail.reviews
        if r.action in said
    ]
    reasons += [
        f"reported wrong by {f.reporter} on {f.occurred_at.date()}"
        for f in trail.feedback
        if f.correct is False
    ]
    if not reasons:
        return None
    decision = trail.decision
    entry = (
        accountability.challenged(decision.model_name, decision.output) if accountability else None
    )
    return Challenge(reasons, entry, accountability is not None)


@dataclass(frozen=True)
class AccountabilityPage:
    configured: bool
    survey: Survey


def accountability_page(
    session: Session, *, accountability: AccountabilityMap | None, now: datetime
) -> AccountabilityPage:
    """The map's entries with their gaps, and the models it leaves without one; with no map,
    every model with decisions is one."""
    given = accountability or AccountabilityMap(decision_types=[])
    return AccountabilityPage(accountability is not None, survey_store(given, session, now=now))


def verify_decision(session: Session, *, decision_id: uuid.UUID, keys: KeyRing) -> Verification:
    """What the page shows checked: its rows against their ledger entries, and the decision's
    entry against the latest checkpoint that covers it. "Verified" needs both."""
    tampering = check_decision(session, decision_id, keys.trusted)
    if tampering:
        return Verification("failed", "; ".join(str(t) for t in tampering))
    try:
        proof = prove_decision(session, decision_id, keys.trusted)
    except ProofUnavailable as unavailable:
        return Verification("pending", f"rows match the ledger; {unavailable}")
    key = keys.trusted[proof["checkpoint"]["key_id"]]
    problems = check_proof(proof, key)
    if problems:
        return Verification("failed", "; ".join(problems))
    signed_at = proof["checkpoint"]["signed_at"]
    return Verification(
        "verified",
        f"what this page shows is what the ledger holds, and it matches the checkpoint signed"
        f" at {signed_at}",
    )


def _current_window(
    session: Session, model: str, version: str, latest: list[DriftVerdict]
) -> list[Decision]:
    """The decisions of the latest check, newest first; or the latest ``SAMPLE``."""
    statement = select(Decision).where(
        Decision.model_name == model, Decision.model_version == version
    )
    if latest:
        newest = max(latest, key=lambda v: v.occurred_at)
        statement = statement.where(
            col(Decision.occurred_at) >= newest.window_start,
            col(Decision.occurred_at) <= newest.window_end,
        )
    ordered = statement.order_by(col(Decision.occurred_at).desc()).limit(SAMPLE * 5)
    return list(session.exec(ordered).all())


def _plot(name: str, kind: str, baseline: Baseline, current: list[dict[str, Any]]) -> Markup | None:
    if kind == "continuous":
        values = [row.get(name) for row in current]
        numbers = [float(v) for v in values if isinstance(v, int | float)]
        return plots.histogram(name, baseline.sorted_columns[name].tolist(), numbers)
    if kind == "categorical":
        counted = Counter(category(row[name]) for row in current if row.get(name) is not None)
        return plots.categories(name, baseline.categorical[name], counted)
    return None


def _feature_drift(
    model: str,
    name: str,
    kind: str,
    latest: list[DriftVerdict],
    plot: Markup | None,
    trend: list[DayMean] | None = None,
) -> FeatureDrift:
    """A feature's section of the drift page: its latest verdicts, drifting since the
    earliest of those that detected drift (and a named score's daily means)."""
    checks = [v for v in latest if v.feature == name]
    detected = [v for v in checks if v.state == "detected"]
    return FeatureDrift(
        feature=name,
        kind=kind,
        state="drifting" if detected else "ok",
        since=min(v.occurred_at for v in detected) if detected else None,
        checks=checks,
        plot=plot,
        silence_query=_silence_query(model, name),
        trend=trend or [],
    )


def _score_plot(name: str, then: list[Value], lately: list[Value]) -> Markup | None:
    """A named score's distribution in the baseline's period and in the window: shares of
    true and false for a boolean one, bins for a number."""
    if not then or not lately:
        return None
    if all(isinstance(v, bool) for v in (*then, *lately)):
        counted = [Counter(str(v).lower() for v in side) for side in (then, lately)]
        return plots.categories(name, dict(counted[0]), counted[1])
    return plots.histogram(name, sorted(float(v) for v in then), [float(v) for v in lately])


def _notifications_about(session: Session, model: str, version: str) -> list[OutboxMessage]:
    recent = session.exec(
        select(OutboxMessage).order_by(col(OutboxMessage.created_at).desc()).limit(500)
    ).all()
    return [
        m
        for m in recent
        if m.common_labels.get("model") == model
        and m.common_labels.get("version", version) == version
    ][:20]


def _verdict(session: Session, model: str, version: str) -> str | None:
    found = queries.latest_readiness(session=session, model=model, version=version)
    return found.verdict if found else None


def _overridden(session: Session, decision_ids: list[uuid.UUID]) -> int:
    if not decision_ids:
        return 0
    return session.exec(
        select(func.count(func.distinct(Review.decision_id))).where(
            col(Review.decision_id).in_(decision_ids), Review.action == "override"
        )
    ).one()


def _owner(session: Session, alerting: AlertingConfig | None, labels: dict[str, str]) -> str | None:
    if alerting is not None and (owner := owner_for(alerting, labels)) is not None:
        return owner.owner
    deployment = session.exec(
        select(ModelDeployment)
        .where(
            ModelDeployment.model_name == labels["model"],
            ModelDeployment.model_version == labels["version"],
        )
        .order_by(col(ModelDeployment.occurred_at).desc())
    ).first()
    return deployment.owner if deployment else None


def _silence_query(model: str, feature: str) -> str:
    """The alerts page's query proposing a silence of a feature's alert; Matcher writes each
    matcher, quoting whatever the names hold."""
    matchers = (Matcher("model", "=", model), Matcher("feature", "=", feature))
    return urlencode([("matcher", str(matcher)) for matcher in matchers])


def _silences(matchers: Any, labels: dict[str, str]) -> bool:
    """Whether a silence's model and version matchers cover this version (others, such as a
    feature, narrow it further: it still counts)."""
    about = [m for m in matchers if m.name in ("service", "model", "version")]
    return all_match(about, labels)


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    p50, p95, p99 = np.percentile(np.asarray(values, dtype=float), [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99)}


@dataclass(frozen=True)
class GoLiveRow:
    status: VersionStatus
    gaps: list[str]  # the model's contract and accountability gaps
    failing: list[dict[str, Any]]  # criteria the gate's latest verdict did not pass


def golive_page(
    session: Session,
    *,
    thresholds: ReadinessConfig | None,
    contracts: Contracts | None,
    accountability: AccountabilityMap | None,
    now: datetime,
) -> list[GoLiveRow]:
    """Each model version's clock, agreed thresholds (and any proposed change), latest
    evaluation runs with their tags and regressions, and the gaps in its data contract and
    accountability map; what the gate last found short, too."""
    statuses = version_statuses(session, thresholds=thresholds, now=now)
    given = accountability or AccountabilityMap(decision_types=[])
    models = sorted({s.model for s in statuses})
    survey = survey_store(given, session, now=now, models=models)
    rows = []
    for status in statuses:
        gaps = _contract_gaps(contracts, status.model)
        gaps += [f"accountability: {g.decision_type}: {g.what}" for g in survey.gaps
                 if g.model == status.model]  # fmt: skip
        if accountability is None:
            gaps.append("accountability: no map is configured")
        latest = session.exec(
            select(ReadinessEvaluation.criteria)
            .where(
                ReadinessEvaluation.model_name == status.model,
                ReadinessEvaluation.model_version == status.version,
            )
            .order_by(col(ReadinessEvaluation.occurred_at).desc())
        ).first()
        failing = [c for c in latest or () if c.get("status") != "pass"]
        rows.append(GoLiveRow(status, gaps, failing))
    return rows


def _contract_gaps(contracts: Contracts | None, model: str) -> list[str]:
    """What the data contract leaves out, as written: the SLAs the gate measures."""
    contract = contracts.for_model(model) if contracts else None
    if contract is None:
        return ["data contract: none for this model" + ("" if contracts else " (no file)")]
    gaps = [] if contract.sources else ["data contract: no upstream source"]
    gaps += [] if contract.consumers else ["data contract: no downstream consumer"]
    gaps += [
        f"data contract: source {s.name} has no owner" for s in contract.sources if not s.owner
    ]
    gaps += [f"data contract: consumer {c.name} has no owner" for c in contract.consumers
             if not c.owner]  # fmt: skip
    return gaps

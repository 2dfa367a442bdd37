"""The detector worker: on a schedule, checks the latest window of every model version that
has a baseline (every ``detect_interval_s``; the sequential check every
``detect_stream_interval_s`` in between), and emits ``drift_detected`` and ``drift_resolved``
events to Kafka, so that verdicts are in the ledger like everything else.

Beside the window check, the sequential check (``driftline.detectors.sequential``) takes each
decision newer than the last it took, oldest first (up to ``STREAM_BATCH`` a round; a backlog
is taken over the next rounds), so a large shift raises within tens of decisions of the round
it arrived in. Its state lives in memory and is rebuilt from the store: a worker that starts,
or takes over, replays the version's current window into it, which is what a CUSUM's statistic
depends on, and judges the replay by where the statistic ends (a crossing already over is not
raised again). A worker that loses the lead forgets it, to rebuild it when it leads again. A
decision stored after newer ones were taken (late, with an older time) is left to the window
check.

One worker is active at a time (``driftline.collector.core.leadership``); a standby takes over when
it dies. A version without a baseline gets one from its first decisions when
``detect_baseline_first`` is set. A check runs only when the window has new decisions; a
version to which none has come for ``detect_stale_after_s`` has its open drifts resolved as
stale. A verdict or baseline the agent does not take (its queue full) moves nothing, and is
sent again on the next round, new decisions or not.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from uuid import UUID

import structlog
from pydantic import ValidationError
from sqlalchemy import Engine, literal, tuple_
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from driftline.agent import Driftline
from driftline.agent.contract import ComponentEventType, DriftPayload, ModelRef
from driftline.collector.core.health import Heartbeat, first_line
from driftline.collector.core.leadership import Leadership
from driftline.collector.core.settings import CollectorSettings
from driftline.collector.drift import metrics
from driftline.collector.drift.baselines import (
    active_baseline,
    baseline_payload,
    fit_first_decisions,
)
from driftline.collector.drift.embeddings import (
    Floats,
    Vectors,
    reference_vectors,
    window_vectors,
)
from driftline.collector.drift.features import FeatureKinds, columns, decision_row
from driftline.collector.drift.scores import Samples, score_samples
from driftline.collector.store import queries
from driftline.collector.store.models import BaselineRecord, Decision, DriftVerdict
from driftline.detectors.baseline import Baseline
from driftline.detectors.hysteresis import Check, Hysteresis, Transition
from driftline.detectors.sequential import StreamCheck
from driftline.detectors.verdict import FeatureVerdict, Unchecked, check_window

log = structlog.get_logger(__name__)

DETECTOR_SERVICE = "driftline-detector"
STREAM_BATCH = 20_000  # decisions the sequential check takes of a version in one round
STALE = "stale: "  # how the evidence of a drift resolved for want of traffic begins
Version = tuple[str, str]  # (model, version)


@dataclass(frozen=True)
class _Window:
    """A version's window of decisions: against which baseline, from when to when (its oldest
    and newest decisions). Two are equal when they share the baseline and newest decision:
    the later has nothing new to count."""

    baseline_id: str
    start: datetime = field(compare=False)
    end: datetime


@dataclass
class _Stream:
    """A version's sequential check against one baseline, and the newest decision it took."""

    check: StreamCheck
    newest: tuple[datetime, UUID] | None = None


def _order(decision: Decision) -> tuple[datetime, UUID]:
    return (decision.occurred_at, decision.decision_id)


class DetectorWorker:
    def __init__(self, engine: Engine, agent: Driftline, settings: CollectorSettings) -> None:
        self._engine = engine
        self._agent = agent
        self._settings = settings
        self._baselines: dict[str, Baseline] = {}  # by baseline id
        self._states: dict[tuple[str, str, str], Hysteresis] = {}  # by model, version, baseline
        self._streams: dict[tuple[str, str, str], _Stream] = {}  # by model, version, baseline
        self._last_checked: dict[Version, _Window] = {}
        # Each version's window as last seen, and since when (monotonic): how long it is quiet
        self._arrivals: dict[Version, tuple[_Window | None, float]] = {}
        self._fitted: dict[Version, str] = {}  # baselines published, not yet collected
        self._reference_vectors: dict[str, Vectors] = {}  # by baseline id: it cannot change

    def run(self, stop: threading.Event, heartbeat: Heartbeat | None = None) -> None:
        leadership = Leadership(self._engine, DETECTOR_SERVICE)
        leading = False
        full_due = 0.0  # when the next full round (window checks) is due, monotonic
        tick = min(self._settings.detect_stream_interval_s, self._settings.detect_interval_s)
        try:
            while not stop.is_set():
                if heartbeat is not None:
                    heartbeat.beat()
                try:
                    if leadership.hold():
                        if not leading:
                            log.info("detector worker active")
                        leading = True
                        if time.monotonic() >= full_due:
                            full_due = time.monotonic() + self._settings.detect_interval_s
                            self.check_all()
                        else:
                            self.check_streams()
                    elif leading or not self._last_checked:
                        log.info("another detector worker is active; standing by")
                        leading, full_due = False, 0.0
                        # What another leader decides meanwhile is in the store, not here:
                        # rebuilt from it (and the window replayed) on leading again.
                        self._streams.clear()
                        self._states.clear()
                        self._last_checked.clear()
                        self._arrivals.clear()
                    if heartbeat is not None:
                        heartbeat.clear("database")
                except SQLAlchemyError as error:
                    log.error("drift check failed; retrying next interval", error=str(error))
                    if heartbeat is not None:
                        heartbeat.fault("database", first_line(error))
                stop.wait(tick)
        finally:
            leadership.release()

    def check_streams(self) -> list[Transition]:
        """A round of the sequential check alone, between full rounds: the decisions each
        version's check has not taken, against the baseline still in force; the transitions
        it emitted."""
        transitions = []
        with Session(self._engine) as session:
            for (model, version, baseline_id), stream in list(self._streams.items()):
                record = active_baseline(session, model, version)
                state = self._states.get((model, version, baseline_id))
                if record is None or record.baseline_id != baseline_id or state is None:
                    continue  # the next full round moves it to the new baseline
                fresh = _fresh(session, model, version, stream.newest)
                if fresh:
                    baseline = stream.check.baseline
                    rows = columns(
                        [decision_row(d, baseline.refusals) for d in fresh], _kinds(baseline)
                    )
                    state.update(stream.check.update(rows))
                    stream.newest = _order(fresh[-1])
                span = (
                    _Window(baseline_id, fresh[0].occurred_at, fresh[-1].occurred_at)
                    if fresh
                    else None
                )
                for transition in state.due():
                    if transition.verdict.test != "cusum":
                        continue  # a window check's goes with its window, in the full round
                    window = span or self._last_checked.get((model, version))
                    if window is not None and self._emit(model, version, window, transition):
                        state.settle(transition)
                        transitions.append(transition)
        return transitions

    def check_all(self) -> list[Transition]:
        """One round: every version with decisions; the transitions it emitted."""
        with Session(self._engine) as session:
            versions = session.exec(
                select(Decision.model_name, Decision.model_version).distinct()
            ).all()
            transitions = []
            for model, version in versions:
                transitions += self.check(session, model, version)
        return transitions

    def check(self, session: Session, model: str, version: str) -> list[Transition]:
        """Check the version's latest window if it has new decisions, then record every
        transition due, those the agent did not take before included; the ones it took."""
        record = active_baseline(session, model, version)
        if record is None:
            self._fit_when_ready(session, model, version)
            return []
        window = self._window(session, model, version)
        state = self._state(session, model, version, record.baseline_id)
        if stale := self._resolve_stale(session, model, version, record.baseline_id, window):
            return stale
        if len(window) < self._settings.detect_min_decisions:
            return []
        counted = self._last_checked.get((model, version))
        latest = _Window(record.baseline_id, window[-1].occurred_at, window[0].occurred_at)
        if counted is None and _stale_since(session, model, version, record.baseline_id, latest):
            # A worker new to the version (a restart, a new leader) takes a window that was
            # resolved as stale as counted: checked again, it would raise a drift anew with no
            # new traffic.
            counted = self._last_checked[(model, version)] = latest
        if counted != latest:
            counted = self._last_checked[(model, version)] = latest
            stream = self._stream(model, version, record.baseline_id, self._baseline(record))
            baseline = self._baseline(record)
            scores = score_samples(
                session, model, version, record.occurred_at, [d.decision_id for d in window]
            )
            vectors = self._vectors(session, record, window)
            with metrics.CHECK_SECONDS.time():
                self._count(
                    session, state, stream, baseline, window, scores, vectors,
                    model=model, version=version,
                )  # fmt: skip
            metrics.CHECKS.inc()
        recorded = []
        for transition in state.due():  # a transition moves the state once its event is queued
            if self._emit(model, version, counted, transition):
                state.settle(transition)
                recorded.append(transition)
        return recorded

    def _count(
        self,
        session: Session,
        state: Hysteresis,
        stream: _Stream | None,
        baseline: Baseline,
        window: Sequence[Decision],
        scores: Samples,
        vectors: dict[str, tuple[Floats, Floats]],
        *,
        model: str,
        version: str,
    ) -> None:
        """Check the window against the baseline (its decisions' named scores against those of
        the baseline's period), and the decisions the sequential check has not taken; count
        each check's verdict."""
        kinds = _kinds(baseline)
        verdicts: list[FeatureVerdict | Unchecked] = list(
            check_window(
                baseline,
                columns([decision_row(d, baseline.refusals) for d in window], kinds),
                rate=self._settings.detect_false_alarm_rate,
                correction=self._settings.detect_correction,
                min_effect=self._settings.detect_min_effect,
                samples=scores,
                vectors=vectors,
            )
        )
        fresh: Sequence[Decision] = []
        if stream is not None:
            replay = stream.newest is None
            fresh = window[::-1] if replay else _fresh(session, model, version, stream.newest)
            if fresh:
                rows = columns([decision_row(d, baseline.refusals) for d in fresh], kinds)
                verdicts += stream.check.update(rows, replay=replay)
                stream.newest = _order(fresh[-1])
        due = state.update(verdicts)
        log.info(
            "drift check",
            model=model,
            version=version,
            window=len(window),
            checks=sum(isinstance(v, FeatureVerdict) for v in verdicts),
            sequential=len(fresh),
            unchecked=[
                f"{v.feature} ({v.test}): {v.reason}" for v in verdicts if isinstance(v, Unchecked)
            ],
            drifting=sorted(f"{f} ({t})" for f, t in state.drifting),
            due=[f"{t.state}: {t.verdict.feature} ({t.verdict.test})" for t in due],
        )

    def _resolve_stale(
        self,
        session: Session,
        model: str,
        version: str,
        baseline_id: str,
        window: Sequence[Decision],
    ) -> list[Transition]:
        """Resolve the version's open drifts when no new decision has reached the store for
        ``detect_stale_after_s`` (timed here, as decisions arrive, so that decisions dated in
        the past are not taken for silence): a check needs traffic, and an alert about a
        service gone quiet would otherwise fire for ever. Each resolve says why (its
        evidence), and the check starts afresh, to raise again if the drift is there when
        traffic returns."""
        newest = (
            _Window(baseline_id, window[-1].occurred_at, window[0].occurred_at) if window else None
        )
        seen = self._arrivals.get((model, version))
        if seen is None or seen[0] != newest:
            self._arrivals[(model, version)] = (newest, time.monotonic())
            return []
        state = self._states[(model, version, baseline_id)]
        after, quiet = self._settings.detect_stale_after_s, time.monotonic() - seen[1]
        if after is None or quiet < after or not state.drifting:
            return []
        stored = {
            (v.feature, v.test): v
            for v in queries.latest_verdicts(
                session=session, model=model, version=version, baseline_id=baseline_id
            )
        }
        taken = f"; the newest was taken {newest.end:%Y-%m-%d %H:%M:%S}Z" if newest else ""
        reason = (
            f"{STALE}no new decision for {quiet:.0f} s (stale after {after:g} s){taken}; "
            "resolved for want of traffic, not because the drift ended"
        )
        resolved = []
        for check in sorted(state.drifting):
            row = stored.get(check)
            verdict = state.latest(check) or (_counted(row) if row is not None else None)
            span = self._last_checked.get((model, version)) or (
                _Window(baseline_id, row.window_start, row.window_end) if row else None
            )
            if verdict is None or span is None:
                continue  # its detection is not stored yet: the next round resolves it
            transition = Transition("resolved", replace(verdict, evidence=(reason,)))
            if self._emit(model, version, span, transition):
                state.forget(check)
                resolved.append(transition)
        return resolved

    def _window(self, session: Session, model: str, version: str) -> Sequence[Decision]:
        """The newest decisions first."""
        query = select(Decision).where(
            Decision.model_name == model, Decision.model_version == version
        )
        if self._settings.detect_window_minutes is not None:
            since = datetime.now(UTC) - timedelta(minutes=self._settings.detect_window_minutes)
            query = query.where(col(Decision.occurred_at) >= since)
        return session.exec(
            query.order_by(
                col(Decision.occurred_at).desc(), col(Decision.decision_id).desc()
            ).limit(self._settings.detect_window_decisions)
        ).all()

    def _fit_when_ready(self, session: Session, model: str, version: str) -> None:
        first = self._settings.detect_baseline_first
        if first == 0 or (model, version) in self._fitted:
            return
        fitted = fit_first_decisions(
            session,
            model,
            version,
            first,
            review_threshold=self._settings.detect_review_threshold,
            refusals=self._settings.detect_refusal_phrases,
        )
        if fitted is None:
            return
        payload = baseline_payload(fitted, version=version, set_by=DETECTOR_SERVICE)
        recorded = self._agent.record_component(
            "baseline_set", payload, model=ModelRef(name=model, version=version)
        )
        if not recorded.queued:  # fitted again, and sent again, next round
            log.warning("fitted baseline not taken by the agent", model=model, version=version)
            return
        self._fitted[(model, version)] = fitted.baseline_id
        log.info("baseline fitted", model=model, version=version, source=fitted.source)

    def _vectors(
        self, session: Session, record: BaselineRecord, window: Sequence[Decision]
    ) -> dict[str, tuple[Floats, Floats]]:
        """Each embedding side's vectors of the baseline's period and of the window."""
        if record.baseline_id not in self._reference_vectors:
            self._reference_vectors[record.baseline_id] = reference_vectors(
                session, record.model_name, record.model_version, record.occurred_at
            )
        reference = self._reference_vectors[record.baseline_id]
        if not reference:
            return {}  # the version sends none: no ledger read for its window
        current = window_vectors(session, window)
        return {name: (then, current[name]) for name, then in reference.items() if name in current}

    def _baseline(self, record: BaselineRecord) -> Baseline:
        if record.baseline_id not in self._baselines:
            self._baselines[record.baseline_id] = Baseline.from_record(record.record)
        return self._baselines[record.baseline_id]

    def _stream(
        self, model: str, version: str, baseline_id: str, baseline: Baseline
    ) -> _Stream | None:
        if self._settings.detect_stream_arl == 0 or not baseline.continuous:
            return None
        key = (model, version, baseline_id)
        if key not in self._streams:
            check = StreamCheck(baseline, arl=self._settings.detect_stream_arl)
            self._streams[key] = _Stream(check)
        return self._streams[key]

    def _state(self, session: Session, model: str, version: str, baseline_id: str) -> Hysteresis:
        key = (model, version, baseline_id)
        if key not in self._states:
            self._states[key] = Hysteresis(
                raise_after=self._settings.detect_raise_after,
                clear_after=self._settings.detect_clear_after,
                drifting=_drifting(session, model, version, baseline_id),
            )
        return self._states[key]

    def _emit(self, model: str, version: str, window: _Window, transition: Transition) -> bool:
        """Record the transition's verdict; False if the agent did not take it, or the contract
        refuses it (logged: one bad verdict stops neither the round nor the worker)."""
        verdict = transition.verdict
        kind: ComponentEventType = (
            "drift_detected" if transition.state == "detected" else "drift_resolved"
        )
        try:
            payload = DriftPayload(
                version=version,
                baseline_id=window.baseline_id,
                feature=verdict.feature,
                test=verdict.test,
                statistic=verdict.statistic,
                p_value=verdict.p_value,
                adjusted_p=verdict.adjusted_p,
                false_alarm_rate=(  # the sequential check's budget is per decision
                    1 / self._settings.detect_stream_arl
                    if verdict.test == "cusum"
                    else self._settings.detect_false_alarm_rate
                ),
                effect_name=verdict.effect_name,
                effect=verdict.effect if math.isfinite(verdict.effect) else None,
                window_start=window.start,
                window_end=window.end,
                baseline_size=verdict.baseline_size,
                current_size=verdict.current_size,
                evidence=list(verdict.evidence) or None,
            )
            recorded = self._agent.record_component(
                kind, payload, model=ModelRef(name=model, version=version)
            )
        except ValidationError as error:
            log.error(f"{kind} refused by the contract", model=model, problem=str(error))
            return False
        if not recorded.queued:
            log.warning(
                f"drift {transition.state} not taken by the agent; sending it again next round",
                model=model,
                version=version,
                feature=verdict.feature,
                test=verdict.test,
            )
            return False
        metrics.VERDICTS.labels(transition.state).inc()
        log.info(  # the event is the record; on-call hears of it through alert routing
            f"drift {transition.state}",
            model=model,
            version=version,
            feature=verdict.feature,
            test=verdict.test,
            adjusted_p=verdict.adjusted_p,
            effect=f"{verdict.effect_name}={verdict.effect:.3g}",
        )
        return True


def _fresh(
    session: Session, model: str, version: str, newest: tuple[datetime, UUID] | None
) -> Sequence[Decision]:
    """The version's decisions after ``newest``, oldest first, at most ``STREAM_BATCH``."""
    query = select(Decision).where(Decision.model_name == model, Decision.model_version == version)
    if newest is not None:
        table = Decision.__table__.c  # type: ignore[attr-defined]
        after = tuple_(
            literal(newest[0], type_=table.occurred_at.type),
            literal(newest[1], type_=table.decision_id.type),
        )
        query = query.where(tuple_(table.occurred_at, table.decision_id) > after)
    ordered = query.order_by(col(Decision.occurred_at), col(Decision.decision_id))
    return session.exec(ordered.limit(STREAM_BATCH)).all()


def _kinds(baseline: Baseline) -> FeatureKinds:
    categorical = (*baseline.categorical, *baseline.identifiers)  # both are raw values
    return FeatureKinds(
        baseline.continuous, categorical, tuple(baseline.flags), tuple(baseline.texts)
    )


def _stale_since(
    session: Session, model: str, version: str, baseline_id: str, window: _Window
) -> bool:
    """Whether a drift of the version was resolved as stale with this window's newest
    decision, or a newer one, in its window: nothing has come since."""
    latest = queries.latest_verdicts(
        session=session, model=model, version=version, baseline_id=baseline_id
    )
    return any(
        v.state == "resolved" and (v.evidence or [""])[0].startswith(STALE)
        and v.window_end >= window.end
        for v in latest
    )  # fmt: skip


def _counted(row: DriftVerdict) -> FeatureVerdict:
    """A stored verdict as the check that gave it."""
    return FeatureVerdict(
        feature=row.feature,
        test=row.test,
        statistic=row.statistic,
        p_value=row.p_value,
        adjusted_p=row.adjusted_p,
        effect_name=row.effect_name,
        effect=math.inf if row.effect is None else row.effect,
        drifted=row.state == "detected",
        baseline_size=row.baseline_size,
        current_size=row.current_size,
        evidence=tuple(row.evidence or ()),
    )


def _drifting(session: Session, model: str, version: str, baseline_id: str) -> set[Check]:
    """The checks whose latest stored verdict against this baseline is "detected"."""
    latest = queries.latest_verdicts(
        session=session, model=model, version=version, baseline_id=baseline_id
    )
    return {(v.feature, v.test) for v in latest if v.state == "detected"}

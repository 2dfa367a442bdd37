"""Agreed thresholds and the decision clock. ``driftline readiness agree`` records a model's
thresholds as a ``thresholds_agreed`` event: what was agreed (the threshold itself and its
SHA-256), the named decision-maker, the stage and the deadline of the go/no-go. The gate judges
against the latest agreement, never the file's current text; a file that differs from it is
a proposed change until it is agreed again, and every agreement stays in the trail.

The clock starts at a version's first agreement and runs to its deadline (90 days unless set
otherwise). Agreeing again keeps the deadline; moving it is said explicitly and stays in the
trail. A deadline that passes with no go/no-go recorded before it is itself a finding.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session, col, select

from driftline.agent.contract import ThresholdsAgreedPayload
from driftline.collector.golive.thresholds import Threshold
from driftline.collector.store.models import (
    AgreedThresholds,
    ModelDeployment,
    ReadinessEvaluation,
)

DEFAULT_CLOCK = timedelta(days=90)
STAGE = "go-live"


class AgreementError(ValueError):
    """An agreement in the store that no longer reads as a threshold."""


def threshold_digest(threshold: Threshold) -> str:
    """The SHA-256 of a threshold's canonical JSON: what an agreement names."""
    return _digest(threshold.model_dump(mode="json"))


def _stored_digest(document: Any) -> str | None:
    try:
        return _digest(document)
    except (TypeError, ValueError):  # not JSON (NaN, say): it matches no digest
        return None


def _digest(document: Any) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Agreement:
    """The latest agreement of a version's thresholds, and when its clock started."""

    threshold: Threshold
    sha256: str
    decision_maker: str
    stage: str
    agreed_at: datetime
    started_at: datetime  # the first agreement's time
    deadline: datetime
    scope: str  # the version it was agreed for, or "*" for every version
    agreements: int  # how many are in the trail

    def proposes_change(self, proposed: Threshold | None) -> bool:
        """Whether a file's threshold says something else than this agreement: compared as
        both read today (an agreement recorded before a setting existed, or kept as the file
        gave it, without its defaults, is not a change for that alone)."""
        if proposed is None:
            return False
        return threshold_digest(proposed) != threshold_digest(self.threshold)

    def day(self, now: datetime) -> int:
        """Which day of the clock ``now`` is: the first agreement's day is day 1."""
        return (now - self.started_at) // timedelta(days=1) + 1

    @property
    def days(self) -> int:
        return math.ceil((self.deadline - self.started_at) / timedelta(days=1))

    def clock(self, now: datetime) -> str:
        if now > self.deadline:
            return f"deadline passed {self.deadline:%Y-%m-%d} (day {self.day(now)} of {self.days})"
        return f"day {self.day(now)} of {self.days} (decision due {self.deadline:%Y-%m-%d})"


def trail(session: Session, model: str, version: str) -> list[AgreedThresholds]:
    """Every agreement that governs the version, oldest first: its own if it has any, else
    the model's "*" ones."""
    rows = session.exec(
        select(AgreedThresholds)
        .where(
            AgreedThresholds.model_name == model,
            col(AgreedThresholds.model_version).in_([version, "*"]),
        )
        # Two agreements in one microsecond: the later-made (event ids are UUIDv7) is the
        # latest, on every store alike.
        .order_by(col(AgreedThresholds.occurred_at), col(AgreedThresholds.event_id))
    ).all()
    own = [row for row in rows if row.model_version == version]
    return own or [row for row in rows if row.model_version == "*"]


def agreement_for(session: Session, model: str, version: str) -> Agreement | None:
    rows = trail(session, model, version)
    if not rows:
        return None
    latest = rows[-1]
    which = (
        f"the agreement of {latest.occurred_at:%Y-%m-%d %H:%M} for {model} {latest.model_version}"
    )
    try:
        threshold = Threshold.model_validate(latest.threshold)
    except ValidationError as error:
        raise AgreementError(
            f"{which} does not read as a threshold: {error.errors(include_url=False)[0]['msg']}"
        ) from None
    if latest.sha256 not in (_stored_digest(latest.threshold), threshold_digest(threshold)):
        # What the gate would judge by is not what was agreed (and is shown): the read model
        # was altered, or the event never matched its own digest.
        raise AgreementError(
            f"{which}: its thresholds do not match their SHA-256 {latest.sha256[:12]} "
            "(altered in the store?); `driftline replay` rebuilds it from the ledger"
        )
    return Agreement(
        threshold=threshold, sha256=latest.sha256, decision_maker=latest.decision_maker,
        stage=latest.stage, agreed_at=latest.occurred_at, started_at=rows[0].occurred_at,
        deadline=latest.deadline, scope=latest.model_version, agreements=len(rows),
    )  # fmt: skip


def agreement_payload(
    threshold: Threshold,
    *,
    version: str,
    decision_maker: str,
    deadline: datetime,
    source: str,
    stage: str = STAGE,
) -> ThresholdsAgreedPayload:
    return ThresholdsAgreedPayload(
        version=version, sha256=threshold_digest(threshold),
        threshold=threshold.model_dump(mode="json"), decision_maker=decision_maker,
        stage=stage, deadline=deadline, source=source[:500],
    )  # fmt: skip


def decided_by_deadline(session: Session, agreement: Agreement, model: str, version: str) -> str:
    """The go/no-go recorded for the version while the clock ran, from its first agreement to
    the deadline ("go on 2027-02-01"), or "" if there is none: a verdict given before anything
    was agreed (a no-go for that alone, say) decides nothing."""
    decision = session.exec(
        select(ReadinessEvaluation)
        .where(
            ReadinessEvaluation.model_name == model,
            ReadinessEvaluation.model_version == version,
            col(ReadinessEvaluation.verdict).in_(["go", "no-go"]),
            # The verdict recorded at a deadline is no one's decision: a deadline moved past it
            # still waits for one.
            ReadinessEvaluation.asked_by != DEADLINE_ASKER,
            col(ReadinessEvaluation.occurred_at) >= agreement.started_at,
            col(ReadinessEvaluation.occurred_at) <= agreement.deadline,
        )
        .order_by(col(ReadinessEvaluation.occurred_at).desc())
    ).first()
    if decision is None:
        return ""
    return f"{decision.verdict} on {decision.occurred_at:%Y-%m-%d}"


DEADLINE_ASKER = "driftline-deadline"  # who asks when the gate records its verdict at a deadline


@dataclass(frozen=True)
class PastDeadline:
    due: list[tuple[str, str, Agreement]]  # (model, version, agreement) to record a verdict for
    unreadable: list[str]  # why an agreement could not be read: the gate cannot judge by it


def past_deadline(session: Session, now: datetime) -> PastDeadline:
    """The versions whose go/no-go deadline has passed with no decision while the clock ran,
    and whose verdict at the deadline is not recorded yet: what ``readiness deadlines``
    records. A model's "*" agreement governs each of its deployed versions without one of its
    own. An agreement that no longer reads (altered in the store) is reported, not skipped."""
    scopes = session.exec(
        select(AgreedThresholds.model_name, AgreedThresholds.model_version).distinct()
    ).all()
    deployed = session.exec(
        select(ModelDeployment.model_name, ModelDeployment.model_version).distinct()
    ).all()
    own = {(model, version) for model, version in scopes if version != "*"}
    versions = own | {
        (model, version) for model, version in deployed
        if (model, "*") in scopes and (model, version) not in own
    }  # fmt: skip
    due, unreadable = [], []
    for model, version in sorted(versions):
        try:
            agreement = agreement_for(session, model, version)
        except AgreementError as error:
            unreadable.append(str(error))
            continue
        if agreement is None or agreement.deadline > now:
            continue
        if decided_by_deadline(session, agreement, model, version):
            continue
        recorded = session.exec(
            select(ReadinessEvaluation.event_id).where(
                ReadinessEvaluation.model_name == model,
                ReadinessEvaluation.model_version == version,
                ReadinessEvaluation.asked_by == DEADLINE_ASKER,
                col(ReadinessEvaluation.occurred_at) >= agreement.deadline,
            )
        ).first()
        if recorded is None:
            due.append((model, version, agreement))
    return PastDeadline(due, unreadable)

"""Fitting baselines and finding the one in force for a model version.

A baseline is fitted from a reference file or from the first decisions of a version, and set
by a ``baseline_set`` event, so the choice is in the ledger; the latest one set for a version is
the active one. A record must fit in one event: a reservoir too large for that is sampled down
(uniformly) and the caller is told how far.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from driftline.agent.contract import MAX_EVENT_BYTES, BaselineSetPayload, baseline_digest
from driftline.collector.drift.features import (
    VIOLATIONS,
    columns,
    decision_row,
    infer_kinds,
    texts_of,
)
from driftline.collector.drift.reference import read_reference
from driftline.collector.store.models import BaselineRecord, Decision
from driftline.detectors.baseline import Baseline, BaselineBuilder
from driftline.detectors.descriptors import DEFAULT_REFUSALS
from driftline.detectors.text import MIN_TEXTS

# What an event may hold (MAX_EVENT_BYTES), less room for the envelope, the payload's other
# fields and the signature.
MAX_RECORD_BYTES = MAX_EVENT_BYTES - 16 * 1024


@dataclass(frozen=True)
class FittedBaseline:
    baseline: Baseline
    record: dict[str, Any]
    baseline_id: str
    source: str
    reservoir_rows: int  # rows kept, after any sampling down to fit one event


def fit_rows(
    chunks: Iterable[Sequence[dict[str, Any]]],
    *,
    reservoir: int = 10_000,
    review_threshold: float | None = None,
    flags: Sequence[str] = (),
    texts: Sequence[str] = (),
) -> Baseline:
    """Fit from chunks of flat rows; feature kinds are judged from the first chunk. ``texts``
    are left to the text check (``Baseline.with_texts``)."""
    builder: BaselineBuilder | None = None
    for chunk in chunks:
        if builder is None:
            kinds = infer_kinds(chunk, flags, texts)
            builder = BaselineBuilder(
                continuous=kinds.continuous,
                categorical=kinds.categorical,
                flags=kinds.flags,
                review_threshold=review_threshold,
                reservoir=reservoir,
            )
        builder.add(columns(chunk, kinds))
    if builder is None:
        raise ValueError("no rows to fit a baseline from")
    return builder.build()


def fit_reference(
    path: Path, *, reservoir: int = 10_000, review_threshold: float | None = None
) -> FittedBaseline:
    baseline = fit_rows(
        read_reference(path), reservoir=reservoir, review_threshold=review_threshold
    )
    return for_one_event(baseline, f"reference file {path.name}")


def fit_first_decisions(
    session: Session,
    model: str,
    version: str,
    first: int,
    *,
    reservoir: int = 10_000,
    review_threshold: float | None = None,
    refusals: Sequence[str] | None = None,
) -> FittedBaseline | None:
    """The baseline of a version's first ``first`` decisions; None until it has that many.
    ``refusals`` are the phrases that mark a completion a refusal (None: the built-in ones),
    kept in the baseline."""
    phrases = DEFAULT_REFUSALS if refusals is None else tuple(refusals)
    decisions = session.exec(
        select(Decision)
        .where(Decision.model_name == model, Decision.model_version == version)
        .order_by(col(Decision.occurred_at), col(Decision.decision_id))
        .limit(first)
    ).all()
    if len(decisions) < first:
        return None
    texts: dict[str, list[str]] = {}
    for decision in decisions:
        for name, text in texts_of(decision).items():
            texts.setdefault(name, []).append(text)
    fitted = fit_rows(
        [[decision_row(d, phrases) for d in decisions]],
        reservoir=reservoir,
        review_threshold=review_threshold,
        flags=(VIOLATIONS,),
        texts=tuple(texts),
    )
    baseline = replace(fitted, refusals=phrases).with_texts(texts)
    return for_one_event(baseline, f"first {first} decisions of {model} {version}")


def baseline_payload(fitted: FittedBaseline, *, version: str, set_by: str) -> BaselineSetPayload:
    """The payload of the ``baseline_set`` event that sets it for ``version``."""
    return BaselineSetPayload(
        version=version,
        baseline_id=fitted.baseline_id,
        source=fitted.source,
        set_by=set_by,
        size=fitted.baseline.size,
        record=fitted.record,
    )


def active_baseline(session: Session, model: str, version: str) -> BaselineRecord | None:
    return session.exec(
        select(BaselineRecord)
        .where(BaselineRecord.model_name == model, BaselineRecord.model_version == version)
        .order_by(col(BaselineRecord.occurred_at).desc())
        .limit(1)
    ).first()


def all_baselines(session: Session) -> Sequence[BaselineRecord]:
    return session.exec(
        select(BaselineRecord).order_by(
            col(BaselineRecord.model_name),
            col(BaselineRecord.model_version),
            col(BaselineRecord.occurred_at),
        )
    ).all()


def for_one_event(baseline: Baseline, source: str) -> FittedBaseline:
    record = baseline.to_record()
    size = _record_bytes(record)
    while size > MAX_RECORD_BYTES:
        if baseline.texts and (_texts_bytes(record) > size / 2 or len(baseline.rows) <= 1):
            # Texts while they are most of it (or all there is left to cut): a uniform half of
            # each sample each time, and none once too few are left for the text check.
            half = _most_texts(baseline) // 2
            fewer = baseline.with_texts(baseline.texts, per_feature=half)
            baseline = fewer if half >= MIN_TEXTS else replace(baseline, texts={})
        elif len(baseline.rows) > 1:
            # Rows dominate the rest, so its size scales with their number; a second pass
            # takes what the first, estimating, left over.
            rows = max(1, int(len(baseline.rows) * MAX_RECORD_BYTES / size * 0.95))
            baseline = baseline.subsample(rows)
        else:
            break  # categories' counts alone: the event is refused, and says by how much
        record = baseline.to_record()
        size = _record_bytes(record)
    return FittedBaseline(baseline, record, baseline_digest(record), source, len(baseline.rows))


def _most_texts(baseline: Baseline) -> int:
    return max((len(texts) for texts in baseline.texts.values()), default=0)


def _texts_bytes(record: dict[str, Any]) -> int:
    return _record_bytes(record.get("texts", {}))


def _record_bytes(record: dict[str, Any]) -> int:
    return len(json.dumps(record, separators=(",", ":")).encode())

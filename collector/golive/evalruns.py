"""An evaluation run: every case of a set asked of a target, a bounded number at a time,
scored, and summed up per metric and tag against the set's thresholds. The run is recorded as
one ``evaluation_case_scored`` event per case, then ``evaluation_completed`` with the figures,
and the set as ``evaluation_set_registered``: all name the set's SHA-256, so that the ledger
says which set a verdict used."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from driftline.agent.contract import (
    EvaluationCaseScoredPayload,
    EvaluationCompletedPayload,
    EvaluationFigure,
    EvaluationSetRegisteredPayload,
    EvaluationThreshold,
    Score,
    ScoreSource,
    new_event_id,
)
from driftline.collector.golive.evalsets import EvaluationSet
from driftline.collector.golive.scorers import source_of
from driftline.collector.golive.scoring import (
    CaseResult,
    CaseScorer,
    Figure,
    RefusalMatcher,
    figures,
    passed,
    score_case,
)
from driftline.collector.golive.targets import Target

OUTPUT_CHARACTERS = 4_000  # of an answer's JSON text, kept in its case's event
REASON_CHARACTERS = 2_000
# Of an event's 512 KiB, what a run's figures may take; the rest is its envelope and names.
FIGURES_BUDGET = 400 * 1024
MAX_FIGURES = 5_000


@dataclass(frozen=True)
class EvaluationRun:
    run_id: uuid.UUID
    evaluation_set: EvaluationSet
    sha256: str
    target: str
    started_at: datetime
    results: list[CaseResult]
    figures: list[Figure]

    @property
    def passed(self) -> bool:
        return passed(self.figures)

    @property
    def errors(self) -> int:
        return sum(r.answer.error is not None for r in self.results)

    def case_payloads(self, version: str) -> list[EvaluationCaseScoredPayload]:
        sources = {s.name: source_of(s) for s in self.evaluation_set.scorers}
        return [self._case_payload(r, version, sources) for r in self.results]

    def _case_payload(
        self, r: CaseResult, version: str, sources: dict[str, ScoreSource]
    ) -> EvaluationCaseScoredPayload:
        output = None
        if r.answer.error is None:
            text = json.dumps(r.answer.value, ensure_ascii=False, default=str)
            output = recordable(text, OUTPUT_CHARACTERS)
        scores = [
            Score(name=name, value=value, source=sources.get(name, "rule"))
            for name, value in r.scores.items()
        ]
        return EvaluationCaseScoredPayload(
            version=version, run_id=self.run_id, set_sha256=self.sha256, case_id=r.case.id,
            tags=r.case.tags, must_refuse=r.case.must_refuse, refused=r.refused,
            passed=r.passed, output=output, latency_ms=r.answer.latency_ms,
            error=recordable(r.answer.error, REASON_CHARACTERS) if r.answer.error else None,
            reason=recordable(r.reason, REASON_CHARACTERS), scores=scores or None,
        )  # fmt: skip

    def payload(self, version: str, asked_by: str) -> EvaluationCompletedPayload:
        """The run's event. A set at its limits (150 tags, 20 scorers, long names) has more
        figures than an event holds: then the whole set's and every bounded one are kept, and
        the others, each tag's unbounded figures, are counted as left out (the case events
        hold what they were made from)."""
        figures = [
            EvaluationFigure(
                metric=f.metric, tag=f.tag, value=f.value, sample=f.sample,
                minimum=f.threshold.minimum if f.threshold else None,
                maximum=f.threshold.maximum if f.threshold else None, status=f.status,
            )
            for f in self.figures
        ]  # fmt: skip
        omitted = 0
        size = sum(len(f.model_dump_json()) + 1 for f in figures)
        if size > FIGURES_BUDGET or len(figures) > MAX_FIGURES:
            kept = [f for f in figures if f.tag is None or f.status is not None]
            omitted, figures = len(figures) - len(kept), kept
        return EvaluationCompletedPayload(
            version=version, run_id=self.run_id, set_name=self.evaluation_set.name,
            set_version=self.evaluation_set.version, set_sha256=self.sha256,
            target=recordable(self.target, 500), asked_by=asked_by, started_at=self.started_at,
            cases=len(self.results), errors=self.errors, passed=self.passed, figures=figures,
            figures_omitted=omitted,
        )  # fmt: skip

    def document(self) -> dict[str, Any]:
        """JSON-ready, for ``--json``: the run's figures and each failed case."""
        return {
            "run_id": str(self.run_id),
            "set": self.evaluation_set.name,
            "set_version": self.evaluation_set.version,
            "set_sha256": self.sha256,
            "target": self.target,
            "cases": len(self.results),
            "errors": self.errors,
            "passed": self.passed,
            "figures": [
                {"metric": f.metric, "tag": f.tag, "value": f.value, "sample": f.sample}
                | ({"status": f.status} if f.threshold else {})
                for f in self.figures
            ],
            "failed": [
                {"case": r.case.id, "tags": r.case.tags, "reason": r.reason}
                for r in self.results
                if not r.passed
            ],
        }


def registration(
    evaluation_set: EvaluationSet, registered_by: str, source: str
) -> EvaluationSetRegisteredPayload:
    return EvaluationSetRegisteredPayload(
        set_name=evaluation_set.name, set_version=evaluation_set.version,
        sha256=evaluation_set.digest(), cases=len(evaluation_set.cases),
        must_refuse=evaluation_set.rejection_cases, tags=evaluation_set.tags,
        thresholds=[
            EvaluationThreshold(metric=t.metric, tag=t.tag, minimum=t.minimum, maximum=t.maximum)
            for t in evaluation_set.gates()
        ],
        registered_by=registered_by, source=recordable(source, 500),
    )  # fmt: skip


def run_set(
    evaluation_set: EvaluationSet,
    target: Target,
    scorers: dict[str, tuple[CaseScorer, float | None]],
    *,
    concurrency: int = 8,
    progress: Callable[[CaseResult], None] = lambda result: None,
) -> EvaluationRun:
    """Ask the target every case, ``concurrency`` at a time, and score each as it comes; the
    results keep the set's order."""
    refuses = RefusalMatcher(evaluation_set.refusal)
    started_at = datetime.now(UTC)

    def one(index: int) -> CaseResult:
        case = evaluation_set.cases[index]
        result = score_case(case, target(case), refuses, scorers)
        progress(result)
        return result

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="eval") as pool:
        results = list(pool.map(one, range(len(evaluation_set.cases))))
    return EvaluationRun(
        run_id=new_event_id(), evaluation_set=evaluation_set, sha256=evaluation_set.digest(),
        target=target.description, started_at=started_at, results=results,
        figures=figures(results, evaluation_set),
    )  # fmt: skip


def recordable(text: str, limit: int) -> str:
    """Text an event can carry: no NUL (PostgreSQL stores none), no lone surrogate (UTF-8 has
    none), cut to ``limit`` characters with an ellipsis."""
    clean = text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"

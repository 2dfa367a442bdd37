"""A set's own scorers, built once per run: a Python function of the user's (an entry point)
or a model as judge behind an HTTP endpoint. Each gives a case a score in [0, 1], recorded
as a named score (source ``rule`` or ``model``) beside the case's result."""

from __future__ import annotations

import json
from typing import Any

import httpx

from driftline.agent.contract import ScoreSource
from driftline.collector.golive.evalsets import Case, EvaluationSet, Scorer
from driftline.collector.golive.scoring import Answer, CaseScorer
from driftline.collector.golive.targets import load_entry_point, post_json


def build_scorers(
    evaluation_set: EvaluationSet, client: httpx.Client, timeout_s: float
) -> dict[str, tuple[CaseScorer, float | None]]:
    """Each scorer of the set by name, with its per-case minimum; TargetError for an entry
    point that cannot be loaded."""
    return {
        scorer.name: (_build(scorer, client, timeout_s), scorer.minimum)
        for scorer in evaluation_set.scorers
    }


def source_of(scorer: Scorer) -> ScoreSource:
    """The named score's source: a model as judge, or a rule of the user's."""
    return "model" if scorer.judge_url else "rule"


def _build(scorer: Scorer, client: httpx.Client, timeout_s: float) -> CaseScorer:
    if scorer.entry_point is not None:
        function = load_entry_point(scorer.entry_point)

        def own(case: Case, answer: Answer) -> float:
            expected = case.expected.model_dump(mode="json") if case.expected else None
            return function(case.input, expected, answer.value)  # type: ignore[no-any-return]

        return own
    assert scorer.judge_url is not None
    url = scorer.judge_url

    def judge(case: Case, answer: Answer) -> float:
        body = {
            "case_id": case.id,
            "input": case.input,
            "expected": case.expected.model_dump(mode="json") if case.expected else None,
            "output": answer.value,
        }
        # Within timeout_s in all, however slowly the judge trickles its answer.
        try:
            response, content = post_json(client, url, body, {}, timeout_s)
        except TimeoutError:
            raise TimeoutError(f"the judge did not answer within {timeout_s:g} s") from None
        if not response.is_success:
            raise ValueError(f"the judge answered HTTP {response.status_code}")
        try:
            document: Any = json.loads(content)
        except (ValueError, RecursionError):
            raise ValueError('the judge must answer JSON: {"score": <0..1>}') from None
        if not isinstance(document, dict) or "score" not in document:
            raise ValueError('the judge must answer {"score": <0..1>}')
        return document["score"]  # type: ignore[no-any-return]

    return judge

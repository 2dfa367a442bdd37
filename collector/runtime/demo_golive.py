"""The demo's go-live step: the loan service's golden evaluation set (shipped in
deploy/config/examples/) run against the live version and against a changed one, with the
figures per tag and the regression between them; then the thresholds agreed by a named
decision-maker, and the gate's verdict with every criterion and the day on the clock. Each is
recorded as signed events and read back from the store, as ``driftline eval run``,
``readiness agree`` and ``readiness`` do."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy import Engine
from sqlmodel import Session, select

from driftline.agent import Driftline
from driftline.agent.contract import ModelRef
from driftline.collector.audit import integrity
from driftline.collector.audit.integrity import KeyRing
from driftline.collector.core.producer_keys import trusted_producers
from driftline.collector.golive.accountability import SETTING
from driftline.collector.golive.agreements import DEFAULT_CLOCK, agreement_for, agreement_payload
from driftline.collector.golive.comparison import CaseOutcome, compare
from driftline.collector.golive.configuration import gate_configuration
from driftline.collector.golive.evalruns import EvaluationRun, registration, run_set
from driftline.collector.golive.evalsets import load_set
from driftline.collector.golive.gate import Agreed, evaluate
from driftline.collector.golive.tables import readiness_table, verdict_line
from driftline.collector.golive.targets import CallableTarget
from driftline.collector.golive.thresholds import load_thresholds
from driftline.collector.runtime.simulation import MODEL, VERSION, decide, decide_changed
from driftline.collector.runtime.stack import Stack
from driftline.collector.store.models import AgreedThresholds
from driftline.collector.store.models import EvaluationRun as RunRow

EXAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "config" / "examples"
EVALUATION_SET = EXAMPLES / "loan-desk-eval.yaml"
THRESHOLDS = EXAMPLES / "readiness.yaml"
ACCOUNTABILITY = EXAMPLES.parent / "accountability.yaml"
CONTRACTS = EXAMPLES.parent / "contracts.yaml"
CHANGED_VERSION = "3.2.0"
DECISION_MAKER = "head-of-credit-risk"
DEMO_SERVICE = "driftline-demo"


def demo_configuration() -> dict[str, Path]:
    """The shipped thresholds and accountability map, for the demo's settings, when the demo
    runs from the repository and the environment names none of its own."""
    found = {"readiness_config": (THRESHOLDS, "DRIFTLINE_READINESS_CONFIG"),
             "accountability_config": (ACCOUNTABILITY, SETTING),
             "input_contracts": (CONTRACTS, "DRIFTLINE_INPUT_CONTRACTS")}  # fmt: skip
    return {
        name: path for name, (path, variable) in found.items()
        if path.is_file() and not os.environ.get(variable)
    }  # fmt: skip


def show_golive(
    console: Console, stack: Stack, wait: Callable[[Callable[[], bool], str], None]
) -> None:
    """``wait(check, what)``: the demo's own wait for the store, failing the demo on a timeout."""
    if not EVALUATION_SET.is_file():
        console.print(f"[yellow]no example set at {EVALUATION_SET}: run the demo from the repo")
        return
    assert stack.engine is not None
    evaluation_set = load_set(EVALUATION_SET)
    console.rule(f"golden evaluation set {evaluation_set.name} ({len(evaluation_set.cases)} cases)")
    live = run_set(evaluation_set, CallableTarget(decide, "the loan model"), {})
    changed = run_set(evaluation_set, CallableTarget(decide_changed, "a retrained candidate"), {})
    threshold = load_thresholds(stack.settings.readiness_config or THRESHOLDS).for_version(
        MODEL, VERSION
    )
    assert threshold is not None
    agreed = agreement_payload(
        threshold, version="*", decision_maker=DECISION_MAKER,
        deadline=datetime.now(UTC) + DEFAULT_CLOCK, source=str(THRESHOLDS),
    )  # fmt: skip
    with Driftline(
        service=DEMO_SERVICE, kafka_bootstrap_servers=stack.bootstrap_servers,
        topic=stack.settings.topic, producer_key_file=stack.settings.producer_key_file,
        queue_size=10_000,
    ) as agent:  # fmt: skip
        _record(agent, "evaluation_set_registered", registration(evaluation_set, DEMO_SERVICE,
                str(EVALUATION_SET)))  # fmt: skip
        for run, version in ((live, VERSION), (changed, CHANGED_VERSION)):
            for payload in run.case_payloads(version):
                _record(agent, "evaluation_case_scored", payload)
            _record(agent, "evaluation_completed", run.payload(version, DEMO_SERVICE))
        _record(agent, "thresholds_agreed", agreed)
        agent.flush(timeout_s=30)
        _show_runs(console, live, changed)
        wait(lambda: _stored(stack.engine), "the evaluation runs and the agreement in the store")
        console.print(
            f"[green]✓[/] thresholds agreed by [bold]{DECISION_MAKER}[/] "
            f"(SHA-256 {agreed.sha256[:12]}…), go/no-go due {agreed.deadline:%Y-%m-%d}"
        )
        evaluation = _gate(stack)
        console.print(readiness_table(evaluation))
        agent.record_component(
            "readiness_evaluated", evaluation.payload(DEMO_SERVICE),
            model=_model(VERSION),
        )  # fmt: skip
        recorded = "recorded" if agent.flush(timeout_s=30).ok else "not recorded"
        console.print(f"{verdict_line(evaluation)} ({recorded} as a readiness_evaluated event)")


def _record(agent: Driftline, kind: Any, payload: Any) -> None:
    agent.record_component(kind, payload, model=_model(getattr(payload, "version", "*")))


def _model(version: str) -> ModelRef:
    return ModelRef(name=MODEL, version=version)


def _show_runs(console: Console, live: EvaluationRun, changed: EvaluationRun) -> None:
    table = Table(title=f"pass rate per tag: {VERSION} (live) and {CHANGED_VERSION} (candidate)")
    for column in ("tag", "cases", VERSION, CHANGED_VERSION, "threshold"):
        table.add_column(column, overflow="fold")  # names are never cut
    rates = [
        {(f.metric, f.tag): f for f in run.figures} for run in (live, changed)
    ]  # fmt: skip
    tags = [None, *live.evaluation_set.tags]
    for tag in tags:
        before, after = (r[("pass_rate", tag)] for r in rates)
        bound = ""
        if before.threshold is not None and before.threshold.minimum is not None:
            bound = f"≥ {before.threshold.minimum:g}"
        cells = [_percent(before.value), _percent(after.value)]
        if after.status == "fail":
            cells[1] = f"[red]{cells[1]}[/]"
        table.add_row(escape(tag or "(all)"), str(before.sample), *cells, bound)
    console.print(table)
    for run, version in ((live, VERSION), (changed, CHANGED_VERSION)):
        failed = sorted({f"{f.metric}{f' ({f.tag})' if f.tag else ''}" for f in run.figures
                         if f.status == "fail"})  # fmt: skip
        verdict = (
            "[green]passes[/] the set's thresholds"
            if run.passed
            else f"[red]fails[/] the set's thresholds: {escape(', '.join(failed))}"
        )
        console.print(f"{version} {verdict}")
    comparison = compare(_outcomes(live), _outcomes(changed))
    before_rate, after_rate = comparison.pass_rates()
    assert before_rate is not None and after_rate is not None
    console.print(
        f"regression {VERSION} → {CHANGED_VERSION}: pass rate {before_rate:.1%} → "
        f"{after_rate:.1%}; {len(comparison.newly_failing)} cases newly failing, "
        f"{len(comparison.newly_passing)} newly passing (McNemar p = {comparison.p_value():.2g}):"
    )
    reasons = {r.case.id: r.reason for r in changed.results}
    # The rejection cases it now answers first: the costliest kind of regression.
    worst = sorted(comparison.newly_failing, key=lambda o: "rejection" not in o.tags)
    for outcome in worst[:6]:
        console.print(f"  [red]✗[/] {escape(outcome.case_id)}: {escape(reasons[outcome.case_id])}")
    if len(comparison.newly_failing) > 6:
        console.print(f"  … and {len(comparison.newly_failing) - 6} more")


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _outcomes(run: EvaluationRun) -> list[CaseOutcome]:
    return [CaseOutcome(r.case.id, r.passed, tuple(r.case.tags), r.reason) for r in run.results]


def _stored(engine: Engine | None) -> bool:
    assert engine is not None
    with Session(engine) as session:
        runs = session.exec(select(RunRow.event_id).where(RunRow.model_name == MODEL)).all()
        agreed = session.exec(select(AgreedThresholds.event_id)).first()
    return len(runs) >= 2 and agreed is not None


def _gate(stack: Stack) -> Any:
    assert stack.engine is not None
    settings = stack.settings
    configuration = gate_configuration(settings)
    keys = KeyRing.for_verifying(settings, ())
    producers = trusted_producers(settings)
    with Session(stack.engine) as session:
        agreement = agreement_for(session, MODEL, VERSION)
        assert agreement is not None

        def ledger_intact() -> bool:
            return integrity.verify(session, keys.trusted, producers=producers).intact

        return evaluate(
            session, agreement.threshold, model=MODEL, version=VERSION, now=datetime.now(UTC),
            alerting=configuration.alerting, agreed=Agreed(agreement), ledger_intact=ledger_intact,
            accountability=configuration.accountability,
            contracts=configuration.contract_of(MODEL),
        )  # fmt: skip

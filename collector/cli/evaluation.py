"""``driftline eval``: evaluation sets and runs. ``register`` records a set's SHA-256 in the
ledger; ``run`` asks a target every case of a set, scores them, prints the figures per metric
and tag against the set's thresholds, records each case and the run, and exits 0 when the run
passes (1 when it fails, 2 when it could not run); ``compare`` shows what newly fails between
two runs; ``add-from-production`` grows a set from decisions that feedback or a review
corrected."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
import yaml
from pydantic import ValidationError
from rich.markup import escape
from rich.table import Table
from sqlmodel import Session, select

from driftline.agent import Driftline
from driftline.collector.cli.common import (
    EXIT_FAILED,
    EXIT_UNABLE,
    NAME,
    NOT_RECORDED,
    DatabaseOption,
    KafkaOption,
    console,
    errors,
    fail,
    kafka_servers,
    load_settings,
    progress_bar,
    publish,
    read_store,
    require_producer_key,
    typer_app,
    who_asks,
)
from driftline.collector.core.durations import parse_duration
from driftline.collector.core.logs import configure_logging
from driftline.collector.core.settings import CollectorSettings
from driftline.collector.golive.comparison import Comparison, compare
from driftline.collector.golive.evalruns import EvaluationRun, registration, run_set
from driftline.collector.golive.evalsets import (
    MAX_CASES,
    MAX_TAGS,
    EvaluationSet,
    EvaluationSetError,
    Threshold,
    load_set,
)
from driftline.collector.golive.production import corrected_cases
from driftline.collector.golive.run_history import run_outcomes
from driftline.collector.golive.scorers import build_scorers
from driftline.collector.golive.scoring import RefusalMatcher
from driftline.collector.golive.tables import STYLES
from driftline.collector.golive.targets import (
    CallableTarget,
    HttpTarget,
    RecordedTarget,
    Target,
    TargetError,
    load_entry_point,
)
from driftline.collector.store.models import EvaluationRun as RunRow
from driftline.collector.store.models import EvaluationSet as SetRow

EVAL_SERVICE = "driftline-eval"
eval_app = typer_app("Evaluation sets: the cases that say what working means, and runs of them.")

SetArgument = Annotated[Path, typer.Argument(help="The set's YAML file.")]
AskedBy = Annotated[str | None, typer.Option(help="Who asks; default: the user.")]
NoRecord = Annotated[
    bool, typer.Option("--no-record", help="Do not publish it (then Kafka is not needed).")
]


def _load(path: Path) -> EvaluationSet:
    try:
        return load_set(path)
    except EvaluationSetError as error:
        fail(f"the evaluation set has mistakes:\n{error}")


@eval_app.command("register")
def eval_register(
    set_file: SetArgument,
    registered_by: AskedBy = None,
    database_url: DatabaseOption = None,
    kafka_bootstrap_servers: KafkaOption = None,
) -> None:
    """Record the set and its SHA-256 in the ledger, so that runs and verdicts can name it."""
    settings = load_settings(
        database_url=database_url, kafka_bootstrap_servers=kafka_bootstrap_servers
    )
    configure_logging("warning")
    evaluation_set = _load(set_file)
    payload = registration(evaluation_set, who_asks(registered_by), str(set_file))
    with _agent(settings, kafka_servers(settings), 1) as agent:
        recorded = publish(agent, [("evaluation_set_registered", payload, evaluation_set.model)])
    console.print(
        f"{evaluation_set.name} {evaluation_set.version}: {len(evaluation_set.cases)} cases "
        f"({evaluation_set.rejection_cases} to refuse), SHA-256 {payload.sha256} ({recorded})"
    )


@eval_app.command("run")
def eval_run(
    set_file: SetArgument,
    version: Annotated[str, typer.Option(help="The model version it evaluates.")],
    url: Annotated[str | None, typer.Option(help="An HTTP endpoint to POST each case to.")] = None,
    request: Annotated[
        str, typer.Option(help='The request body, JSON with "{{input}}" placeholders.')
    ] = '"{{input}}"',
    answer: Annotated[
        str, typer.Option(help="Where the answer is in the response: a dotted path.")
    ] = "",
    header: Annotated[
        list[str] | None,
        typer.Option(metavar="<str>", help='A request header, "Name: value"; repeatable.'),
    ] = None,
    call: Annotated[
        str | None, typer.Option("--callable", help="A Python function, module:function.")
    ] = None,
    recorded: Annotated[
        Path | None, typer.Option(help='Answers recorded before: JSONL of {"id", "output"}.')
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Cases at a time, 1 to 256.")] = 8,
    timeout: Annotated[str, typer.Option(help="Per case, e.g. 30s")] = "30s",
    as_json: Annotated[bool, typer.Option("--json", help="Print the run as JSON.")] = False,
    asked_by: AskedBy = None,
    no_record: NoRecord = False,
    database_url: DatabaseOption = None,
    kafka_bootstrap_servers: KafkaOption = None,
) -> None:
    """Run a set against a target (--url, --callable or --recorded); exit 0 if it passes.

    Each case's result and the run's figures are published, signed, as evaluation events,
    with the set's registration if the ledger lacks it, unless --no-record."""
    settings = load_settings(
        database_url=database_url, kafka_bootstrap_servers=kafka_bootstrap_servers
    )
    configure_logging("warning")
    bootstrap_servers = None if no_record else kafka_servers(settings)
    evaluation_set = _load(set_file)
    try:
        NAME.validate_python(version)
    except ValidationError as error:
        fail(f"--version {version!r}: {error.errors(include_url=False)[0]['msg']}")
    registered = True
    if bootstrap_servers is not None:  # what recording needs, known before the run, not after
        asked_by = who_asks(asked_by)
        require_producer_key(settings)
        registered = _registered(settings, evaluation_set.digest())
    if not 1 <= concurrency <= 256:
        fail(f"--concurrency: 1 to 256, not {concurrency}")
    try:
        timeout_s = parse_duration(timeout).total_seconds()
    except ValueError as error:
        fail(f"--timeout: {error}")
    if timeout_s <= 0:
        fail("--timeout: give a time longer than none, e.g. 30s")
    with httpx.Client(timeout=timeout_s) as client:
        try:
            target = _target(client, url, request, answer, header, call, recorded, timeout_s)
            scorers = build_scorers(evaluation_set, client, timeout_s)
        except TargetError as error:
            fail(str(error))
        with progress_bar(disable=as_json) as progress:
            task = progress.add_task(f"{evaluation_set.name}", total=len(evaluation_set.cases))
            run = run_set(
                evaluation_set, target, scorers, concurrency=concurrency,
                progress=lambda _: progress.advance(task),
            )  # fmt: skip
    said = "not recorded (--no-record)"
    if bootstrap_servers is not None:
        said = _record(run, set_file, version, asked_by or "", settings, registered)
    if as_json:
        console.print_json(json.dumps(run.document() | {"recorded": said}))
    else:
        _show_run(run, version, said)
    if bootstrap_servers is not None and said.startswith(NOT_RECORDED):  # nor its verdict
        raise typer.Exit(EXIT_UNABLE)
    raise typer.Exit(0 if run.passed else EXIT_FAILED)


def _target(
    client: httpx.Client,
    url: str | None,
    request: str,
    answer: str,
    headers: list[str] | None,
    call: str | None,
    recorded: Path | None,
    timeout_s: float,
) -> Target:
    if sum(x is not None for x in (url, call, recorded)) != 1:
        fail("give one target: --url, --callable or --recorded")
    if recorded is not None:
        return RecordedTarget.from_file(recorded)
    if call is not None:
        return CallableTarget(load_entry_point(call), f"callable {call}", timeout_s)
    assert url is not None
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as error:
        fail(f"--url {url!r}: not a URL: {error}")
    if parsed.scheme not in ("http", "https") or not parsed.host:
        fail(f"--url {url!r}: give an http:// or https:// URL with a host")
    try:
        template = json.loads(request)
    except ValueError as error:
        fail(f"--request: not JSON: {error}")
    named = {}
    for line in headers or ():
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            fail(f'--header {line!r}: give "Name: value"')
        named[name.strip()] = value.strip()
    return HttpTarget(url, client, template, answer, named, timeout_s)


def _record(
    run: EvaluationRun,
    set_file: Path,
    version: str,
    asked_by: str,
    settings: CollectorSettings,
    registered: bool,
) -> str:
    """Publish the set's registration (unless the ledger has it), each case, then the run."""
    evaluation_set = run.evaluation_set
    model = evaluation_set.model
    events: list[tuple[Any, Any, str]] = []
    if not registered:
        events.append(
            (
                "evaluation_set_registered",
                registration(evaluation_set, asked_by, str(set_file)),
                model,
            )
        )
    events += [("evaluation_case_scored", p, model) for p in run.case_payloads(version)]
    events.append(("evaluation_completed", run.payload(version, asked_by), model))
    assert settings.kafka_bootstrap_servers is not None
    with _agent(settings, settings.kafka_bootstrap_servers, len(events)) as agent:
        return publish(agent, events)


def _registered(settings: CollectorSettings, sha256: str) -> bool:
    with Session(read_store(settings)) as session:
        found = session.exec(select(SetRow.event_id).where(SetRow.sha256 == sha256)).first()
    return found is not None


def _agent(settings: CollectorSettings, bootstrap_servers: str, events: int) -> Driftline:
    return Driftline(
        service=EVAL_SERVICE, kafka_bootstrap_servers=bootstrap_servers, topic=settings.topic,
        producer_key_file=require_producer_key(settings), queue_size=max(10_000, events + 100),
    )  # fmt: skip


def _bound(threshold: Threshold) -> str:
    low, high = threshold.minimum, threshold.maximum
    parts = ([f"≥ {low:g}"] if low is not None else []) + (
        [f"≤ {high:g}"] if high is not None else []
    )
    return ", ".join(parts)


def _show_run(run: EvaluationRun, version: str, recorded: str) -> None:
    evaluation_set = run.evaluation_set
    table = Table(
        title=escape(
            f"{evaluation_set.name} {evaluation_set.version} against "
            f"{evaluation_set.model} {version} ({run.target})"
        )
    )
    for column in ("metric", "tag", "value", "cases", "threshold", "result"):
        table.add_column(column, overflow="fold")  # names are never cut
    # Every figure of the whole set, each bounded one, and each tag's pass rate: --json has all.
    shown = [
        f for f in run.figures
        if f.tag is None or f.threshold is not None or f.metric == "pass_rate"
    ]  # fmt: skip
    for f in shown:
        bound = _bound(f.threshold) if f.threshold is not None else ""
        value = "—" if f.value is None else f"{f.value:.3f}".rstrip("0").rstrip(".") or "0"
        result = f"[{STYLES[f.status]}]{f.status}[/]" if f.status else ""
        table.add_row(
            escape(f.metric), escape(f.tag or "(all)"), value, str(f.sample), bound, result
        )
    console.print(table)
    failed = [r for r in run.results if not r.passed]
    for r in failed[:20]:
        console.print(
            f"  [red]✗[/] {_case_line(r.case.id, r.case.tags, r.reason)}", highlight=False
        )
    if len(failed) > 20:
        console.print(f"  … and {len(failed) - 20} more failed cases")
    outcome = "[bold green]passed[/]" if run.passed else "[bold red]FAILED[/]"
    console.print(f"run {run.run_id}: {outcome} ({recorded})")


def _case_line(case_id: str, tags: Sequence[str], reason: str) -> str:
    """A case as a line of rich text: its id, tags and reason, none of them read as markup."""
    shown = f" ({', '.join(tags)})" if tags else ""
    return escape(f"{case_id}{shown}: {reason}")


@eval_app.command("compare")
def eval_compare(
    before: Annotated[str, typer.Argument(help="The earlier run's id.")],
    after: Annotated[str, typer.Argument(help="The later run's id.")],
    max_drop: Annotated[
        float, typer.Option(min=0, max=1, help="A fall in pass rate tolerated, e.g. 0.02.")
    ] = 0.0,
    alpha: Annotated[float, typer.Option(min=0, max=1, help="The test's significance.")] = 0.05,
    different_sets: Annotated[
        bool,
        typer.Option("--allow-different-sets", help="Compare runs of sets whose cases differ."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
    database_url: DatabaseOption = None,
) -> None:
    """What newly fails in the later run, case by case, and whether the fall in pass rate is
    more than chance (McNemar's exact test); exit 1 when it regressed.

    Runs of sets with different SHA-256s are refused unless --allow-different-sets: a change
    of the expected answers is not a change of the model."""
    settings = load_settings(database_url=database_url)
    configure_logging("warning")
    with Session(read_store(settings)) as session:
        runs = [_run_row(session, run_id) for run_id in (before, after)]
        if runs[0].set_sha256 != runs[1].set_sha256:
            said = (
                f"the runs are of different sets: {runs[0].set_name} {runs[0].set_version} "
                f"({runs[0].set_sha256[:12]}), {runs[1].set_name} {runs[1].set_version} "
                f"({runs[1].set_sha256[:12]})"
            )
            if not different_sets:
                fail(f"{said}; give --allow-different-sets to compare their common cases")
            errors.print(f"[yellow]{escape(said)}; only the cases of both are compared")
        comparison = compare(*(run_outcomes(session, row.run_id) for row in runs))
    regressed = comparison.regressed(alpha=alpha, max_drop=max_drop)
    rate_before, rate_after = comparison.pass_rates()
    if as_json:
        console.print_json(json.dumps({
            "before": str(runs[0].run_id), "after": str(runs[1].run_id),
            "cases": len(comparison.shared), "only_before": comparison.only_before,
            "only_after": comparison.only_after, "pass_rate_before": rate_before,
            "pass_rate_after": rate_after, "p_value": comparison.p_value(),
            "newly_failing": [o.case_id for o in comparison.newly_failing],
            "newly_passing": [o.case_id for o in comparison.newly_passing],
            "regressed": regressed,
        }))  # fmt: skip
    else:
        _show_comparison(comparison, runs, regressed)
    raise typer.Exit(EXIT_FAILED if regressed else 0)


def _run_row(session: Session, run_id: str) -> RunRow:
    try:
        wanted = uuid.UUID(run_id)
    except ValueError:
        fail(f"{run_id!r} is not a run id")
    row = session.exec(select(RunRow).where(RunRow.run_id == wanted)).first()
    if row is None:
        fail(f"no evaluation run {run_id} in the store")
    return row


def _show_comparison(comparison: Comparison, runs: list[RunRow], regressed: bool) -> None:
    before, after = comparison.pass_rates()
    shown = [f"{r.model_name} {r.model_version} ({str(r.run_id)[:8]})" for r in runs]
    console.print(
        f"{runs[0].set_name}: {shown[0]} → {shown[1]}, {len(comparison.shared)} cases in both"
    )
    if before is not None and after is not None:
        console.print(
            f"pass rate {before:.1%} → {after:.1%}; "
            f"p = {comparison.p_value():.3g} (McNemar's exact test, one-sided)"
        )
    table = Table(title="per tag")
    for column in ("tag", "cases", "newly failing", "newly passing"):
        table.add_column(column, overflow="fold")  # names are never cut
    for tag, (n, worse, better) in comparison.by_tag().items():
        table.add_row(escape(tag), str(n), f"[red]{worse}[/]" if worse else "0", str(better))
    console.print(table)
    for outcome in comparison.newly_failing:
        console.print(
            f"  [red]newly failing[/] {_case_line(outcome.case_id, outcome.tags, outcome.reason)}",
            highlight=False,
        )
    verdict = "[bold red]regressed[/]" if regressed else "[bold green]no regression[/]"
    console.print(verdict)


@eval_app.command("add-from-production")
def eval_add_from_production(
    set_file: SetArgument,
    version: Annotated[
        str | None, typer.Option(help="Only this model version's decisions.")
    ] = None,
    since: Annotated[str | None, typer.Option(help="Only decisions this recent, e.g. 30d.")] = None,
    tag: Annotated[str, typer.Option(help="The new cases' tag.")] = "from-production",
    out: Annotated[
        Path | None, typer.Option(help="The JSONL file to add to; default: the set's cases_file.")
    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Turn decisions that feedback marked wrong, or that a review overrode, into cases.

    The corrected output becomes the expected one, with the inputs as redacted, a tag and
    the decision's id; decisions already in the set, or whose inputs were erased, are left."""
    settings = load_settings(database_url=database_url)
    configure_logging("warning")
    evaluation_set = _load(set_file)
    target = out or _cases_file(set_file)
    window = None
    if since is not None:
        try:
            window = parse_duration(since)
        except ValueError as error:
            fail(f"--since: {error}")
    existing = _read_text(target)
    known = {case.decision_id for case in evaluation_set.cases if case.decision_id}
    known |= {case.id for case in evaluation_set.cases} | _ids_in(existing)
    with Session(read_store(settings)) as session:
        try:
            cases = corrected_cases(
                session, model=evaluation_set.model, version=version, window=window, tag=tag,
                known=known, refuses=RefusalMatcher(evaluation_set.refusal),
            )  # fmt: skip
        except ValueError as error:
            fail(f"--tag: {error}")
    tags = set(evaluation_set.tags) | {tag}
    if len(evaluation_set.cases) + len(cases) > MAX_CASES or len(tags) > MAX_TAGS:
        fail(f"the set would hold more than {MAX_CASES:,} cases or {MAX_TAGS} tags")
    lines = [json.dumps(case, ensure_ascii=False, sort_keys=True) for case in cases]
    if lines:  # written whole or not at all: a set never half grown
        joined = existing + ("\n" if existing and not existing.endswith("\n") else "")
        partial = target.with_name(f".{target.name}.partial")
        partial.write_text(joined + "\n".join(lines) + "\n", encoding="utf-8")
        os.replace(partial, target)
    console.print(f"{len(cases)} cases added to {target} from production corrections")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeDecodeError) as error:
        fail(f"{path}: cannot read: {error}")


def _ids_in(text: str) -> set[str]:
    """The case ids (and decision ids) a JSONL file holds already, read leniently: a line that
    is not a case names none."""
    found: set[str] = set()
    for line in text.split("\n"):
        try:
            case = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(case, dict):
            found |= {
                v for k, v in case.items() if k in ("id", "decision_id") and isinstance(v, str)
            }
    return found


def _cases_file(set_file: Path) -> Path:
    document = yaml.safe_load(set_file.read_text(encoding="utf-8"))
    name = document.get("cases_file") if isinstance(document, dict) else None
    if not isinstance(name, str) or not name.endswith(".jsonl"):
        fail(
            f"{set_file} keeps its cases inline: give --out, a JSONL file (and name it as the "
            "set's cases_file)"
        )
    return set_file.parent / name

"""Evaluation runs against real targets: a model behind HTTP on loopback (slow, failing and
nonsense answers included), a Python callable, answers recorded before; and the ``driftline
eval`` commands end to end through the embedded broker and a collector, the shipped example
set against the demo's model and a changed one."""

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlmodel import Session, select

from driftline.collector.golive.comparison import CaseOutcome, compare
from driftline.collector.golive.evalruns import run_set
from driftline.collector.golive.evalsets import Case, EvaluationSet, load_set
from driftline.collector.golive.scoring import Answer
from driftline.collector.golive.targets import (
    CallableTarget,
    HttpTarget,
    RecordedTarget,
    TargetError,
    fill,
)
from driftline.collector.runtime.broker import EmbeddedBroker
from driftline.collector.runtime.simulation import decide
from driftline.collector.store.models import EvaluationCase, EvaluationRun
from driftline.collector.store.models import EvaluationSet as SetRow
from tests.strategies import json_values
from tests.waiting import wait_for

EXAMPLE = Path(__file__).parents[2] / "deploy/config/examples/loan-desk-eval.yaml"


@contextmanager
def model_server() -> Iterator[tuple[str, list[Any]]]:
    """The demo's model behind HTTP: ``{"application": ...}`` in, ``{"result": {"label"}}``
    out; an income of 500 is slow, 501 fails, 502 answers without a label."""
    seen: list[Any] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append(body)
            application = body.get("application")
            income = application.get("income") if isinstance(application, dict) else None
            if income == 500:
                time.sleep(2)
            status, answer = 200, {"result": {"label": decide(application)}}
            if income == 501:
                status, answer = 500, {"error": "model crashed"}
            if income == 502:
                answer = {"result": {}}
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/decide", seen
    finally:
        server.shutdown()
        server.server_close()


def cases_of(*documents: dict[str, Any]) -> EvaluationSet:
    return EvaluationSet(
        name="s", version="1", model="credit-risk", refusal={"outputs": ["refer"]},
        cases=[Case.model_validate(d) for d in documents],
    )  # fmt: skip


APPLICANT = {"income": 90_000, "age": 40, "debt_ratio": 0.1, "employment_years": 9,
             "region": "north"}  # fmt: skip


def test_an_http_target_answers_and_a_slow_failing_or_empty_one_fails_its_case_only() -> None:
    evaluation_set = cases_of(
        {"id": "ok", "input": APPLICANT, "expected": {"exact": "approve"}},
        {"id": "slow", "input": APPLICANT | {"income": 500}, "expected": {"exact": "decline"}},
        {"id": "crash", "input": APPLICANT | {"income": 501}, "expected": {"exact": "x"}},
        {"id": "empty", "input": APPLICANT | {"income": 502}, "expected": {"exact": "x"}},
        {"id": "refused", "input": {"income": -1}, "must_refuse": True},
    )
    with model_server() as (url, seen), httpx.Client() as client:
        target = HttpTarget(
            url, client, {"application": "{{input}}", "case": "{{case_id}}"},
            "result.label", {"X-Driftline": "eval"}, timeout_s=0.5,
        )  # fmt: skip
        run = run_set(evaluation_set, target, {}, concurrency=4)
    outcome = {r.case.id: (r.passed, r.reason) for r in run.results}
    assert outcome["ok"] == (True, "")
    assert outcome["slow"] == (False, "timed out after 0.5 s")
    assert outcome["crash"][0] is False and outcome["crash"][1].startswith("HTTP 500")
    assert outcome["empty"] == (False, "the response has nothing at 'result.label'")
    assert outcome["refused"] == (True, "")
    assert {body["case"] for body in seen} == {"ok", "slow", "crash", "empty", "refused"}
    assert next(b for b in seen if b["case"] == "ok")["application"] == APPLICANT
    assert run.errors == 3 and not run.passed  # a set stating no thresholds: every case must pass
    found = {(f.metric, f.tag): f.value for f in run.figures}
    assert found[("error_rate", None)] == 3 / 5


@settings(max_examples=50, deadline=None)
@given(json_values)
def test_a_template_carries_any_input_exactly_whatever_its_quotes_or_braces(value: Any) -> None:
    """Placeholders are replaced in the parsed template, so no input breaks out of it."""
    one = Case.model_validate({"id": 'quote"}{{input}}', "input": value, "expected": {"exact": 1}})
    body = fill({"x": "{{input}}", "s": "id={{case_id}}", "n": [1, "{{ input }}"]}, one)
    assert body == {"x": value, "s": 'id=quote"}{{input}}', "n": [1, value]}
    assert json.loads(json.dumps(body)) == body


def test_a_template_asking_for_a_missing_field_fails_that_case() -> None:
    evaluation_set = cases_of({"id": "a", "input": {"b": 1}, "expected": {"exact": 1}})
    with httpx.Client() as client:
        run = run_set(evaluation_set, HttpTarget("http://127.0.0.1:9/", client, "{{input.c}}"), {})
    assert "asks for {{input.c}}, which the input lacks" in run.results[0].reason


def test_a_callable_that_raises_or_hangs_fails_its_case_and_the_run_goes_on() -> None:
    def model(application: Any) -> str:
        if application == "raise":
            raise KeyError("income")
        if application == "hang":
            time.sleep(3)
        return "approve"

    evaluation_set = cases_of(
        {"id": "a", "input": "fine", "expected": {"exact": "approve"}},
        {"id": "b", "input": "raise", "expected": {"exact": "approve"}},
        {"id": "c", "input": "hang", "expected": {"exact": "approve"}},
    )
    started = time.monotonic()
    run = run_set(evaluation_set, CallableTarget(model, "model", timeout_s=0.3), {})
    assert time.monotonic() - started < 2.5
    assert [r.reason for r in run.results] == [
        "", "raised KeyError: 'income'", "timed out after 0.3 s",
    ]  # fmt: skip


def test_recorded_answers_are_scored_and_a_bad_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "answers.jsonl"
    path.write_text('{"id": "a", "output": "approve", "latency_ms": 4}\n\n')
    evaluation_set = cases_of(
        {"id": "a", "input": 1, "expected": {"exact": "approve"}},
        {"id": "b", "input": 2, "expected": {"exact": "approve"}},
    )
    run = run_set(evaluation_set, RecordedTarget.from_file(path), {})
    assert [(r.passed, r.reason) for r in run.results] == [
        (True, ""), (False, "no recorded answer for this case"),
    ]  # fmt: skip
    for text, error in [
        ('{"id": "a"}\n', "answers.jsonl:1: give"),
        ('{"id": "a", "output": 1}\n{"id": "a", "output": 2}\n', ":2: 'a' is recorded twice"),
        ('{"id": "a", "output": 1, "latency_ms": -1}\n', "latency_ms is a number"),
        ("[1,\n", "answers.jsonl:1: not JSON"),
    ]:
        path.write_text(text)
        with pytest.raises(TargetError, match=error):
            RecordedTarget.from_file(path)


def test_recorded_outputs_keep_no_nul_or_lone_surrogate_and_are_cut_to_fit() -> None:
    evaluation_set = cases_of({"id": "a", "input": 1, "expected": {"exact": "x"}})
    answers = RecordedTarget({"a": Answer("nul\x00 \ud800" + "y" * 10_000, 1.0)}, "answers")
    (payload,) = run_set(evaluation_set, answers, {}).case_payloads("1")
    assert payload.output is not None and len(payload.output) == 4_000
    assert "\x00" not in payload.output and "\ud800" not in payload.output
    payload.model_dump_json()  # it serialises: UTF-8 can carry it


@given(st.lists(st.tuples(st.booleans(), st.booleans()), max_size=60))
def test_the_comparison_counts_every_changed_case_once(pairs: list[tuple[bool, bool]]) -> None:
    before = [CaseOutcome(f"c{n}", a) for n, (a, _) in enumerate(pairs)]
    after = [CaseOutcome(f"c{n}", b) for n, (_, b) in enumerate(pairs)]
    comparison = compare(before, after)
    assert len(comparison.newly_failing) == sum(a and not b for a, b in pairs)
    assert len(comparison.newly_passing) == sum(b and not a for a, b in pairs)
    assert 0.0 <= comparison.p_value() <= 1.0
    if not any(a and not b for a, b in pairs):
        assert not comparison.regressed()


def test_a_clear_regression_is_significant_and_a_single_flip_is_not() -> None:
    same = [CaseOutcome(f"s{n}", True) for n in range(100)]
    worse = [CaseOutcome(f"w{n}", True) for n in range(10)]
    assert compare(same + worse, same + [CaseOutcome(o.case_id, False) for o in worse]).regressed()
    one = [CaseOutcome("w0", False)]
    assert not compare(same + worse[:1], same + one).regressed()


def eval_command(*args: str, topic: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "driftline", "eval", *args],
        env=os.environ | {"DRIFTLINE_TOPIC": topic} | env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip


def test_the_example_set_passes_the_demo_model_records_the_run_and_catches_a_changed_one(
    broker: EmbeddedBroker,
    topic: str,
    database_url: str,
    engine: Engine,
    run_collector: Callable[[], None],
) -> None:
    run_collector()
    where = ["--database-url", database_url, "--kafka-bootstrap-servers", broker.bootstrap_servers]
    model = "driftline.collector.runtime.simulation:"
    ran = eval_command(
        "run", str(EXAMPLE), "--version", "3.1.0", "--callable", model + "decide", "--json",
        *where, topic=topic,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    first = json.loads(ran.stdout)
    assert first["passed"] and first["cases"] == 150
    assert "evaluation_set_registered" in first["recorded"]
    changed = eval_command(
        "run", str(EXAMPLE), "--version", "3.2.0", "--callable", model + "decide_changed",
        *where, topic=topic,
    )  # fmt: skip
    assert changed.returncode == 1, changed.stdout + changed.stderr
    assert "FAILED" in changed.stdout and "high-debt" in changed.stdout
    assert "reject-05-debt-over-income (rejection): answered a case it must refuse" in (
        changed.stdout
    )

    def stored() -> list[EvaluationRun]:
        with Session(engine) as session:
            return list(session.exec(select(EvaluationRun)).all())

    runs = wait_for(stored, lambda rows: len(rows) == 2, what="both runs in the store")
    with Session(engine) as session:
        assert len(session.exec(select(EvaluationCase)).all()) == 300
        (registered,) = session.exec(select(SetRow)).all()  # once, though run twice
    assert registered.sha256 == load_set(EXAMPLE).digest() == first["set_sha256"]
    by_version = {r.model_version: r for r in runs}
    assert by_version["3.1.0"].passed and not by_version["3.2.0"].passed
    compared = eval_command(
        "compare", str(by_version["3.1.0"].run_id), str(by_version["3.2.0"].run_id), "--json",
        "--database-url", database_url, topic=topic,
    )  # fmt: skip
    assert compared.returncode == 1, compared.stdout + compared.stderr
    comparison = json.loads(compared.stdout)
    assert comparison["regressed"] and comparison["p_value"] < 0.01
    assert "reject-05-debt-over-income" in comparison["newly_failing"]
    assert comparison["newly_passing"] == [] or len(comparison["newly_passing"]) < 5


def test_eval_without_kafka_runs_with_no_record_and_says_what_is_wrong(
    tmp_path: Path, topic: str
) -> None:
    ran = eval_command(
        "run", str(EXAMPLE), "--version", "3.1.0", "--no-record", "--json",
        "--callable", "driftline.collector.runtime.simulation:decide", topic=topic,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["recorded"] == "not recorded (--no-record)"
    broken = tmp_path / "set.yaml"
    broken.write_text(EXAMPLE.read_text().replace("minimum: 0.93", "minimum: lots"))
    ran = eval_command("run", str(broken), "--version", "1", "--no-record", "--callable",
                       "json:loads", topic=topic)  # fmt: skip
    assert ran.returncode == 2 and f"{broken}:14: thresholds[0].minimum" in ran.stderr
    ran = eval_command("run", str(EXAMPLE), "--version", "1", "--no-record", "--callable",
                       "no_such_module:f", topic=topic)  # fmt: skip
    assert ran.returncode == 2 and "'no_such_module:f' cannot be loaded" in ran.stderr
    ran = eval_command("run", str(EXAMPLE), "--version", "1", "--callable", "json:loads",
                       topic=topic, DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS="")  # fmt: skip
    assert ran.returncode == 2 and "DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS" in ran.stderr


def test_an_endpoint_is_recorded_without_its_credentials_or_query() -> None:
    with httpx.Client() as client:
        target = HttpTarget("https://bob:secret@model.internal:8443/v1/score?api_key=abc", client)
        assert target.description == "POST https://model.internal:8443/v1/score"

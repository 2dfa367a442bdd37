"""Evaluation sets and runs under hostile input: sets at their limits, NUL, lone surrogates and
other odd text in ids, tags, inputs and answers, quoting tricks in JSONL, CSV and YAML, numbers
at the extremes, targets and judges that answer nonsense, trickle or never stop, scorers of the
user's own loaded from a module on the path, figures that must fit one event, McNemar's test
at its edges, and growing a set from a real store's decisions, feedback and reviews."""

import json
import math
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final

import httpx
import numpy as np
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from driftline.agent.contract import (
    ModelRef,
    component_event,
    encode,
    wire_bytes,
)
from driftline.collector.consume.ingest import RawMessage, write_batch
from driftline.collector.golive.comparison import CaseOutcome, compare
from driftline.collector.golive.evalruns import EvaluationRun, registration, run_set
from driftline.collector.golive.evalsets import (
    MAX_CASES,
    Case,
    EvaluationSet,
    EvaluationSetError,
    load_set,
)
from driftline.collector.golive.production import corrected_cases
from driftline.collector.golive.scorers import build_scorers
from driftline.collector.golive.scoring import (
    Answer,
    CaseScorer,
    RefusalMatcher,
    figures,
    normalised,
    score_case,
)
from driftline.collector.golive.targets import (
    CallableTarget,
    HttpTarget,
    RecordedTarget,
    TargetError,
    fill,
    load_entry_point,
    pick,
)
from driftline.collector.store.database import make_engine, migrate
from driftline.collector.store.ledger import TOMBSTONE
from driftline.collector.store.models import Decision
from tests import events

HEADER = 'name: hostile\nversion: "1"\nmodel: credit-risk\nrefusal: {outputs: [refer]}\n'
CASE_EVENT: Final = "evaluation_case_scored"


def write_set(directory: Path, cases_file: str, content: str | bytes, extra: str = "") -> Path:
    path = directory / cases_file
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_bytes(content.encode("utf-8", "surrogatepass"))
    (directory / "set.yaml").write_text(HEADER + extra + f"cases_file: {cases_file}\n")
    return directory / "set.yaml"


def problems_of(path: Path) -> str:
    with pytest.raises(EvaluationSetError) as raised:
        load_set(path)
    return str(raised.value)


def a_set(*documents: dict[str, Any], **more: Any) -> EvaluationSet:
    return EvaluationSet(
        name="s", version="1", model="credit-risk", refusal={"outputs": ["refer"]},
        cases=[Case.model_validate(d) for d in documents], **more,
    )  # fmt: skip


def storable(run: EvaluationRun) -> None:
    """Every event of the run as the agent would send it: under 512 KiB, no NUL, UTF-8."""
    model = ModelRef(name=run.evaluation_set.model, version="1")
    for payload in run.case_payloads("1"):
        wire_bytes(component_event(CASE_EVENT, payload, service="t", model=model))
    wire_bytes(
        component_event("evaluation_completed", run.payload("1", "t"), service="t", model=model)
    )
    star = ModelRef(name=run.evaluation_set.model, version="*")
    registered = registration(run.evaluation_set, "t", "set.yaml")
    wire_bytes(component_event("evaluation_set_registered", registered, service="t", model=star))


# --- the set file ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"id": "a\\u0000b", "input": 1, "expected": {"exact": 1}}', "id: Value error, holds"),
        ('{"id": "a", "input": 1, "expected": {"exact": 1}, "tags": ["t\\u0000"]}', "tags[0]"),
        ('{"id": "a\\ud800", "input": 1, "expected": {"exact": 1}}', "id:"),
        ('{"id": "a", "input": "\\udfff", "expected": {"exact": 1}}', "lone surrogate"),
        ('{"id": "a", "input": {"k": [NaN]}, "expected": {"exact": 1}}', "nan is not a JSON"),
        ('{"id": "a", "input": 1, "expected": {"exact": Infinity}}', "inf is not a JSON number"),
        ('{"id": "a", "input": 1e400, "expected": {"exact": 1}}', "inf is not a JSON number"),
        ('{"id": "a", "input": 1, "expected": {"any_of": [1, -Infinity]}}', "-inf is not"),
    ],
)
def test_text_no_event_or_store_can_carry_is_named_at_load(
    tmp_path: Path, line: str, expected: str
) -> None:
    """A NUL in an id refused the case's event (PostgreSQL stores none); a NaN made the set's
    digest raise, and with it the whole run; a lone surrogate broke every HTTP request."""
    text = problems_of(write_set(tmp_path, "cases.jsonl", '{"id": "ok", "input": 1, '
                                 '"expected": {"exact": 1}}\n' + line + "\n"))  # fmt: skip
    assert "cases.jsonl:2:" in text and expected in text, text


def test_a_nan_input_in_yaml_is_named_not_a_crash_of_the_run(tmp_path: Path) -> None:
    path = tmp_path / "set.yaml"
    path.write_text(HEADER + "cases:\n  - {id: a, input: .nan, expected: {exact: 1}}\n")
    assert f"{path}:6: cases[0].input: Value error, nan is not a JSON number" in problems_of(path)


def test_odd_but_storable_unicode_loads_runs_and_records(tmp_path: Path) -> None:
    """U+2028 (a line break to splitlines), right-to-left text and combining marks are text
    like any other: in ids, tags, inputs and answers they load, match and are recorded."""
    odd = "ق\u200fم\u2028e\u0301\u202e"
    lines = [
        {"id": f"rtl-{odd}", "input": {odd: odd}, "expected": {"exact": odd}, "tags": [odd]},
        {"id": "norm", "input": 1, "expected": {"exact": "Café", "normalise": True}},
    ]
    text = "\r\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\r\n"
    evaluation_set = load_set(write_set(tmp_path, "cases.jsonl", "\ufeff" + text))
    assert [c.id for c in evaluation_set.cases] == [f"rtl-{odd}", "norm"]
    # "cafe" and a right-to-left mark, which is invisible, for "Café" compared normalised.
    run = run_set(
        evaluation_set, CallableTarget(lambda x: "cafe\u200f" if x == 1 else odd, "c"), {}
    )
    assert [r.reason for r in run.results] == ["", ""]
    storable(run)
    assert normalised("a\u200bb\ufeff") == "ab"


def test_a_byte_order_mark_crlf_and_multiline_cells_in_csv(tmp_path: Path) -> None:
    """Spreadsheets write a BOM: it was read as part of the first column's name. A quoted cell
    spanning lines keeps its CRLF, and a mistake after it is named at its record's first line."""
    content = '\ufeffid,input,exact,tags\r\na,1,"two\r\nlines",x\r\nb,"{""k"": 1}",yes,y;z\r\n'
    evaluation_set = load_set(write_set(tmp_path, "cases.csv", content))
    first, second = evaluation_set.cases
    assert first.expected is not None and first.expected.exact == "two\r\nlines"
    assert second.input == {"k": 1} and second.tags == ["y", "z"]
    content = 'id,input,exact\r\na,1,"multi\r\nline"\r\nb,"{bad",x\r\n'
    assert "cases.csv:4: input: not JSON" in problems_of(write_set(tmp_path, "cases.csv", content))


def test_a_csv_row_with_more_cells_than_columns_is_an_error_not_lost_text(tmp_path: Path) -> None:
    """An unquoted comma ("yes, sir") made a cell more: csv.DictReader put it under the key
    None and the loader dropped it, with the tag after it, without a word."""
    content = "id,input,exact,tags\na,1,yes, sir,polite\n"
    text = problems_of(write_set(tmp_path, "cases.csv", content))
    assert "cases.csv:2: 1 more cells than the 4 columns" in text
    content = "id,input,exact,exact\na,1,x,y\n"
    assert "named twice" in problems_of(write_set(tmp_path, "cases.csv", content))


def test_a_key_written_twice_is_an_error_in_jsonl_csv_and_yaml(tmp_path: Path) -> None:
    """json and YAML keep the last of a key written twice: a case's second expected answer
    replaced its first, silently."""
    line = '{"id": "a", "input": 1, "expected": {"exact": "approve"}, "expected": {"exact": 2}}'
    assert "cases.jsonl:1: not a JSON object: the key 'expected' is written twice" in (
        problems_of(write_set(tmp_path, "cases.jsonl", line + "\n"))
    )
    path = tmp_path / "inline.yaml"
    path.write_text(
        HEADER + "cases:\n  - id: a\n    input: 1\n    expected: {exact: approve}\n"
        "    expected: {exact: decline}\n"
    )
    assert f"{path}:9: 'expected' is written twice" in problems_of(path)


def test_two_thresholds_on_one_figure_are_an_error_not_one_dropped(tmp_path: Path) -> None:
    """``figures`` kept the last threshold of a (metric, tag): a minimum of 0.95 and then a
    maximum of 1.0 let a run at 0.9 pass."""
    evaluation_set = a_set(
        *[{"id": f"c{n}", "input": n, "expected": {"exact": "x"}} for n in range(10)],
        thresholds=[{"metric": "pass_rate", "minimum": 0.95},
                    {"metric": "pass_rate", "maximum": 1.0}],
    )  # fmt: skip
    run = run_set(evaluation_set, CallableTarget(lambda n: "x" if n else "y", "c"), {})
    assert not run.passed  # both bounds are judged, whatever the file says
    cases = "".join(
        json.dumps({"id": f"c{n}", "input": n, "expected": {"exact": "x"}}) + "\n" for n in range(3)
    )
    extra = ("thresholds:\n  - {metric: pass_rate, minimum: 0.95}\n"
             "  - {metric: pass_rate, maximum: 1.0}\n")  # fmt: skip
    text = problems_of(write_set(tmp_path, "cases.jsonl", cases, extra))
    assert "set.yaml:7: thresholds[1].metric: thresholds[0] bounds this figure already" in text


def test_a_threshold_on_a_class_no_case_has_is_an_error_not_a_run_that_always_fails(
    tmp_path: Path,
) -> None:
    """``recall:declin`` (a typo) had no data in any run: every run failed, for ever."""
    cases = "".join(
        json.dumps({"id": f"c{n}", "input": n, "expected": {"exact": v}}) + "\n"
        for n, v in enumerate(["approve", "decline"])
    )
    extra = "thresholds:\n  - {metric: recall:declin, minimum: 0.9}\n"
    text = problems_of(write_set(tmp_path, "cases.jsonl", cases, extra))
    assert "thresholds[0].metric: no case's exact answer is 'declin'" in text
    extra = "thresholds:\n  - {metric: score:similarity, minimum: 0.9}\n"
    assert "no case has a reference answer" in problems_of(
        write_set(tmp_path, "cases.jsonl", cases, extra)
    )


def test_two_hundred_thresholds_and_rejection_cases_fit_the_registration_event(
    tmp_path: Path,
) -> None:
    """200 thresholds are allowed; rejection cases add a refusal_recall one; the registration
    event carries at most 200: registering such a set raised ValidationError."""
    classes = [f"k{n}" for n in range(50)]
    lines = "".join(
        json.dumps({"id": f"c{n}", "input": n, "expected": {"exact": k}, "tags": [f"t{n % 25}"]})
        + "\n"
        for n, k in enumerate(classes)
    )
    bounds = [f"  - {{metric: {kind}:{k}, minimum: 0.5}}\n" for kind in ("recall", "precision")
              for k in classes]  # fmt: skip
    for metric in ("pass_rate", "error_rate", "over_refusal", "accuracy"):
        bounds += [f"  - {{metric: {metric}, tag: t{n}, maximum: 0.9}}\n" for n in range(25)]
    assert len(bounds) == 200
    thresholds = "thresholds:\n" + "".join(bounds)
    evaluation_set = load_set(write_set(tmp_path, "cases.jsonl", lines, thresholds))
    assert len(registration(evaluation_set, "t", "set.yaml").thresholds) == 200
    rejection = lines + '{"id": "r", "input": 1, "must_refuse": true}\n'
    text = problems_of(write_set(tmp_path, "cases.jsonl", rejection, thresholds))
    assert "over 200 thresholds with the refusal_recall one the rejection cases imply" in text


def test_a_set_at_its_limits_loads_and_one_over_them_is_named(tmp_path: Path) -> None:
    tags = [f"tag-{n:03d}" for n in range(150)]
    lines = [
        json.dumps({"id": f"c{n:05d}", "input": {"n": n}, "expected": {"exact": "approve"},
                    "tags": [tags[n % 150], tags[(n * 7) % 150]]})
        for n in range(MAX_CASES)
    ]  # fmt: skip
    started = time.monotonic()
    evaluation_set = load_set(write_set(tmp_path, "cases.jsonl", "\n".join(lines) + "\n"))
    assert len(evaluation_set.cases) == MAX_CASES and len(evaluation_set.tags) == 150
    assert time.monotonic() - started < 60
    over = "\n".join([*lines, lines[0].replace("c00000", "c99999")])
    assert "10,001 cases, over the limit of 10,000" in problems_of(
        write_set(tmp_path, "cases.jsonl", over)
    )
    one_more = [*lines[:-1], lines[-1].replace('"tags": [', '"tags": ["tag-new", ')]
    assert "151 tags, over the limit of 150" in problems_of(
        write_set(tmp_path, "cases.jsonl", "\n".join(one_more))
    )
    too_many = json.dumps({"id": "a", "input": 1, "expected": {"exact": 1},
                           "tags": [f"t{n}" for n in range(21)]})  # fmt: skip
    assert "tags: List should have at most 20 items" in problems_of(
        write_set(tmp_path, "cases.jsonl", too_many)
    )


def test_numbers_at_the_extremes(tmp_path: Path) -> None:
    lines = [
        {"id": "big", "input": 10**30, "expected": {"number": 1e308, "tolerance": 1e308}},
        {"id": "neg-zero", "input": 0, "expected": {"exact": -0.0}},
        {"id": "huge-int", "input": 2**200, "expected": {"exact": 2**200}},
        {"id": "nan-text", "input": 1, "expected": {"number": 1.0}},
    ]
    evaluation_set = load_set(write_set(
        tmp_path, "cases.jsonl", "\n".join(json.dumps(x) for x in lines)
    ))  # fmt: skip
    answers = {10**30: 0.0, 0: 0, 2**200: 2**200, 1: "NaN"}  # |0 - 1e308| is the tolerance
    run = run_set(evaluation_set, CallableTarget(lambda x: answers[x], "c"), {})
    assert [r.passed for r in run.results] == [True, True, True, False]
    assert run.results[3].reason == 'answered "NaN", expected 1 ± 0'  # "NaN" as text is no number
    storable(run)
    line = '{"id": "a", "input": 1, "expected": {"exact": 1}}'
    digits = line.replace('"input": 1', '"input": ' + "9" * 5000)
    assert "cases.jsonl:1: not a JSON object" in problems_of(
        write_set(tmp_path, "cases.jsonl", digits)
    )


# --- scoring answers nothing can read ------------------------------------------------------


def test_answers_nothing_can_read_fail_their_case_and_the_run_goes_on() -> None:
    """Each of these raised out of ``run_set`` and ended the whole run (exit 1, a "fail", with
    a traceback): numpy's int64 or a set under a regex or reference, a lone surrogate under
    RE2, a JSON Schema whose $ref resolves nowhere, an answer that holds itself."""
    circular: list[Any] = []
    circular.append(circular)
    answers: dict[str, Any] = {
        "np": np.int64(1), "np-array": np.array([1.5, 2.5]), "set": {1, 2},
        "surrogate": "\ud800 approve", "ref": 1, "local-ref": 1, "circular": circular,
        "fine": "approve",
    }  # fmt: skip
    evaluation_set = a_set(
        {"id": "np", "input": "np", "expected": {"regex": "^1$"}},
        {"id": "np-array", "input": "np-array", "expected": {"exact": [1.5, 2.5]}},
        {"id": "set", "input": "set", "expected": {"reference": "one two"}},
        {"id": "surrogate", "input": "surrogate", "expected": {"regex": "approve"}},
        {"id": "ref", "input": "ref",
         "expected": {"json_schema": {"$ref": "https://example.invalid/s.json"}}},
        {"id": "local-ref", "input": "local-ref",
         "expected": {"json_schema": {"$ref": "#/$defs/nowhere"}}},
        {"id": "circular", "input": "circular", "expected": {"exact": 1}},
        {"id": "fine", "input": "fine", "expected": {"exact": "approve"}},
    )  # fmt: skip
    run = run_set(evaluation_set, CallableTarget(lambda x: answers[x], "c"), {}, concurrency=3)
    outcome = {r.case.id: (r.passed, r.reason) for r in run.results}
    assert outcome["np"] == (True, "") and outcome["np-array"] == (True, "")
    assert outcome["set"] == (False, "raised ValueError: returned set, which is not JSON")
    assert outcome["surrogate"] == (True, "")
    assert "its schema cannot be checked" in outcome["ref"][1]
    assert "its schema cannot be checked" in outcome["local-ref"][1]
    assert "Circular reference" in outcome["circular"][1]
    assert outcome["fine"] == (True, "")
    storable(run)


def test_score_case_never_raises_whatever_the_answer() -> None:
    deep: list[Any] = []
    node = deep
    for _ in range(50_000):
        node.append([])
        node = node[0]
    case = Case.model_validate({"id": "a", "input": 1, "expected": {"reference": "x"}})
    refuses = RefusalMatcher(a_set({"id": "b", "input": 1, "must_refuse": True}).refusal)
    for answer in (deep, object(), b"bytes", float("nan"), "\ud800"):
        result = score_case(case, Answer(answer, 1.0), refuses, {})
        assert not result.passed


def test_scores_of_numpy_are_numbers_and_nan_strings_or_over_one_are_the_scorers_mistakes() -> None:
    case = Case.model_validate({"id": "a", "input": 1, "expected": {"exact": 1}})
    refuses = RefusalMatcher(a_set({"id": "b", "input": 1, "expected": {"exact": 1}}).refusal)
    given: list[Any] = [np.float32(0.75), np.bool_(True), np.float64(0.5), float("nan"), "0.9",
                        1.5, -0.0, 10**400, None, [0.5]]  # fmt: skip
    scorers = {f"s{n}": ((lambda _c, _a, v=v: v), None) for n, v in enumerate(given)}
    result = score_case(case, Answer(1, 1.0), refuses, scorers)
    assert result.scores == {"s0": 0.75, "s1": 1.0, "s2": 0.5, "s6": 0.0}
    for n in (3, 4, 5, 7, 8, 9):
        assert f"scorer s{n} failed: ValueError: a score is a number in [0, 1]" in result.reason


def test_precision_counts_an_answer_that_normalises_to_a_class_as_that_class() -> None:
    """A case comparing normalised text answered "Approve." where "decline" was right: it was
    no prediction of "approve", so precision:approve counted none of its false positives."""
    evaluation_set = a_set(
        *[{"id": f"a{n}", "input": "approve", "expected": {"exact": "approve", "normalise": True}}
          for n in range(5)],
        *[{"id": f"d{n}", "input": "decline", "expected": {"exact": "decline", "normalise": True}}
          for n in range(5)],
    )  # fmt: skip
    run = run_set(evaluation_set, CallableTarget(lambda _: "Approve.", "c"), {})
    found = {f.metric: f.value for f in run.figures if f.tag is None}
    assert found["recall:approve"] == 1.0 and found["recall:decline"] == 0.0
    assert found["precision:approve"] == 0.5  # 5 right of the 10 it called "approve"


def test_exact_answers_that_cannot_name_a_figure_are_not_classes() -> None:
    """A class's figure is "recall:<class>": a 300-character answer, or one with a NUL, made
    a figure the completed event could not carry (Name is 200 characters; no NUL is stored)."""
    evaluation_set = a_set(
        {"id": "long", "input": 1, "expected": {"exact": "L" * 300}},
        {"id": "nul", "input": 2, "expected": {"exact": "no\x00pe"}},
        {"id": "fine", "input": 3, "expected": {"exact": "approve"}},
    )
    answers = {1: "L" * 300, 2: "no\x00pe", 3: "approve"}
    run = run_set(evaluation_set, CallableTarget(lambda x: answers[x], "c"), {})
    assert run.passed
    metrics = {f.metric for f in run.figures}
    assert "recall:approve" in metrics and not any("L" * 50 in m or "\x00" in m for m in metrics)
    storable(run)


# --- targets ---------------------------------------------------------------------------------


@contextmanager
def serving(handler: Callable[[BaseHTTPRequestHandler, Any], None]) -> Iterator[str]:
    """An HTTP server on loopback (port 0) whose POST handler is ``handler(request, body)``."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with suppress(BrokenPipeError, ConnectionResetError):
                handler(self, body)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def send(request: BaseHTTPRequestHandler, data: bytes, status: int = 200) -> None:
    request.send_response(status)
    request.send_header("Content-Type", "application/json")
    request.send_header("Content-Length", str(len(data)))
    request.end_headers()
    request.wfile.write(data)


def chunked(request: BaseHTTPRequestHandler, chunks: Iterator[bytes]) -> None:
    request.send_response(200)
    request.send_header("Content-Type", "application/json")
    request.send_header("Transfer-Encoding", "chunked")
    request.end_headers()
    for chunk in chunks:
        request.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        request.wfile.flush()
    request.wfile.write(b"0\r\n\r\n")


def slowly(chunk: bytes) -> bytes:
    time.sleep(0.1)
    return chunk


def hostile_model(request: BaseHTTPRequestHandler, body: Any) -> None:
    """What a model behind HTTP answers, by the case's input."""
    mode = body.get("input") if isinstance(body, dict) else body
    if mode == "trickle":  # a byte every 0.1 s: never a read timeout, never done in time
        chunked(request, (slowly(b" ") for _ in range(60)))
    elif mode == "endless":
        chunked(request, iter(lambda: b" " * 65_536, None))
    elif mode == "deep":
        send(request, b"[" * 200_000 + b"]" * 200_000)
    elif mode == "ten-mb":
        send(request, json.dumps({"answer": "x" * 10_000_000}).encode())
    elif mode == "html":
        send(request, b"<html>\x00 oops</html>", 502)
    elif mode == "surrogate":
        send(request, b'{"answer": "\\ud800approve"}')
    elif mode == "list":
        send(request, b'{"choices": [{"message": {"content": "approve"}}]}')
    else:
        send(request, json.dumps({"answer": "approve"}).encode())


def test_an_http_target_that_trickles_streams_without_end_or_answers_nonsense() -> None:
    """httpx's timeout is per read: an endpoint that trickled a byte every 0.1 s held its case
    60 times the timeout, and one that never ended held it (and its memory) for ever. A
    response 200,000 lists deep raised RecursionError out of the run."""
    modes = ["trickle", "endless", "deep", "ten-mb", "html", "surrogate", "fine"]
    evaluation_set = a_set(
        *[{"id": m, "input": m, "expected": {"regex": "approve"}} for m in modes]
    )
    with serving(hostile_model) as url, httpx.Client() as client:
        target = HttpTarget(url, client, {"input": "{{input}}"}, "answer", timeout_s=1.0)
        started = time.monotonic()
        run = run_set(evaluation_set, target, {}, concurrency=len(modes))
        took = time.monotonic() - started
    outcome = {r.case.id: (r.passed, r.reason) for r in run.results}
    assert took < 8, took  # the 10 MB answer takes seconds to score; nothing waits for 6 s
    assert outcome["trickle"] == (False, "timed out after 1 s")
    assert outcome["endless"][0] is False
    assert outcome["endless"][1] in ("timed out after 1 s", "the response is not JSON") or (
        "over 33,554,432 bytes" in outcome["endless"][1]
    )
    assert outcome["deep"] == (False, "the response is not JSON")
    assert outcome["ten-mb"] == (False, "does not match /approve/")
    assert outcome["html"][0] is False and outcome["html"][1].startswith("HTTP 502: <html>")
    assert outcome["surrogate"] == (True, "") and outcome["fine"] == (True, "")
    storable(run)  # a 10 MB answer is cut to fit; the NUL of the HTML is replaced


def test_answer_paths_into_lists_and_placeholders_in_keys() -> None:
    case = Case.model_validate(
        {"id": "k1", "input": {"field": "income", "v": [1, 2]}, "expected": {"exact": 1}}
    )
    assert fill({"{{input.field}}": "{{input.v.1}}", "id-{{case_id}}": ["{{input.v}}"]}, case) == {
        "income": 2, "id-k1": [[1, 2]],
    }  # fmt: skip
    assert pick({"a": [10, 20]}, "a.1") == 20
    nothing = pick({}, "nowhere")
    assert pick({"a": [10, 20]}, "a.²") is nothing  # "²" is a digit to str; int() raised
    assert pick({"a": [10, 20]}, "a.-1") is nothing
    with serving(hostile_model) as url, httpx.Client() as client:
        target = HttpTarget(url, client, {"input": "list"}, "choices.0.message.content")
        answer = target(case)
        assert answer.value == "approve" and answer.error is None
        nan = HttpTarget(url, client, {"input": float("nan")}, "answer")  # --request 'NaN'
        answer = nan(case)
    assert answer.error is not None and answer.error.startswith("the request cannot be sent")


def test_recorded_answers_with_a_line_separator_bom_or_impossible_latencies(
    tmp_path: Path,
) -> None:
    path = tmp_path / "answers.jsonl"
    path.write_text('\ufeff{"id": "a", "output": "x\u2028y", "latency_ms": 3}\n', "utf-8")
    assert RecordedTarget.from_file(path).answers["a"] == Answer("x\u2028y", 3.0)
    for latency in ("Infinity", "NaN", "true", "1e400", "-0.5", "1" + "0" * 400):
        path.write_text(f'{{"id": "a", "output": 1, "latency_ms": {latency}}}\n')
        with pytest.raises(TargetError, match="latency_ms is a number of at least 0"):
            RecordedTarget.from_file(path)


def test_a_callable_that_exits_or_returns_numpy_fails_or_passes_its_case_only() -> None:
    def model(x: Any) -> Any:
        if x == "exit":
            sys.exit(0)
        return np.str_("approve") if x == "np" else "approve"

    evaluation_set = a_set(
        {"id": "exit", "input": "exit", "expected": {"exact": "approve"}},
        {"id": "np", "input": "np", "expected": {"exact": "approve"}},
    )
    run = run_set(evaluation_set, CallableTarget(model, "c", timeout_s=2), {})
    assert [(r.passed, r.reason) for r in run.results] == [
        (False, "raised SystemExit: 0"), (True, ""),
    ]  # fmt: skip


@pytest.fixture
def module_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory of the test's own on sys.path (and PYTHONPATH, for subprocesses)."""
    directory = tmp_path / "modules"
    directory.mkdir()
    monkeypatch.syspath_prepend(str(directory))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(directory), os.environ.get(
        "PYTHONPATH", "")]))  # fmt: skip
    return directory


def module(directory: Path, name: str, source: str) -> str:
    (directory / f"{name}.py").write_text(textwrap.dedent(source))
    return name


def test_an_entry_point_that_raises_or_exits_at_import_cannot_be_loaded(module_dir: Path) -> None:
    """A sys.exit() at import passed through ``except Exception`` and ended the process with
    the module's exit code: 0, "passed", for a run that never ran."""
    raising = module(module_dir, f"raises_{uuid.uuid4().hex[:8]}", "raise RuntimeError('no')\n")
    exiting = module(module_dir, f"exits_{uuid.uuid4().hex[:8]}", "import sys\nsys.exit(0)\n")
    with pytest.raises(TargetError, match="cannot be loaded: RuntimeError: no"):
        load_entry_point(f"{raising}:f")
    with pytest.raises(TargetError, match="cannot be loaded: SystemExit: 0"):
        load_entry_point(f"{exiting}:f")


# --- scorers ---------------------------------------------------------------------------------


def test_an_entry_point_scorer_from_a_module_on_the_path(module_dir: Path) -> None:
    name = module(
        module_dir,
        f"tone_{uuid.uuid4().hex[:8]}",
        """
        import numpy as np

        calls = []

        def tone(input, expected, answer):
            calls.append((input, expected, answer))
            if answer == "rude":
                return np.float32(0.1)
            if answer == "broken":
                raise KeyError("polite")
            if answer == "bool":
                return np.bool_(True)
            return 0.9
    """,
    )
    evaluation_set = a_set(
        *[{"id": a, "input": {"q": a}, "expected": {"regex": "."}}
          for a in ("nice", "rude", "broken", "bool")],
        scorers=[{"name": "tone", "entry_point": f"{name}:tone", "minimum": 0.5}],
    )  # fmt: skip
    with httpx.Client() as client:
        scorers = build_scorers(evaluation_set, client, 1.0)
    run = run_set(evaluation_set, CallableTarget(lambda x: x["q"], "c"), scorers)
    outcome = {r.case.id: (r.passed, r.reason, dict(r.scores)) for r in run.results}
    assert outcome["nice"] == (True, "", {"tone": 0.9})
    assert outcome["rude"][:2] == (False, "tone 0.10, under 0.5")
    assert outcome["broken"][:2] == (False, "scorer tone failed: KeyError: 'polite'")
    assert outcome["bool"] == (True, "", {"tone": 1.0})
    calls = sys.modules[name].calls
    assert ({"q": "nice"}, {"regex": "."}, "nice") in [
        (i, {k: v for k, v in e.items() if k == "regex"}, a) for i, e, a in calls
    ]
    (payload, *_) = run.case_payloads("1")
    assert payload.scores is not None and payload.scores[0].source == "rule"
    found = {(f.metric, f.tag): f for f in run.figures}
    assert found[("score:tone", None)].sample == 3  # the broken one has no score
    storable(run)


def judge(request: BaseHTTPRequestHandler, body: Any) -> None:
    """A model as judge, answering by the output it is asked about."""
    output = body["output"]
    replies = {
        "good": b'{"score": 0.8}', "nan": b'{"score": NaN}', "string": b'{"score": "0.9"}',
        "over": b'{"score": 1.5}', "bool": b'{"score": true}', "huge": b'{"score": 1e400}',
        "text": b"I think it is fine", "no-score": b'{"verdict": "ok"}',
        "deep": b"[" * 100_000 + b"]" * 100_000,
    }  # fmt: skip
    if output == "hang":
        time.sleep(5)
        send(request, b'{"score": 1}')
    elif output == "trickle":
        chunked(request, (slowly(b" ") for _ in range(50)))
    elif output == "crash":
        send(request, b'{"error": "judge down"}', 500)
    else:
        assert body["case_id"] == output and body["expected"] == {
            "exact": None, "normalise": False, "any_of": None, "number": None, "tolerance": 0.0,
            "regex": ".", "json_schema": None, "reference": None, "min_similarity": 0.8,
        }  # fmt: skip
        send(request, replies[output])


def test_a_model_as_judge_over_http_on_loopback() -> None:
    """Each way a judge can answer wrongly fails its case alone, naming the judge; one that
    hangs or trickles is given up within the timeout."""
    outputs = ["good", "nan", "string", "over", "bool", "huge", "text", "no-score", "deep",
               "hang", "trickle", "crash"]  # fmt: skip
    with serving(judge) as url, httpx.Client() as client:
        evaluation_set = a_set(
            *[{"id": o, "input": o, "expected": {"regex": "."}} for o in outputs],
            scorers=[{"name": "faithful", "judge_url": url, "minimum": 0.7}],
        )
        scorers = build_scorers(evaluation_set, client, 1.0)
        started = time.monotonic()
        run = run_set(evaluation_set, CallableTarget(lambda x: x, "c"), scorers, concurrency=12)
        took = time.monotonic() - started
    assert took < 4.5, (took, [(r.case.id, r.reason) for r in run.results])
    outcome = {r.case.id: (r.passed, r.reason) for r in run.results}
    assert outcome["good"] == (True, "") and outcome["bool"] == (True, "")
    for wrong in ("nan", "string", "over", "huge"):
        assert outcome[wrong][1].startswith(
            "scorer faithful failed: ValueError: a score is a number in [0, 1]"
        ), outcome[wrong]
    for wrong in ("text", "deep"):
        assert "the judge must answer JSON" in outcome[wrong][1]
    assert "the judge must answer {" in outcome["no-score"][1]
    assert "faithful failed: ReadTimeout" in outcome["hang"][1]
    assert "did not answer within 1 s" in outcome["trickle"][1]
    assert "the judge answered HTTP 500" in outcome["crash"][1]
    payloads = {p.case_id: p for p in run.case_payloads("1")}
    assert payloads["good"].scores is not None
    assert [(s.name, s.value, s.source) for s in payloads["good"].scores] == [
        ("faithful", 0.8, "model")
    ]
    storable(run)


# --- figures and events ---------------------------------------------------------------------


def test_run_with_one_mb_inputs_and_ten_mb_outputs_records_events_that_fit() -> None:
    evaluation_set = a_set(
        *[{"id": f"c{n}", "input": {"n": n, "text": "é" * 1_000_000},
           "expected": {"reference": "a b"} if n == 0 else {"regex": "^é"},
           "tags": [f"t{k}-" + "x" * 90 for k in range(20)]} for n in range(3)]
    )  # fmt: skip
    # A 10 MB answer for the first (scored against its reference, word by word); its input,
    # 2 MB of UTF-8, for the others.
    answers = {0: "a b " * 2_500_000, 1: "é" * 1_000_000, 2: "é" * 1_000_000}
    run = run_set(evaluation_set, CallableTarget(lambda x: answers[x["n"]], "c"), {})
    assert [r.passed for r in run.results] == [False, True, True]  # "a b a b ..." is no "a b"
    assert all(len(p.output or "") == 4_000 for p in run.case_payloads("1"))
    storable(run)


def test_the_completed_event_of_a_set_at_its_limits_fits_512_kib() -> None:
    tags = [f"{n:03d}-" + "t" * 96 for n in range(150)]
    scorers = [{"name": f"score-{n:02d}-" + "s" * 80, "entry_point": "json:loads"}
               for n in range(20)]  # fmt: skip
    evaluation_set = a_set(
        *[{"id": f"c{n}", "input": n, "expected": {"exact": f"class-{n % 50:02d}"},
           "tags": [tags[(n + k) % 150] for k in range(20)]} for n in range(300)],
        scorers=scorers,
    )  # fmt: skip
    own: dict[str, tuple[CaseScorer, float | None]] = {
        s["name"]: ((lambda _c, _a: 0.5), None) for s in scorers
    }
    run = run_set(evaluation_set, CallableTarget(lambda n: f"class-{n % 50:02d}", "c"), own)
    assert len(run.figures) <= 5_000
    storable(run)


def test_figures_of_many_classes_and_tags_stay_within_the_events_count() -> None:
    evaluation_set = a_set(
        *[{"id": f"c{n}", "input": n, "expected": {"exact": f"k{n % 60}"},
           "tags": [f"t{(n + k) % 150}" for k in range(3)]} for n in range(600)],
    )  # fmt: skip
    assert all(f.value is None for f in figures([], evaluation_set))
    run = run_set(evaluation_set, CallableTarget(lambda n: f"k{n % 60}", "c"), {})
    assert not any(f.metric.startswith("recall:") for f in run.figures)  # 60 > 50: no classes
    storable(run)


def test_concurrency_at_its_extremes_keeps_the_sets_order() -> None:
    evaluation_set = a_set(
        *[{"id": f"c{n}", "input": n, "expected": {"exact": n}} for n in range(1_000)]
    )
    for concurrency in (1, 256):
        run = run_set(evaluation_set, CallableTarget(lambda n: n, "c"), {}, concurrency=concurrency)
        assert [r.case.id for r in run.results] == [f"c{n}" for n in range(1_000)]
        assert run.passed


# --- comparison --------------------------------------------------------------------------


def test_mcnemar_is_one_sided_exact_and_counts_only_changed_cases() -> None:
    def runs(worse: int, better: int, same: int = 50) -> tuple[list[CaseOutcome], ...]:
        before = [CaseOutcome(f"w{n}", True) for n in range(worse)]
        before += [CaseOutcome(f"b{n}", False) for n in range(better)]
        before += [CaseOutcome(f"s{n}", n % 2 == 0) for n in range(same)]
        after = [CaseOutcome(o.case_id, not o.passed if o.case_id[0] in "wb" else o.passed)
                 for o in before]  # fmt: skip
        return before, after

    assert compare(*runs(10, 0)).p_value() == pytest.approx(2**-10)
    assert compare(*runs(6, 1)).p_value() == pytest.approx(8 / 128)  # P(X >= 6 | n = 7)
    assert compare(*runs(0, 10)).p_value() == 1.0 and not compare(*runs(0, 10)).regressed()
    assert compare(*runs(1, 10)).p_value() > 0.99  # better: never a regression
    assert compare(*runs(5, 0)).regressed() and not compare(*runs(4, 0)).regressed()  # 1/16, 1/32
    assert not compare(*runs(10, 0)).regressed(max_drop=0.2)  # 10 of 60 is 0.167
    assert compare([], []).pass_rates() == (None, None) and not compare([], []).regressed()
    only = compare([CaseOutcome("a", True)], [CaseOutcome("b", False)])
    assert only.shared == [] and not only.regressed()


# --- add-from-production --------------------------------------------------------------------


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[tuple[Engine, str]]:
    url = f"sqlite:///{tmp_path / 'driftline.db'}"
    engine = make_engine(url)
    migrate(engine)
    yield engine, url
    engine.dispose()


def store(engine: Engine, batch: list[Any]) -> None:
    with Session(engine) as session:
        messages = [RawMessage("events", 0, n, None, encode(e)) for n, e in enumerate(batch)]
        write_batch(session, messages)
        session.commit()


def production(engine: Engine) -> dict[str, uuid.UUID]:
    """Decisions of credit-risk 3 (and one of another model, one of version 2), corrected by
    feedback or reviews in every order."""
    now = datetime.now(UTC)
    at = [now - timedelta(hours=10 - n) for n in range(10)]
    ids = {name: uuid.uuid4() for name in (
        "feedback", "override-then-feedback", "feedback-then-override", "override-then-right",
        "refer", "erased", "other-model", "version-2", "twice", "right", "known",
    )}  # fmt: skip
    other = ModelRef(name="fraud", version="3")
    batch: list[Any] = []
    for n, (name, decision_id) in enumerate(ids.items()):
        model = other if name == "other-model" else events.MODEL
        if name == "version-2":
            model = ModelRef(name="credit-risk", version="2")
        batch.append(events.decision(decision_id=decision_id, model=model,
                                     occurred_at=at[0] + timedelta(minutes=n)))  # fmt: skip
    for name in ("feedback", "erased", "other-model", "version-2", "known"):
        model = other if name == "other-model" else events.MODEL
        if name == "version-2":
            model = ModelRef(name="credit-risk", version="2")
        batch.append(events.feedback(ids[name], model=model, occurred_at=at[2]))
    batch += [
        events.review(ids["override-then-feedback"], occurred_at=at[2]),
        events.feedback(ids["override-then-feedback"], occurred_at=at[3],
                        payload={"ground_truth": "refer-later", "correct": False,
                                 "reporter": "collections"}),
        events.feedback(ids["feedback-then-override"], occurred_at=at[2]),
        events.review(ids["feedback-then-override"], occurred_at=at[3],
                      payload={"reviewer": "b", "action": "override", "new_output": "approve"}),
        events.review(ids["override-then-right"], occurred_at=at[2]),
        events.feedback(ids["override-then-right"], occurred_at=at[3],
                        payload={"correct": True, "reporter": "collections"}),
        events.review(ids["refer"], occurred_at=at[2],
                      payload={"reviewer": "b", "action": "override", "new_output": "refer"}),
        events.feedback(ids["twice"], occurred_at=at[2]),
        events.feedback(ids["twice"], occurred_at=at[4]),
        events.feedback(ids["right"], occurred_at=at[2],
                        payload={"correct": True, "reporter": "collections"}),
    ]  # fmt: skip
    store(engine, batch)
    with Session(engine) as session:
        erased = session.exec(select(Decision).where(Decision.decision_id == ids["erased"])).one()
        erased.inputs = {TOMBSTONE: {"inputs_sha256": "00" * 32}}
        session.add(erased)
        session.commit()
    return ids


def test_add_from_production_against_a_real_store(sqlite_store: tuple[Engine, str]) -> None:
    engine, _ = sqlite_store
    ids = production(engine)
    refuses = RefusalMatcher(a_set({"id": "r", "input": 1, "must_refuse": True}).refusal)
    with Session(engine) as session:
        cases = corrected_cases(
            session, model="credit-risk", version="3", window=timedelta(days=1),
            tag="from-production", known={str(ids["known"])}, refuses=refuses,
        )  # fmt: skip
    by_decision = {uuid.UUID(c["decision_id"]): c for c in cases}
    name_of = {v: k for k, v in ids.items()}
    assert sorted(name_of[d] for d in by_decision) == sorted(
        ["feedback", "override-then-feedback", "feedback-then-override", "refer", "twice"]
    )  # erased, another model's, version 2's, known, right and right-after-override left out
    assert by_decision[ids["feedback"]]["expected"] == {"exact": "decline"}
    assert by_decision[ids["override-then-feedback"]]["expected"] == {"exact": "refer-later"}
    assert by_decision[ids["feedback-then-override"]]["expected"] == {"exact": "approve"}
    assert by_decision[ids["refer"]] == {
        "id": f"prod-{ids['refer']}", "input": {"income": 52_000, "region": "north"},
        "tags": ["from-production"], "decision_id": str(ids["refer"]), "must_refuse": True,
    }  # fmt: skip
    order = [name_of[uuid.UUID(c["decision_id"])] for c in cases]
    assert order == [name for name in ids if name in order]  # the decisions' own order
    for case in cases:
        Case.model_validate(case)  # each loads as a case of the set
    with Session(engine) as session:
        known = {c["id"] for c in cases} | {str(ids["known"])}
        assert corrected_cases(session, model="credit-risk", version="3", window=None,
                               tag="t", known=known, refuses=refuses) == []  # fmt: skip
        (other,) = corrected_cases(session, model="credit-risk", version=None, window=None,
                                   tag="t", known=known, refuses=refuses)  # fmt: skip
        assert other["decision_id"] == str(ids["version-2"])
        with pytest.raises(ValueError, match="holds the control character"):
            corrected_cases(session, model="credit-risk", version=None, window=None,
                            tag="bad\ttag", known=set())  # fmt: skip


def eval_command(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "driftline", "eval", *args],
        env=os.environ | env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def jsonl_set(directory: Path, lines: list[dict[str, Any]], trailing_newline: bool = True) -> Path:
    text = "\n".join(json.dumps(line) for line in lines) + ("\n" if trailing_newline else "")
    (directory / "cases.jsonl").write_text(text)
    (directory / "set.yaml").write_text(HEADER + "cases_file: cases.jsonl\n")
    return directory / "set.yaml"


def test_add_from_production_keeps_a_cases_file_without_a_final_newline_loading(
    tmp_path: Path, sqlite_store: tuple[Engine, str]
) -> None:
    engine, url = sqlite_store
    production(engine)
    path = jsonl_set(tmp_path, [{"id": "a", "input": 1, "expected": {"exact": 1}}], False)
    added = eval_command("add-from-production", str(path), "--database-url", url)
    assert added.returncode == 0, added.stderr
    assert len(load_set(path).cases) > 1


def test_add_from_production_twice_with_out_adds_nothing_the_second_time(
    tmp_path: Path, sqlite_store: tuple[Engine, str]
) -> None:
    engine, url = sqlite_store
    production(engine)
    path = jsonl_set(tmp_path, [{"id": "a", "input": 1, "expected": {"exact": 1}}])
    out = tmp_path / "more.jsonl"
    for _ in range(2):
        added = eval_command("add-from-production", str(path), "--out", str(out),
                             "--database-url", url)  # fmt: skip
        assert added.returncode == 0, added.stderr
    ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert len(ids) == len(set(ids))


def test_add_from_production_end_to_end_grows_a_set_that_still_loads(
    tmp_path: Path, sqlite_store: tuple[Engine, str]
) -> None:
    engine, url = sqlite_store
    production(engine)
    path = jsonl_set(tmp_path, [{"id": "a", "input": 1, "expected": {"exact": 1}}])
    added = eval_command("add-from-production", str(path), "--version", "3", "--database-url", url)
    assert added.returncode == 0, added.stderr
    assert "cases added to" in added.stdout
    grown = load_set(path)
    assert len(grown.cases) > 1 and "from-production" in grown.tags
    again = eval_command("add-from-production", str(path), "--version", "3", "--database-url", url)
    assert again.returncode == 0 and again.stdout.startswith("0 cases added"), again.stdout


def test_add_from_production_makes_a_refusal_a_rejection_case_and_checks_its_tag(
    tmp_path: Path, sqlite_store: tuple[Engine, str]
) -> None:
    engine, url = sqlite_store
    ids = production(engine)
    path = jsonl_set(tmp_path, [{"id": "a", "input": 1, "expected": {"exact": 1}}])
    bad = eval_command("add-from-production", str(path), "--tag", "a" * 101, "--database-url", url)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr
    added = eval_command("add-from-production", str(path), "--database-url", url)
    assert added.returncode == 0, added.stderr
    (refer,) = [c for c in load_set(path).cases if c.decision_id == str(ids["refer"])]
    assert refer.must_refuse


# --- the command: exit codes ----------------------------------------------------------------


def test_eval_run_exits_0_when_it_passes_1_when_it_fails_and_2_when_it_cannot_run(
    tmp_path: Path, module_dir: Path
) -> None:
    model = module(
        module_dir,
        f"model_{uuid.uuid4().hex[:8]}",
        """
        import numpy as np

        def echo(x):
            return np.int64(x) if isinstance(x, int) else x
    """,
    )
    scorer = module(
        module_dir,
        f"scorer_{uuid.uuid4().hex[:8]}",
        """
        def half(input, expected, answer):
            return 0.5
    """,
    )
    broken = module(module_dir, f"broken_{uuid.uuid4().hex[:8]}", "raise ImportError('no')\n")
    nowhere = {"DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS": "",
               "DRIFTLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'no' / 'such.db'}"}  # fmt: skip

    def run(cases: list[dict[str, Any]], *more: str, extra: str = "") -> Any:
        directory = tmp_path / uuid.uuid4().hex[:8]
        directory.mkdir()
        (directory / "cases.jsonl").write_text("\n".join(json.dumps(c) for c in cases))
        (directory / "set.yaml").write_text(HEADER + extra + "cases_file: cases.jsonl\n")
        return eval_command("run", str(directory / "set.yaml"), "--version", "1", "--no-record",
                            "--callable", f"{model}:echo", *more, **nowhere)  # fmt: skip

    good: list[dict[str, Any]] = [{"id": "a", "input": "approve", "expected": {"exact": "approve"}},
            {"id": "n", "input": 7, "expected": {"regex": "^7$"}}]  # fmt: skip
    passed = run(good, "--json")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert json.loads(passed.stdout)["recorded"] == "not recorded (--no-record)"
    failed = run([*good, {"id": "b", "input": "approve", "expected": {"exact": "decline"}}])
    assert failed.returncode == 1 and "FAILED" in failed.stdout, failed.stderr
    scored = run(good, extra=f"scorers:\n  - {{name: half, entry_point: '{scorer}:half', "
                 "minimum: 0.6}\n")  # fmt: skip
    assert scored.returncode == 1 and "half 0.50, under 0.6" in scored.stdout
    unable = run(good, extra=f"scorers:\n  - {{name: b, entry_point: '{broken}:f'}}\n")
    assert unable.returncode == 2 and "cannot be loaded: ImportError: no" in unable.stderr
    nan = run([{"id": "a", "input": 1, "expected": {"exact": 1}}],
              extra="thresholds:\n  - {metric: pass_rate, minimum: .nan}\n")  # fmt: skip
    assert nan.returncode == 2 and "thresholds[0].minimum" in nan.stderr
    assert run(good, "--concurrency", "0").returncode == 2
    assert run(good, "--timeout", "0s").returncode == 2


def test_eval_run_with_a_version_no_event_can_carry_exits_2_before_running(
    tmp_path: Path, sqlite_store: tuple[Engine, str], module_dir: Path
) -> None:
    _, url = sqlite_store
    model = module(module_dir, f"model_{uuid.uuid4().hex[:8]}", "def f(x):\n    return x\n")
    path = jsonl_set(tmp_path, [{"id": "a", "input": 1, "expected": {"exact": 1}}])
    ran = eval_command("run", str(path), "--version", "", "--callable", f"{model}:f",
                       "--database-url", url,
                       "--kafka-bootstrap-servers", "127.0.0.1:9")  # fmt: skip
    assert ran.returncode == 2, ran.stdout + ran.stderr
    assert "Traceback" not in ran.stderr


def test_a_scorer_built_from_a_set_loaded_from_disk_needs_no_network(module_dir: Path) -> None:
    """build_scorers loads entry points at once (their import errors are the set's), and a
    judge only when asked: a set with a judge builds without one listening."""
    evaluation_set = a_set(
        {"id": "a", "input": 1, "expected": {"exact": 1}},
        scorers=[{"name": "j", "judge_url": "http://127.0.0.1:9/score"}],
    )
    with httpx.Client() as client:
        scorers = build_scorers(evaluation_set, client, 0.5)
        run = run_set(evaluation_set, CallableTarget(lambda x: x, "c"), scorers)
    assert run.results[0].reason.startswith("scorer j failed: ConnectError")
    assert math.isclose(run.figures[0].value or 0, 0.0)

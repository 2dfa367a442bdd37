"""What an evaluation run asks: an HTTP endpoint, a Python callable, or answers already
recorded. A target turns a case into an ``Answer``, and never raises: a target that fails,
times out or answers nonsense gives an answer with its error, and the run goes on.

An HTTP target sends a request built from a JSON template, in which the string
``"{{input}}"`` stands for the case's input as JSON (any value), ``"{{input.a.b}}"`` for one of
its fields, and either inside a longer string for its text; ``"{{case_id}}"`` is the case's id.
Placeholders are replaced in the parsed template, never in its text, so no input can break
out of the JSON. The answer is found in the response by a dotted path (``choices.0.message.
content``); without one it is the whole JSON response, or its text.
"""

from __future__ import annotations

import importlib
import json
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
import numpy as np
import re2

from driftline.collector.golive.evalsets import Case
from driftline.collector.golive.scoring import Answer, as_text

_PLACEHOLDER = re2.compile(r"\{\{\s*(input(?:\.[^{}\s]+)?|case_id)\s*\}\}")
_MISSING = object()
MAX_RESPONSE_BYTES = 32 * 1024 * 1024  # of an answer (or a judge's): more is not an answer


class Target(Protocol):
    @property
    def description(self) -> str: ...

    def __call__(self, case: Case) -> Answer: ...


class TargetError(ValueError):
    """A target that cannot be set up: a template, path or entry point that is wrong."""


class ResponseTooLarge(ValueError):
    """A response over MAX_RESPONSE_BYTES: an endpoint that streams without end, say."""


def load_entry_point(spec: str) -> Callable[..., Any]:
    """The callable ``module:attribute.path`` names; TargetError if it cannot be loaded."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise TargetError(f"{spec!r}: name a callable as module:function")
    try:
        found: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            found = getattr(found, part)
    # An import runs the user's code: any error is theirs, a sys.exit() at import too (which
    # would otherwise end the run with the user's exit code, 0 as "passed" included).
    except (Exception, SystemExit) as error:
        raise TargetError(f"{spec!r} cannot be loaded: {type(error).__name__}: {error}") from None
    if not callable(found):
        raise TargetError(f"{spec!r} is not callable")
    function: Callable[..., Any] = found
    return function


def fill(template: Any, case: Case) -> Any:
    """The template with the case's placeholders replaced (see the module's docstring)."""
    if isinstance(template, dict):
        # A placeholder in a key stands for its text: a key is always text.
        return {_fill_text(key, case): fill(value, case) for key, value in template.items()}
    if isinstance(template, list):
        return [fill(value, case) for value in template]
    if not isinstance(template, str):
        return template
    whole = _PLACEHOLDER.fullmatch(template)
    if whole is not None:
        return _value_of(whole.group(1), case)
    return _fill_text(template, case)


def _fill_text(template: str, case: Case) -> str:
    filled: str = _PLACEHOLDER.sub(lambda m: as_text(_value_of(m.group(1), case)), template)
    return filled


def _value_of(name: str, case: Case) -> Any:
    if name == "case_id":
        return case.id
    value = pick(case.input, name.removeprefix("input").removeprefix("."))
    if value is _MISSING:
        raise TargetError(f"the request template asks for {{{{{name}}}}}, which the input lacks")
    return value


def pick(document: Any, path: str) -> Any:
    """The value at a dotted path (list items by number); ``_MISSING`` where there is none."""
    for part in path.split(".") if path else ():
        if isinstance(document, dict) and part in document:
            document = document[part]
        elif (
            isinstance(document, list)
            and part.isascii()  # "²" is a digit to str.isdigit, and no number to int()
            and part.isdigit()
            and int(part) < len(document)
        ):
            document = document[int(part)]
        else:
            return _MISSING
    return document


@dataclass
class HttpTarget:
    url: str
    client: httpx.Client
    template: Any = "{{input}}"
    answer_path: str = ""
    headers: Mapping[str, str] | None = None
    timeout_s: float = 30.0

    @property
    def description(self) -> str:
        """What the run's event names: the endpoint without credentials or query, which may
        carry an API key (headers, which carry most, are never recorded)."""
        try:
            url = httpx.URL(self.url)
            bare = url.copy_with(username=None, password=None, query=None, fragment=None)
        except (httpx.InvalidURL, TypeError, ValueError):
            return "POST (an endpoint whose URL does not parse)"
        return f"POST {bare}"

    def __call__(self, case: Case) -> Answer:
        try:
            body = fill(self.template, case)
        except TargetError as error:
            return Answer(error=str(error))
        except (ValueError, RecursionError) as error:  # an input too deep to write as text
            return Answer(error=f"the request cannot be built: {type(error).__name__}"[:500])
        started = time.perf_counter()
        try:
            response, content = post_json(
                self.client, self.url, body, dict(self.headers or {}), self.timeout_s
            )
        except TimeoutError:
            return Answer(error=f"timed out after {self.timeout_s:g} s")
        except httpx.TimeoutException:
            return Answer(error=f"timed out after {self.timeout_s:g} s")
        except httpx.HTTPError as error:
            return Answer(error=f"request failed: {type(error).__name__}: {error}"[:500])
        except ResponseTooLarge as error:
            return Answer(latency_ms=(time.perf_counter() - started) * 1000, error=str(error))
        except (ValueError, TypeError) as error:  # a body JSON cannot carry: NaN, say
            return Answer(error=f"the request cannot be sent: {error}"[:500])
        latency_ms = (time.perf_counter() - started) * 1000
        if not response.is_success:
            reason = f"HTTP {response.status_code}: {_text(response, content)[:200]}"
            return Answer(latency_ms=latency_ms, error=reason)
        try:
            document: Any = json.loads(content)
        except (ValueError, RecursionError):
            if self.answer_path:
                return Answer(latency_ms=latency_ms, error="the response is not JSON")
            return Answer(_text(response, content), latency_ms)
        value = pick(document, self.answer_path)
        if value is _MISSING:
            reason = f"the response has nothing at {self.answer_path!r}"
            return Answer(latency_ms=latency_ms, error=reason)
        return Answer(value, latency_ms)


def post_json(
    client: httpx.Client, url: str, body: Any, headers: dict[str, str], timeout_s: float
) -> tuple[httpx.Response, bytes]:
    """POST ``body`` as JSON and read the response within ``timeout_s`` in all: httpx's own
    timeout is per read, so an endpoint that trickles a byte a second, or streams without end,
    would hold the case for ever. TimeoutError past the deadline; ResponseTooLarge for a
    response over MAX_RESPONSE_BYTES; ValueError for a body JSON cannot carry."""
    deadline = time.monotonic() + timeout_s
    request = client.build_request("POST", url, json=body, headers=headers, timeout=timeout_s)
    response = client.send(request, stream=True)
    try:
        chunks, size = [], 0
        for chunk in response.iter_bytes():  # decompressed as it comes: no gzip bomb
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise ResponseTooLarge(f"the response is over {MAX_RESPONSE_BYTES:,} bytes")
            chunks.append(chunk)
            if time.monotonic() > deadline:
                raise TimeoutError
        if time.monotonic() > deadline:
            raise TimeoutError
    finally:
        response.close()
    return response, b"".join(chunks)


def _text(response: httpx.Response, content: bytes) -> str:
    try:
        return content.decode(response.charset_encoding or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return content.decode("utf-8", errors="replace")


def as_json(value: Any) -> Any:
    """What a Python function returned, as JSON: numpy's scalars and arrays as their values;
    ValueError for anything else that is not JSON (a set, an object, a cycle)."""

    def convert(item: Any) -> Any:
        if isinstance(item, np.generic | np.ndarray):
            return item.tolist()
        raise TypeError(f"returned {type(item).__name__}, which is not JSON")

    try:
        return json.loads(json.dumps(value, default=convert, ensure_ascii=False))
    except RecursionError:
        raise ValueError("returned a value nested too deeply to read") from None
    except TypeError as error:
        raise ValueError(str(error)) from None


@dataclass
class CallableTarget:
    """A Python function given the case's input; what it returns is the answer. One that does
    not return within the timeout is left running (Python cannot stop a thread) and its case
    fails."""

    function: Callable[[Any], Any]
    description: str
    timeout_s: float = 30.0

    def __call__(self, case: Case) -> Answer:
        outcome: dict[str, Any] = {}

        def call() -> None:
            started = time.perf_counter()
            try:
                value = self.function(case.input)
                outcome["latency_ms"] = (time.perf_counter() - started) * 1000
                outcome["value"] = as_json(value)
            # The user's code: its failure is the case's, a sys.exit() in it too.
            except (Exception, SystemExit) as error:
                outcome["error"] = f"raised {type(error).__name__}: {error}"[:500]
            except BaseException as error:  # stop the run, say: still the case's, not a crash
                outcome["error"] = f"raised {type(error).__name__}"
            outcome.setdefault("latency_ms", (time.perf_counter() - started) * 1000)

        thread = threading.Thread(target=call, daemon=True, name=f"eval-{case.id}"[:60])
        thread.start()
        thread.join(self.timeout_s)
        if thread.is_alive():
            return Answer(error=f"timed out after {self.timeout_s:g} s")
        if "error" in outcome:
            return Answer(latency_ms=outcome["latency_ms"], error=outcome["error"])
        return Answer(outcome["value"], outcome["latency_ms"])


@dataclass
class RecordedTarget:
    """Answers recorded before, one JSON object per line: ``{"id", "output", "latency_ms"}``."""

    answers: Mapping[str, Answer]
    description: str

    @classmethod
    def from_file(cls, path: Path) -> RecordedTarget:
        answers: dict[str, Answer] = {}
        try:
            # Lines end at "\n" only: splitlines() would also break inside a string at U+2028.
            lines = path.read_bytes().decode("utf-8-sig").split("\n")
        except (OSError, UnicodeDecodeError) as error:
            raise TargetError(f"{path}: cannot read: {error}") from None
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except (ValueError, RecursionError) as error:
                raise TargetError(f"{path}:{number}: not JSON: {error}") from None
            if (
                not isinstance(row, dict)
                or not isinstance(row.get("id"), str)
                or "output" not in row
            ):
                raise TargetError(f'{path}:{number}: give {{"id": "...", "output": ...}}')
            latency = _latency(row.get("latency_ms"))
            if latency is _MISSING:
                raise TargetError(f"{path}:{number}: latency_ms is a number of at least 0")
            if row["id"] in answers:
                raise TargetError(f"{path}:{number}: {row['id']!r} is recorded twice")
            answers[row["id"]] = Answer(row["output"], latency)
        return cls(answers, f"recorded in {path}")

    def __call__(self, case: Case) -> Answer:
        return self.answers.get(case.id, Answer(error="no recorded answer for this case"))


def _latency(value: Any) -> Any:
    """A recorded latency as a finite float of at least 0, None if none; _MISSING if wrong
    (true, NaN, infinity, 1e400 and -1 are no latencies)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _MISSING
    try:
        latency = float(value)
    except OverflowError:
        return _MISSING
    return latency if math.isfinite(latency) and latency >= 0 else _MISSING

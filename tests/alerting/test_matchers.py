"""Matchers read back from the text they are written as, whatever the label value, with the
quoting of Alertmanager's matchers (Go string literals); a value or a regex that cannot work is
refused with the matcher named. Regexes are RE2's: linear in the label value, so no silence
freezes the router or the API. A stored silence that no longer parses mutes nothing and stops
nothing: it is skipped, logged and reported."""

import multiprocessing
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import re2
import structlog
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlmodel import Session, select

from driftline.agent.contract import DriftDetectedEvent, DriftPayload
from driftline.agent.provenance import TrustedProducers
from driftline.collector.alerting.config import load_alerting
from driftline.collector.alerting.matchers import Matcher, MatcherError, Operator
from driftline.collector.alerting.muting import active_silences
from driftline.collector.alerting.router import AlertRouter
from driftline.collector.store.models import Decision, OutboxMessage, Silence
from tests.api_client import api_client
from tests.events import MODEL, drift_payload

NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True)
SPACES = st.sampled_from(["", " ", "  \t"])
# Go's one-letter escapes in a double-quoted string literal, and what each stands for
SHORT_ESCAPES = {"\a": "a", "\b": "b", "\f": "f", "\n": "n", "\r": "r", "\t": "t", "\v": "v"}
# Patterns that backtrack exponentially, each with the character it repeats
NESTED = [("(a+)+b", "a"), ("(x+x+)+y", "x"), ("(a|aa)+c", "a"), ("([a-z]+)*[0-9]", "q")]
LONG = 100_000


def _read(text: str) -> tuple[str, str, str]:
    matcher = Matcher.parse(text)
    return matcher.name, matcher.operator, matcher.value


@given(name=NAMES, operator=st.sampled_from(["=", "!=", "=~", "!~"]), value=st.text())
def test_a_matcher_reads_back_from_its_text_whatever_the_value(
    name: str, operator: Operator, value: str
) -> None:
    if operator in ("=~", "!~"):
        value = re2.escape(value)  # a regex that matches the text literally
    matcher = Matcher(name, operator, value)
    written = str(matcher)
    assert written.isprintable()  # one line, no control characters: forms and terminals show it
    assert _read(written) == (name, operator, value)
    assert Matcher.parse(written) == matcher


@st.composite
def go_literals(draw: st.DrawFn) -> tuple[str, str]:
    """A text and one of the many Go string literals that stand for it: each character as
    itself, as a one-letter escape, as \\u or \\U, or as its UTF-8 bytes in \\x or octal."""
    value = draw(st.text())
    pieces = []
    for char in value:
        ways = [
            f"\\U{ord(char):08x}",
            "".join(f"\\x{b:02X}" for b in char.encode()),
            "".join(f"\\{b:03o}" for b in char.encode()),
        ]
        if ord(char) <= 0xFFFF:
            ways.append(f"\\u{ord(char):04X}")
        if char in SHORT_ESCAPES:
            ways.append(f"\\{SHORT_ESCAPES[char]}")
        if char in '"\\':
            ways.append(f"\\{char}")
        elif char != "\n":  # Go takes every character as itself but these
            ways.append(char)
        pieces.append(draw(st.sampled_from(ways)))
    return value, '"' + "".join(pieces) + '"'


@given(name=NAMES, before=SPACES, after=SPACES, literal=go_literals())
def test_any_go_quoting_of_a_value_reads_as_that_value(
    name: str, before: str, after: str, literal: tuple[str, str]
) -> None:
    value, quoted = literal
    assert _read(f"{before}{name}{before}!={after}{quoted}{after}") == (name, "!=", value)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('feature="C:\\data"', "\\d is not an escape"),
        ('feature="say "hi""', "unescaped double quote"),
        ('feature=say"hi', "unescaped double quote"),
        ('feature="open', "no closing quote"),
        ('feature="open\\"', "no closing quote"),
        ('feature="\\xff"', "not UTF-8"),
        ('feature="\\ud800"', "\\ud800 is not a character"),
        ('feature="\\400"', "\\400 is not a byte"),
        ("feature=\udc80", "not UTF-8"),
    ],
)
def test_a_value_that_cannot_be_read_is_refused_naming_the_matcher(text: str, reason: str) -> None:
    with pytest.raises(MatcherError) as refused:
        Matcher.parse(text)
    assert repr(text) in str(refused.value) and reason in str(refused.value)


@pytest.mark.parametrize(
    "text", ['model=~"(a)\\\\1"', 'model=~"(?=a)a"', 'model=~"(?!a)b"', 'model!~"(?<=a)b"']
)
def test_a_regex_with_backreferences_or_lookarounds_is_refused(text: str) -> None:
    with pytest.raises(MatcherError, match="bad regular expression") as refused:
        Matcher.parse(text)
    assert "RE2 syntax, no backreferences or lookarounds" in str(refused.value)


@pytest.mark.parametrize(
    ("matcher", "value", "expected"),
    [
        ('model=~"credit-.*"', "credit-risk", True),
        ('model=~"credit-.*"', "old-credit-risk", False),  # anchored at the start
        ('model=~"a|b"', "ab", False),  # and at the end, around the whole alternation
        ('model=~"a"', "a\n", False),  # $ is the end, not a line's end
        ('model=~"é+"', "éé", True),  # characters, not bytes
        ('model=~"\\\\d+"', "42", True),  # the value "\\d+" is the regex \d+
        ("model=~\\d+", "42", True),  # a bare value is as written
    ],
)
def test_a_regex_matches_the_whole_value(matcher: str, value: str, expected: bool) -> None:
    assert Matcher.parse(matcher).matches({"model": value}) is expected


# A regex that backtracks holds the interpreter lock, but pytest-timeout's alarm still stops it
# here, in the main thread: on a regression these fail in seconds rather than hang.
@pytest.mark.timeout(10)
@pytest.mark.parametrize(("pattern", "repeated"), NESTED)
def test_a_regex_with_nested_repetition_answers_at_once_on_a_long_value(
    pattern: str, repeated: str
) -> None:
    matcher = Matcher.parse(f"feature=~{pattern}")
    value = repeated * LONG + "!"  # as many repetitions as it could try, and then no match
    started = time.monotonic()
    assert not matcher.matches({"feature": value})
    assert Matcher.parse(f"feature!~{pattern}").matches({"feature": value})
    assert time.monotonic() - started < 1


@pytest.mark.timeout(10)
def test_a_long_matcher_is_read_or_refused_at_once() -> None:
    # The first took the old grammar cubic time: spaces it could split between its parts.
    started = time.monotonic()
    with pytest.raises(MatcherError):
        Matcher.parse("model=" + " " * LONG + 'x"')
    assert Matcher.parse("model=x" + " " * LONG + "y").value == "x" + " " * LONG + "y"
    with pytest.raises(MatcherError):
        Matcher.parse('model="' + "\\" * (LONG + 1) + '"')
    assert Matcher.parse('model="' + '\\"' * LONG + '"').value == '"' * LONG
    assert time.monotonic() - started < 1


def test_a_nested_regex_silence_from_the_api_does_not_freeze_the_overview(engine: Engine) -> None:
    model = "a" * 200  # the longest model name the store keeps
    with api_client(engine) as api:
        silence = {"matchers": ['model=~"(a+)+b"'], "duration": "1h"}
        created = api.post("/silences", json=silence | {"comment": "x"})
        assert created.status_code == 201, created.text
    with Session(engine) as session:
        session.add(_decision(model))
        session.commit()

    def overview() -> tuple[int, float]:
        engine.dispose(close=False)  # a forked child opens its own connections
        with api_client(engine) as api:
            started = time.monotonic()
            answer = api.get("/ui/")
            return answer.status_code, time.monotonic() - started

    status, seconds = _in_a_child(overview, timeout_s=30)
    assert status == 200 and seconds < 1, (status, seconds)


def _in_a_child(call: Callable[[], Any], timeout_s: float) -> Any:
    """``call``'s answer, computed in a forked process: a regex that backtracks holds the
    interpreter lock, so the server threads of a TestClient would take this process with it
    (as they took the API) and no timeout could fire; a child can be killed."""
    context = multiprocessing.get_context("fork")
    reader, writer = context.Pipe(duplex=False)
    child = context.Process(target=lambda: writer.send(call()), daemon=True)
    child.start()
    try:
        assert reader.poll(timeout_s), f"no answer in {timeout_s} s: the process froze"
        return reader.recv()
    finally:
        child.kill()
        child.join()


def _decision(model: str) -> Decision:
    now = datetime.now(UTC)
    return Decision(
        decision_id=uuid.uuid4(), event_id=uuid.uuid4(), occurred_at=now, service="loan-desk",
        model_name=model, model_version="1", inputs={"income": 1}, output="approve",
        confidence=0.9, latency_ms=1.0, automated=True,
    )  # fmt: skip


ALERTING = """\
route:
  receiver: team
  group_by: [model, feature]
  group_wait: 1s
receivers:
  - name: team
    webhook_configs: [{url: "http://127.0.0.1:9/never-called"}]
"""


def test_a_stored_silence_that_no_longer_parses_is_skipped_logged_and_reported(
    engine: Engine, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    # What the old Matcher.__str__ stored for the value `say "hi"`: it no longer parses.
    broken = _silence(['feature="say "hi""'], now)
    working = _silence(['feature="age"'], now)
    with Session(engine) as session:
        session.add_all([broken, working])
        session.commit()
        found = active_silences(session, now)
    assert [s.id for s in found.silences] == [working.id]
    (unreadable,) = found.unreadable
    assert unreadable.id == broken.id and "unescaped double quote" in unreadable.reason

    path = tmp_path / "alerting.yaml"
    path.write_text(ALERTING)
    clock = [now]
    with httpx.Client() as client:
        # The agent records what is sent, and nothing is.
        router = AlertRouter(
            engine=engine, config=load_alerting(path), agent=None,
            client=client, external_url="http://driftline.example", clock=lambda: clock[0],
            producers=TrustedProducers(),
        )  # fmt: skip
        router.take(_drift("age"))
        with structlog.testing.capture_logs() as logs:
            assert router.tick() == []
            clock[0] = now + timedelta(seconds=2)  # past group_wait: due, and silenced
            assert router.tick() == []
    reported = [e for e in logs if e.get("silence_id") == str(broken.id)]
    assert len(reported) == 1, logs  # once, not on every tick
    assert "unescaped double quote" in reported[0]["reason"]
    assert router.unreadable_silences == {broken.id: unreadable.reason}
    with Session(engine) as session:
        assert session.exec(select(OutboxMessage)).all() == []  # the working one muted it


def _silence(matchers: list[str], now: datetime) -> Silence:
    return Silence(
        id=uuid.uuid4(), matchers=matchers, starts_at=now - timedelta(minutes=1),
        ends_at=now + timedelta(hours=1), created_by="a.kim", comment="x", created_at=now,
    )  # fmt: skip


def _drift(feature: str) -> DriftDetectedEvent:
    return DriftDetectedEvent(
        service="driftline-detector", model=MODEL, payload=DriftPayload(**drift_payload(feature))
    )

"""The accountability map: the file loads as written or names the file, line and key of each
mistake; every gap (no entry, decisions no entry covers, a missing person, path or trail, a
review never made, overdue or dated ahead, a duplicate) is found and named; extreme dates and
odd names neither crash nor slip through; the go-live gate fails a model until its decision
types are mapped and reviewed, and says which setting to set when there is no map."""

import json
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlmodel import Session

from driftline.agent.contract import DecisionPayload, Event, ModelRef, encode
from driftline.collector.consume.ingest import RawMessage, write_batch
from driftline.collector.core.environment import unknown_variables
from driftline.collector.core.settings import CollectorSettings
from driftline.collector.golive.accountability import (
    REVIEW_GAPS,
    AccountabilityConfigError,
    AccountabilityMap,
    Gap,
    accountability_criteria,
    decisions_seen,
    load_accountability,
    survey,
)
from driftline.collector.golive.criteria import Criterion
from driftline.collector.store.synthetic import synthetic_version
from tests import events

ROOT = Path(__file__).parents[2]
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
COMPLETE = {
    "accountable": "head-of-credit-risk",
    "escalation": ["risk-oncall", "head-of-ml", "chief-risk-officer"],
    "audit_trail": "every decision in the ledger, 7 years; reviews and feedback linked",
    "reviewed_on": date(2026, 11, 20),
    "reviewed_by": "model-risk-committee",
}


def entry(model: str = "credit-risk", **fields: Any) -> dict[str, Any]:
    return {"model": model} | COMPLETE | fields


def a_map(*entries: dict[str, Any], **fields: Any) -> AccountabilityMap:
    return AccountabilityMap.model_validate({"decision_types": list(entries)} | fields)


def kinds(gaps: list[Gap]) -> list[str]:
    return [g.kind for g in gaps]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "accountability.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> str:
    with pytest.raises(AccountabilityConfigError) as raised:
        load_accountability(path)
    return "\n".join(raised.value.problems)


# The file


def test_the_shipped_example_covers_the_demo_model_and_is_reviewed() -> None:
    shipped = load_accountability(ROOT / "deploy" / "config" / "accountability.yaml")
    found = survey(shipped, {"credit-risk": {"approve", "decline"}}, now=NOW)
    assert found.gaps == []
    assert {e.entry.output for e in found.entries} == {"approve", "decline"}
    declines = shipped.challenged("credit-risk", "decline")
    assert declines is not None and declines.escalation[-1] == "chief-risk-officer"


def test_the_format_as_the_docstring_writes_it(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "review_every: 180d\n"
        "decision_types:\n"
        "  - model: credit-risk\n"
        "    output: decline\n"
        "    segment: high-debt\n"
        "    accountable: head-of-credit-risk\n"
        "    escalation: [risk-oncall, head-of-ml, chief-risk-officer]\n"
        '    audit_trail: "every decision in the ledger, 7 years"\n'
        "    reviewed_on: 2026-11-20\n"
        "    reviewed_by: model-risk-committee\n"
        "    review_every: 90d\n"
        "  - model: scorer\n"
        "    output: 1\n"  # written bare, read as JSON writes the decision's output
        "  - model: flagger\n"
        "    output: true\n"
        "    accountable: ' '\n"  # blank: missing, a gap rather than a mistake
        "    escalation:\n"
        "    reviewed_on: '2026-11-20'\n",
    )
    found = load_accountability(path)
    first, scorer, flagger = found.decision_types
    assert first.key == ("credit-risk", "decline", "high-debt")
    assert first.escalation == ["risk-oncall", "head-of-ml", "chief-risk-officer"]
    assert first.reviewed_on == date(2026, 11, 20)
    assert found.period(first) == timedelta(days=90)
    assert found.period(scorer) == timedelta(days=180)
    assert (scorer.output, flagger.output) == ("1", "true")
    assert flagger.accountable is None and flagger.escalation == []
    assert flagger.reviewed_on == date(2026, 11, 20)
    assert AccountabilityMap(decision_types=[]).review_every == timedelta(days=180)


def test_every_mistake_is_named_by_file_line_and_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "review_every: soon\n"
        "decision_types:\n"
        "  - model: credit-risk\n"
        "    owner: head-of-credit-risk\n"
        "    review_every: 0s\n"
        "  - model: ''\n"
        "    escalation: [risk-oncall, '  ']\n"
        "    reviewed_on: 20261120\n"
        "    review_every: 600w\n"
        "  - output: decline\n"
        '    accountable: "\\u202ehead-of-risk"\n'
        '    reviewed_by: "a.kim\\nb.osei"\n',
    )
    problems = problems_of(path)
    assert f"{path}:1: review_every: Value error, 'soon' is not a duration" in problems
    assert f"{path}:4: decision_types[0].owner: Extra inputs are not permitted" in problems
    assert f"{path}:5: decision_types[0].review_every: Value error, must be longer" in problems
    assert f"{path}:6: decision_types[1].model:" in problems
    assert f"{path}:7: decision_types[1].escalation[1]: Value error, must not be blank" in problems
    assert f"{path}:8: decision_types[1].reviewed_on: Value error, write a date as YYYY-MM-DD" in (
        problems
    )
    assert f"{path}:9: decision_types[1].review_every: Value error, must be at most" in problems
    assert f"{path}:10: decision_types[2].model: Field required" in problems
    assert f"{path}:11: decision_types[2].accountable: Value error, holds U+202E" in problems
    assert f"{path}:12: decision_types[2].reviewed_by: Value error, holds U+000A" in problems
    assert len(problems.splitlines()) == 10, problems


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("decision_types: []\nreview_every: 1d\n  bad: [\n", ":3: not valid YAML"),
        ("decision_types:\n  - model: m\n    reviewed_on: 2026-02-30\n", ":3: not a valid value"),
        ("- model: m\n", ":1: expected a mapping with review_every and a list"),
        ("review_every: 90d\n", ":1: decision_types: Field required"),
    ],
)
def test_a_file_that_cannot_be_read_says_where(tmp_path: Path, text: str, said: str) -> None:
    path = write(tmp_path, text)
    assert f"{path}{said}" in problems_of(path)


def test_a_missing_file_is_a_mistake_not_a_crash(tmp_path: Path) -> None:
    assert "cannot read" in problems_of(tmp_path / "absent.yaml")


def test_nul_surrogates_and_invisible_marks_are_refused_in_names(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "decision_types:\n"
        '  - model: "credit\\0risk"\n'
        '    segment: "high\\ud800debt"\n'
        '    escalation: ["a.kim\\u200b", "b\\u2066osei"]\n'
        '    audit_trail: "the ledger\\x07"\n',
    )
    problems = problems_of(path)
    assert r"decision_types[0].model: Value error, a NUL character (\u0000)" in problems
    assert ":3: decision_types[0].segment: Input should be a valid string" in problems  # pydantic
    assert "decision_types[0].escalation[0]: Value error, holds U+200B" in problems
    assert "decision_types[0].escalation[1]: Value error, holds U+2066" in problems
    assert "decision_types[0].audit_trail: Value error, holds U+0007" in problems


def test_names_in_any_script_and_markup_load_exactly_as_written(tmp_path: Path) -> None:
    odd = {
        "model": "模型-kredit-ü\u0301",  # a combining accent is part of a name
        "output": "<script>alert(1)</script>",
        "segment": "🏦 high debt",
        "accountable": "Zoë O'Brien & «Söhne»",
        "escalation": ["أحمد", "श्रीनिवास", "<img src=x onerror=alert(1)>"],
        "audit_trail": "line one\n\tline two",
    }
    path = write(tmp_path, yaml.safe_dump({"decision_types": [odd]}, allow_unicode=True))
    (loaded,) = load_accountability(path).decision_types
    assert loaded.model_dump(include=set(odd)) == odd


def test_the_setting_is_known_and_blank_means_none(monkeypatch: pytest.MonkeyPatch) -> None:
    assert unknown_variables({"DRIFTLINE_ACCOUNTABILITY_CONFIG": "/etc/a.yaml"}) == []
    monkeypatch.setenv("DRIFTLINE_ACCOUNTABILITY_CONFIG", " ")
    assert CollectorSettings().accountability_config is None
    monkeypatch.setenv("DRIFTLINE_ACCOUNTABILITY_CONFIG", "/etc/a.yaml")
    assert CollectorSettings().accountability_config == Path("/etc/a.yaml")


# The gaps


def test_a_complete_reviewed_map_has_no_gap() -> None:
    found = survey(a_map(entry()), {"credit-risk": {"approve", "decline"}}, now=NOW)
    assert found.gaps == []
    assert found.entries[0].next_review == datetime(2027, 5, 19, tzinfo=UTC)


def test_a_model_with_decisions_and_no_entry_is_a_gap() -> None:
    found = survey(a_map(entry()), {"credit-risk": set(), "fraud": {"block"}}, now=NOW)
    (gap,) = found.uncovered
    assert (gap.model, gap.kind, gap.entry) == ("fraud", "no entry", None)
    assert "fraud" in gap.what


def test_an_entry_for_a_model_never_seen_is_no_gap() -> None:
    assert survey(a_map(entry("next-year")), {}, now=NOW).gaps == []


def test_decisions_no_entry_covers_are_a_gap_naming_their_outputs() -> None:
    declines = a_map(entry(output="decline"), entry(output="decline", segment="high-debt"))
    (gap,) = survey(declines, {"credit-risk": {"approve", "decline"}}, now=NOW).uncovered
    assert gap.kind == "not covered" and '"approve"' in gap.what and "decline" not in gap.what
    segments_only = a_map(entry(segment="high-debt"))
    (gap,) = survey(segments_only, {"credit-risk": set()}, now=NOW).uncovered
    assert gap.kind == "not covered" and '"high-debt"' in gap.what
    both = a_map(entry(output="approve"), entry(output="decline"))
    assert survey(both, {"credit-risk": {"approve", "decline"}}, now=NOW).gaps == []
    many = {f"class-{n}" for n in range(9)}
    (gap,) = survey(a_map(entry(output="other")), {"credit-risk": many}, now=NOW).uncovered
    assert gap.what.endswith("and 4 more have no entry")


@pytest.mark.parametrize(
    ("missing", "kind"),
    [
        ({"accountable": None}, "no accountable person"),
        ({"escalation": []}, "no escalation path"),
        ({"audit_trail": None}, "no audit trail"),
        ({"reviewed_on": None}, "never reviewed"),
    ],
)
def test_an_entry_missing_a_part_is_a_gap_naming_it(missing: dict[str, Any], kind: str) -> None:
    (status,) = survey(a_map(entry(**missing)), {"credit-risk": set()}, now=NOW).entries
    (gap,) = status.gaps
    assert (gap.kind, gap.entry, gap.decision_type) == (kind, 1, "credit-risk")


def test_an_entry_missing_everything_has_every_gap() -> None:
    bare = AccountabilityMap.model_validate({"decision_types": [{"model": "credit-risk"}]})
    (status,) = survey(bare, {}, now=NOW).entries
    assert kinds(status.gaps) == [
        "no accountable person",
        "no escalation path",
        "no audit trail",
        "never reviewed",
    ]
    assert status.next_review is None


def test_a_review_is_overdue_the_instant_its_period_has_passed() -> None:
    reviewed = a_map(entry(reviewed_on=date(2026, 9, 1), review_every="90d"))
    due = datetime(2026, 11, 30, tzinfo=UTC)
    assert survey(reviewed, {}, now=due).gaps == []
    (gap,) = survey(reviewed, {}, now=due + timedelta(microseconds=1)).gaps
    assert gap.kind == "review overdue"
    assert gap.what == "reviewed on 2026-09-01; due again by 2026-11-30 (every 90d)"
    hours = a_map(entry(reviewed_on=date(2026, 11, 29)), review_every="36h")
    (gap,) = survey(hours, {}, now=NOW).gaps
    assert gap.what.endswith("due again by 2026-11-30 (every 1d12h)")


def test_a_review_dated_after_today_is_a_gap_today_being_utcs() -> None:
    ahead = a_map(entry(reviewed_on=date(2026, 12, 2)))
    (gap,) = survey(ahead, {}, now=NOW).gaps
    assert gap.kind == "review dated in the future" and "2026-12-02" in gap.what
    kiribati = timezone(timedelta(hours=14))  # already 2 December there; 1 December in UTC
    assert survey(ahead, {}, now=datetime(2026, 12, 2, 9, tzinfo=kiribati)).gaps != []
    assert survey(ahead, {}, now=datetime(2026, 12, 2, 0, tzinfo=UTC)).gaps == []


def test_duplicates_of_a_decision_type_are_gaps_naming_the_first() -> None:
    found = survey(
        a_map(entry(output="decline"), entry(), entry(output="decline"), entry(output="decline")),
        {},
        now=NOW,
    )
    assert [kinds(e.gaps) for e in found.entries] == [[], [], ["duplicate"], ["duplicate"]]
    assert found.entries[3].gaps[0].what == "the same decision type as entry 1"
    distinct = a_map(entry(output="decline"), entry(output="decline", segment="high-debt"))
    assert survey(distinct, {}, now=NOW).gaps == []


@pytest.mark.parametrize(
    ("reviewed_on", "now", "found"),
    [
        (date(1, 1, 1), NOW, ["review overdue"]),
        (date(9999, 12, 31), NOW, ["review dated in the future"]),
        (date(9999, 12, 31), datetime(9999, 12, 31, 23, 59, tzinfo=UTC), []),  # due in 10000
        (date(1, 1, 1), datetime(1, 1, 1, tzinfo=UTC), []),
        (date(2026, 11, 20), datetime.max.replace(tzinfo=UTC), ["review overdue"]),
    ],
)
def test_extreme_dates_are_judged_without_overflow(
    reviewed_on: date, now: datetime, found: list[str]
) -> None:
    longest = a_map(entry(reviewed_on=reviewed_on, review_every="3660d"))
    (status,) = survey(longest, {}, now=now).entries
    assert kinds(status.gaps) == found
    if reviewed_on == date(1, 1, 1) and now == NOW:
        assert "due again by 0011-01-09" in status.gaps[0].what  # years padded to four digits


def test_a_challenged_decision_goes_to_its_output_entry_else_the_models() -> None:
    found = a_map(
        entry(output="decline", segment="high-debt", escalation=["board"]),
        entry(output="decline", escalation=["risk-oncall", "cro"]),
        entry(escalation=["risk-oncall"]),
        entry("flagger", output="true", escalation=["fraud-lead"]),
    )
    decline = found.challenged("credit-risk", "decline")
    assert decline is not None and decline.escalation == ["risk-oncall", "cro"]
    approve = found.challenged("credit-risk", "approve")
    assert approve is not None and approve.escalation == ["risk-oncall"]
    other = found.challenged("credit-risk", {"text": "a generated answer"})
    assert other is not None and other.output is None
    flagged = found.challenged("flagger", True)
    assert flagged is not None and flagged.escalation == ["fraud-lead"]
    assert found.challenged("flagger", False) is None
    assert found.challenged("unknown", "approve") is None


# Properties

storable = st.characters(exclude_characters="\x00", exclude_categories=("Cs",))
names = st.text(storable, min_size=1, max_size=12)
maybe = st.none() | st.sampled_from(["approve", "decline", "refer"])
entries = st.fixed_dictionaries(
    {"model": st.sampled_from(["credit-risk", "fraud", "chat"]), "output": maybe},
    optional={
        "segment": st.none() | st.sampled_from(["high-debt", "young"]),
        "accountable": st.none() | st.just("head-of-risk"),
        "escalation": st.lists(st.just("risk-oncall"), max_size=2),
        "audit_trail": st.none() | st.just("the ledger"),
        "reviewed_on": st.none() | st.dates(),
        "review_every": st.sampled_from(["1d", "90d", "3660d", "12h"]),
    },
)
seen_models = st.dictionaries(
    st.sampled_from(["credit-risk", "fraud", "chat", "other"]),
    st.frozensets(st.sampled_from(["approve", "decline", "refer", "1"])),
)
moments = st.datetimes(timezones=st.just(UTC)) | st.datetimes(
    datetime(2, 1, 1), datetime(9998, 12, 31), timezones=st.timezones()
)


@settings(max_examples=300, deadline=None)
@given(st.lists(entries, max_size=8), seen_models, moments)
def test_a_map_round_trips_and_its_gaps_follow_from_it_and_what_was_seen(
    listed: list[dict[str, Any]], seen: dict[str, frozenset[str]], now: datetime
) -> None:
    accountability = a_map(*listed)
    assert AccountabilityMap.model_validate_json(accountability.model_dump_json()) == accountability
    found = survey(accountability, seen, now=now)
    assert [e.gaps for e in found.entries] == [
        e.gaps for e in survey(accountability, {}, now=now).entries
    ]
    duplicates = sum(kinds(e.gaps).count("duplicate") for e in found.entries)
    keys = [e.key for e in accountability.decision_types]
    assert duplicates == len(keys) - len(set(keys))
    assert {g.model for g in found.uncovered} <= set(seen)
    covering = {
        e.model for e in accountability.decision_types if e.output is None and e.segment is None
    }
    assert not {g.model for g in found.uncovered} & covering
    assert {g.model for g in found.uncovered if g.kind == "no entry"} == set(seen) - {
        e.model for e in accountability.decision_types
    }
    for status in found.entries:
        late = [g for g in status.gaps if g.kind in REVIEW_GAPS]
        assert len(late) <= 1
        if status.next_review is not None and not late:
            assert status.next_review >= now


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(names, min_size=1, max_size=4))
def test_any_name_round_trips_or_is_refused_with_its_place(
    tmp_path: Path, written: list[str]
) -> None:
    """Whatever a YAML file can hold as a name, it loads exactly, or the mistake names its
    line and key; no other error escapes."""
    document = {"decision_types": [{"model": written[0], "escalation": written[1:]}]}
    path = tmp_path / f"{uuid.uuid4().hex}.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")  # escaped: NEL is a line break
    try:
        (loaded,) = load_accountability(path).decision_types
    except AccountabilityConfigError as error:
        assert all(p.startswith(f"{path}:") for p in error.problems), error.problems
        assert all(".model:" in p or ".escalation[" in p for p in error.problems), error.problems
        return
    assert [loaded.model, *loaded.escalation] == written
    json.dumps(loaded.model_dump(mode="json"))


# The go-live gate


def store_decisions(engine: Engine, batch: list[Event]) -> None:
    with Session(engine) as session:
        messages = [RawMessage("events", n % 3, n, None, encode(e)) for n, e in enumerate(batch)]
        write_batch(session, messages)
        session.commit()


def classified(output: Any, model: ModelRef = events.MODEL) -> Event:
    return events.decision(
        model=model,
        payload=DecisionPayload(
            inputs={"income": 1}, output=output, confidence=0.9, latency_ms=1.0, automated=True
        ),
    )


@pytest.fixture
def seen(engine: Engine) -> Engine:
    """credit-risk approved and declined; fraud deployed, no decision yet; loadtest decided
    only under a load test's synthetic version."""
    load = ModelRef(name="loadtest", version=synthetic_version("3", "load", NOW))
    store_decisions(
        engine,
        [
            classified("approve"),
            classified("decline"),
            classified(True, ModelRef(name="flagger", version="1")),
            classified({"text": "hello"}, ModelRef(name="chat", version="1")),
            classified("approve", load),
            events.deployment(model=ModelRef(name="fraud", version="3")),
        ],
    )
    return engine


def test_the_models_seen_are_those_decided_or_deployed_with_their_classes(seen: Engine) -> None:
    with Session(seen) as session:
        found = decisions_seen(session, outputs_of={"credit-risk", "flagger", "chat"})
        assert found == {
            "credit-risk": {"approve", "decline"},
            "flagger": {"true"},
            "chat": frozenset(),
            "fraud": frozenset(),
        }
        assert decisions_seen(session, models=["fraud"]) == {"fraud": frozenset()}
        assert decisions_seen(session)["credit-risk"] == frozenset()  # classes only when asked


def criteria(engine: Engine, accountability: AccountabilityMap | None) -> dict[str, Criterion]:
    with Session(engine) as session:
        found = accountability_criteria(accountability, session, model="credit-risk", now=NOW)
    assert {c.area for c in found} == {"governance"}
    return {c.name: c for c in found}


def test_the_gate_passes_a_mapped_reviewed_model(seen: Engine) -> None:
    found = criteria(seen, a_map(entry(output="approve"), entry(output="decline")))
    assert {n: c.status for n, c in found.items()} == {
        "accountability map": "pass",
        "accountability review": "pass",
    }
    assert found["accountability map"].measured == "2 entries, none with a gap"
    assert found["accountability review"].measured == "next due by 2027-05-19"
    assert found["accountability review"].sample == 2


def test_the_gate_fails_an_output_without_entry_and_an_overdue_review(seen: Engine) -> None:
    found = criteria(seen, a_map(entry(output="approve", reviewed_on=date(2025, 1, 1))))
    assert found["accountability map"].status == "fail"
    assert found["accountability map"].measured == "credit-risk: not covered"
    assert found["accountability review"].status == "fail"
    assert found["accountability review"].measured == "credit-risk, output approve: review overdue"


def test_the_gate_judges_only_the_model_it_is_asked_about(seen: Engine) -> None:
    others = a_map(entry(), entry("fraud", accountable=None, reviewed_on=None))
    assert {c.status for c in criteria(seen, others).values()} == {"pass"}


def test_the_gate_fails_a_model_without_entry_even_before_its_first_decision(
    engine: Engine,
) -> None:
    found = criteria(engine, a_map(entry("fraud")))
    assert found["accountability map"].status == "fail"
    assert found["accountability map"].measured == "credit-risk: no entry"
    assert found["accountability review"].measured == "no entry to review"


def test_the_gate_without_a_map_says_which_setting_to_set(seen: Engine) -> None:
    (only,) = criteria(seen, None).values()
    assert only.status == "fail" and "DRIFTLINE_ACCOUNTABILITY_CONFIG" in (only.measured or "")


def test_the_gates_figures_fit_a_readiness_event_however_long_the_names(seen: Engine) -> None:
    long = "x" * 200
    many = a_map(
        *(entry(output=f"{n}{long}"[:200], segment=long, accountable=None) for n in range(9))
    )
    for criterion in criteria(seen, many).values():
        assert len(criterion.measured or "") <= 2_000 and len(criterion.threshold) <= 500

"""The data-contract review: the contracts file keeps its old form for the agent and grows
sources and consumers, every mistake named by file, line and key; each source's owner,
freshness and quality SLA and each consumer's owner, output schema and latency tolerance pass
and fail on stored decisions; too few decisions is never a pass; hostile files are refused."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from sqlalchemy import Engine, update
from sqlmodel import Session

from driftline.agent.contract import DecisionPayload, Event
from driftline.agent.input_contracts import ContractCheck, InputContractError
from driftline.agent.input_contracts import load_contracts as agent_contracts
from driftline.collector.golive.contracts import (
    Contracts,
    ContractsFileError,
    ModelContract,
    _names,
    load_contracts,
    review,
)
from driftline.collector.golive.criteria import Criterion
from driftline.collector.store.ledger import TOMBSTONE
from driftline.collector.store.models import Decision
from tests import events
from tests.collector.test_drift_worker import store
from tests.strategies import storable

ROOT = Path(__file__).parents[2]
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SINCE = NOW - timedelta(days=1)
SCHEMA = """\
    type: object
    required: [income, region]
    properties:
      income: {type: number, minimum: 0}
      debt_ratio: {type: number, minimum: 0, maximum: 5}
      age: {type: integer, minimum: 18}
      region: {enum: [north, south, east, west]}
"""
OLD_FORM = "credit-risk:\n" + SCHEMA.replace("    ", "  ", 1).replace("\n    ", "\n  ")
NEW_FORM = f"""\
credit-risk:
  inputs:
{SCHEMA}\
  sources:
    - name: bureau
      fields: [income, debt_ratio]
      owner: bureau-data-team
      update_every: 1h
      max_missing_rate: 0.05
      max_violation_rate: 0.05
      fallback: scored on the form alone, every decision reviewed
    - name: applicant_form
      fields: [age, region]
      owner: loan-desk-frontend
      update_every: 1h
      max_missing_rate: 0.05
      fallback: the form refuses incomplete applications
  consumers:
    - name: loan-origination
      owner: lending-platform
      output_schema: {{enum: [approve, decline]}}
      latency_tolerance_ms: 50
      consequence: the application stops at the origination desk
"""
GOOD_INPUTS = {"income": 52_000, "debt_ratio": 0.3, "age": 40, "region": "north"}


def write(tmp_path: Path, text: str, name: str = "contracts.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def contract(tmp_path: Path, text: str = NEW_FORM) -> ModelContract:
    found = load_contracts(write(tmp_path, text)).for_model("credit-risk")
    assert found is not None
    return found


def problems(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(ContractsFileError) as raised:
        load_contracts(path)
    return [p.removeprefix(f"{path}:") for p in raised.value.problems]


def decisions(
    count: int,
    *,
    inputs: dict[str, Any] | None = None,
    output: Any = "approve",
    latency_ms: float = 10.0,
    violations: list[str] | None = None,
    end: datetime = NOW,
    step: timedelta = timedelta(minutes=1),
) -> list[Event]:
    """``count`` decisions of credit-risk 3, the last at ``end``, one every ``step`` before."""
    return [
        events.decision(
            occurred_at=end - n * step,
            payload=DecisionPayload(
                inputs=GOOD_INPUTS if inputs is None else inputs,
                output=output,
                confidence=0.9,
                latency_ms=latency_ms,
                automated=True,
                contract_violations=violations or [],
            ),
        )
        for n in range(count)
    ]


def reviewed(
    engine: Engine, entry: ModelContract | None, *, since: datetime = SINCE, now: datetime = NOW
) -> dict[str, Criterion]:
    with Session(engine) as session:
        found = review(session, entry, model="credit-risk", version="3", since=since, now=now)
    assert all(c.area == "data" for c in found)
    return {c.name: c for c in found}


# The file: old and new forms.


def test_a_bare_schema_reads_as_before_for_the_agent_and_as_inputs_for_the_collector(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, OLD_FORM)
    (validator,) = agent_contracts(path).values()
    assert [e.message for e in validator.iter_errors({"income": -1, "region": "north"})] == [
        "-1 is less than the minimum of 0"
    ]
    entry = load_contracts(path).for_model("credit-risk")
    assert entry is not None and entry.inputs == validator.schema
    assert entry.sources == [] and entry.consumers == []


def test_the_new_form_gives_the_agent_its_inputs_schema_and_nothing_else(tmp_path: Path) -> None:
    old = agent_contracts(write(tmp_path, OLD_FORM, "old.yaml"))
    new = agent_contracts(write(tmp_path, NEW_FORM, "new.yaml"))
    assert new["credit-risk"].schema == old["credit-risk"].schema
    for inputs in (GOOD_INPUTS, {"income": "lots"}, {"region": "mars", "age": 3}, []):
        marked = []
        for validators in (old, new):
            document = {"type": "decision", "model": {"name": "credit-risk"},
                        "payload": {"inputs": inputs}}  # fmt: skip
            ContractCheck(validators)(document)
            marked.append(document["payload"]["contract_violations"])  # type: ignore[index]
        assert marked[0] == marked[1]


def test_an_entry_with_only_sources_gives_the_agent_no_contract_for_that_model(
    tmp_path: Path,
) -> None:
    text = NEW_FORM.replace("  inputs:\n" + SCHEMA, "")
    assert agent_contracts(write(tmp_path, text)) == {}
    assert contract(tmp_path, text).inputs is None


def test_the_agent_names_a_schema_key_left_beside_inputs_and_a_broken_inputs_schema(
    tmp_path: Path,
) -> None:
    beside = write(tmp_path, "credit-risk:\n  type: object\n  sources: []\n")
    with pytest.raises(InputContractError, match=r"credit-risk: type: not a key of a contract"):
        agent_contracts(beside)
    broken = write(tmp_path, "credit-risk:\n  inputs: {type: objekt}\n")
    with pytest.raises(InputContractError, match=r"credit-risk: inputs\.type: "):
        agent_contracts(broken)


def test_the_example_file_loads_in_both_and_the_demo_decisions_meet_it() -> None:
    path = ROOT / "deploy" / "config" / "contracts.yaml"
    entry = load_contracts(path).for_model("credit-risk")
    assert entry is not None
    assert {s.name for s in entry.sources} >= {"bureau", "applicant_form"}
    assert all(s.owner and s.fallback for s in entry.sources)
    assert all(c.owner and c.consequence for c in entry.consumers)
    demo = {"income": 49_000, "age": 21, "debt_ratio": 0.287, "employment_years": 0,
            "region": "west"}  # fmt: skip
    assert list(agent_contracts(path)["credit-risk"].iter_errors(demo)) == []
    for consumer in entry.consumers:
        if consumer.output_schema is not None:
            checking = Draft202012Validator(consumer.output_schema)
            assert checking.is_valid("approve") and checking.is_valid("decline")


def test_every_mistake_is_named_with_its_file_line_and_key(tmp_path: Path) -> None:
    text = """\
credit-risk:
  inputs:
    type: object
    properties: {income: {type: number}, region: {type: string}}
  sources:
    - name: bureau
      fields: [income, salary]
      update_every: soon
      max_missing_rate: 2
      fallback: scored on the form alone
      colour: blue
    - name: bureau
      fields: [income]
      update_every: 0s
      fallback: none
    - name: form
      fields: [region]
      update_every: 1h
  consumers:
    - name: origination
      output_schema: {type: strang}
      latency_tolerance_ms: -5
"""
    assert sorted(problems(tmp_path, text)) == sorted(
        [
            "8: credit-risk.sources[0].update_every: Value error, 'soon' is not a duration; "
            "write e.g. 30s, 5m, 1h30m, 500ms",
            "9: credit-risk.sources[0].max_missing_rate: Input should be less than or equal to 1",
            "11: credit-risk.sources[0].colour: Extra inputs are not permitted",
            "14: credit-risk.sources[1].update_every: Value error, must be longer than 0s",
            "16: credit-risk.sources[2].fallback: Field required",
            "22: credit-risk.consumers[0].latency_tolerance_ms: Input should be greater than 0",
            "20: credit-risk.consumers[0].consequence: Field required",
        ]
    )


def test_a_source_field_missing_from_the_schema_and_names_used_twice_are_named(
    tmp_path: Path,
) -> None:
    text = NEW_FORM.replace("fields: [age, region]", "fields: [age, region, salary, income]")
    text = text.replace("name: applicant_form", "name: bureau")
    text += "    - name: loan-origination\n      consequence: twice\n"
    text += "      output_schema: {type: strang}\n"
    assert problems(tmp_path, text) == [
        "18: credit-risk.sources[1].name: another source is named 'bureau'",
        "19: credit-risk.sources[1].fields[2]: 'salary' is not in the inputs' properties",
        "19: credit-risk.sources[1].fields[3]: 'income' is supplied by 'bureau'",
        "30: credit-risk.consumers[1].name: another consumer is named 'loan-origination'",
        "32: credit-risk.consumers[1].output_schema.type: not a valid JSON Schema: 'strang' is "
        "not valid under any of the given schemas",
    ]


def test_a_broken_bare_schema_is_named_at_its_own_key(tmp_path: Path) -> None:
    assert problems(tmp_path, "credit-risk:\n  type: objekt\n") == [
        "2: credit-risk.type: not a valid JSON Schema: 'objekt' is not valid under any of the "
        "given schemas"
    ]
    assert problems(tmp_path, "credit-risk: 12\n") == [
        "1: credit-risk: Value error, expected a JSON Schema, or a mapping of inputs, sources, "
        "consumers"
    ]
    assert problems(tmp_path, "- credit-risk\n") == ["1: expected a mapping of model name to "
                                                     "its contract"]  # fmt: skip


ONE_SOURCE = """\
credit-risk:
  inputs: {{properties: {{income: {{type: number}}}}}}
  sources:
    - name: {name}
      fields: [income]
      owner: {owner}
      update_every: {update_every}
      max_missing_rate: {max_missing_rate}
      max_violation_rate: {max_violation_rate}
      fallback: {fallback}
"""
PLAIN = {"name": "bureau", "owner": "team", "update_every": "1h", "max_missing_rate": "0.1",
         "max_violation_rate": "0.1", "fallback": "form only"}  # fmt: skip


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("name", '"bur\\0eau"'),  # NUL
        ("name", '"bur\\u202eeau"'),  # right-to-left override
        ("name", '"bur\\u200beau"'),  # zero-width space
        ("name", '"\\ud800"'),  # a lone surrogate
        ("name", '"   "'),
        ("name", "x" * 101),
        ("owner", '"team\\nother"'),
        ("fallback", '"\\x1b[31mred"'),
        ("max_missing_rate", "1e400"),
        ("max_missing_rate", ".nan"),
        ("max_violation_rate", "-0.1"),
        ("max_violation_rate", "99999999999999999999"),
        ("update_every", "99999999999999999999w"),
        ("update_every", "-1h"),
    ],
)
def test_hostile_values_are_refused_with_their_line(tmp_path: Path, key: str, value: str) -> None:
    assert load_contracts(write(tmp_path, ONE_SOURCE.format(**PLAIN))).for_model("credit-risk")
    (problem,) = problems(tmp_path, ONE_SOURCE.format(**PLAIN | {key: value}))
    line = 4 + list(PLAIN).index(key) + (key != "name")
    assert problem.startswith(f"{line}: credit-risk.sources[0].{key}: "), problem


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.text(st.characters(exclude_categories=("Cs",)), max_size=120),
    owner=st.text(st.characters(exclude_categories=("Cs",)), max_size=30),
    rate=st.floats() | st.integers(-(10**30), 10**30),
)
def test_any_text_or_number_either_loads_as_printable_or_is_named(
    tmp_path: Path, name: str, owner: str, rate: float
) -> None:
    document = yaml.safe_load(NEW_FORM)
    source = document["credit-risk"]["sources"][0]
    source.update(name=name, owner=owner, max_missing_rate=rate)
    path = write(tmp_path, yaml.safe_dump(document, allow_unicode=False))
    try:
        entry = load_contracts(path).for_model("credit-risk")
    except ContractsFileError as error:
        assert all(p.startswith(f"{path}:") and ": credit-risk." in p for p in error.problems)
        return
    assert entry is not None
    loaded = entry.sources[0]
    assert loaded.name.isprintable() and 0 < len(loaded.name) <= 100 and loaded.name.strip()
    assert loaded.owner is not None and loaded.owner.isprintable()
    assert loaded.max_missing_rate is not None and 0 <= loaded.max_missing_rate <= 1


# The review: each check passing and failing on stored decisions.


def test_a_version_that_keeps_every_contract_passes_every_criterion(
    tmp_path: Path, engine: Engine
) -> None:
    store(engine, decisions(200))
    found = reviewed(engine, contract(tmp_path))
    assert {name: c.status for name, c in found.items()} == {
        "source bureau: owner": "pass",
        "source bureau: freshness": "pass",
        "source bureau: missing rate": "pass",
        "source bureau: violation rate": "pass",
        "source applicant_form: owner": "pass",
        "source applicant_form: freshness": "pass",
        "source applicant_form: missing rate": "pass",
        "consumer loan-origination: owner": "pass",
        "consumer loan-origination: output schema": "pass",
        "consumer loan-origination: latency": "pass",
    }
    assert found["source bureau: owner"].measured == "bureau-data-team"
    assert found["source bureau: freshness"].measured == "last seen 0s ago (2026-03-02 12:00:00Z)"
    assert found["source bureau: missing rate"].measured == "0.00% (0 of 200)"
    assert found["source bureau: missing rate"].sample == 200
    assert found["consumer loan-origination: latency"].measured == "p99 10.0 ms"


def test_a_source_not_seen_within_its_update_frequency_is_stale(
    tmp_path: Path, engine: Engine
) -> None:
    """The bureau feed stopped three hours ago: decisions go on, without its fields."""
    without = {"age": 40, "region": "north"}
    store(engine, decisions(60, inputs=without, end=NOW, step=timedelta(minutes=3)))
    store(engine, decisions(10, end=NOW - timedelta(hours=3, minutes=5)))
    found = reviewed(engine, contract(tmp_path))
    stale = found["source bureau: freshness"]
    assert (stale.status, stale.threshold) == ("fail", "seen within 1h")
    assert stale.measured == "last seen 3h5m ago (2026-03-02 08:55:00Z)"
    assert found["source applicant_form: freshness"].status == "pass"


def test_freshness_looks_before_a_short_window_as_far_as_the_update_frequency(
    tmp_path: Path, engine: Engine
) -> None:
    daily = contract(tmp_path, NEW_FORM.replace("update_every: 1h", "update_every: 1d", 1))
    store(engine, decisions(5, end=NOW - timedelta(hours=5)))
    store(engine, decisions(5, inputs={"age": 40, "region": "north"}, end=NOW))
    found = reviewed(engine, daily, since=NOW - timedelta(minutes=30))
    assert found["source bureau: freshness"].status == "pass"
    assert found["source bureau: freshness"].measured.startswith("last seen 5h ago")  # type: ignore[union-attr]
    found = reviewed(
        engine, daily, since=NOW - timedelta(minutes=30), now=NOW + timedelta(hours=20)
    )
    assert found["source bureau: freshness"].status == "fail"
    assert found["source bureau: freshness"].measured == "not seen in 1d"


def test_missing_fields_over_the_sla_fail_and_null_counts_as_missing(
    tmp_path: Path, engine: Engine
) -> None:
    store(engine, decisions(90))
    store(
        engine,
        decisions(6, inputs=GOOD_INPUTS | {"debt_ratio": None}, end=NOW - timedelta(hours=2)),
    )
    store(engine, decisions(4, inputs={"age": 40, "region": "north"}, end=NOW - timedelta(hours=3)))
    found = reviewed(engine, contract(tmp_path))
    missing = found["source bureau: missing rate"]
    assert (missing.status, missing.measured, missing.sample) == ("fail", "10.00% (10 of 100)", 100)
    assert missing.threshold == "≤ 5.00% lack one of its fields"
    assert found["source applicant_form: missing rate"].status == "pass"


def test_violations_count_against_the_source_whose_field_they_name(
    tmp_path: Path, engine: Engine
) -> None:
    """Worded as the agent words them: a field's rule, a nested field's, a required list."""
    store(engine, decisions(90))
    store(engine, decisions(3, violations=["income: minimum 0"], end=NOW - timedelta(hours=2)))
    store(
        engine, decisions(2, violations=["debt_ratio.x: type number"], end=NOW - timedelta(hours=3))
    )
    store(engine, decisions(1, violations=["inputs: required region, income"],
                            end=NOW - timedelta(hours=4)))  # fmt: skip
    store(engine, decisions(4, violations=["age: minimum 18", "inputs: required region"],
                            end=NOW - timedelta(hours=5)))  # fmt: skip
    found = reviewed(engine, contract(tmp_path))
    breach = found["source bureau: violation rate"]
    assert (breach.status, breach.measured) == ("fail", "6.00% (6 of 100)")
    assert "source applicant_form: violation rate" not in found  # it has no such SLA


@settings(max_examples=100, deadline=None)
@given(
    field=st.text(storable, min_size=1, max_size=20),
    other=st.text(storable, min_size=1, max_size=20),
)
def test_a_violation_the_agent_words_is_found_to_name_its_field(field: str, other: str) -> None:
    schema = {"type": "object", "required": [field],
              "properties": {field: {"type": "integer", "minimum": 0}}}  # fmt: skip
    for inputs in ({field: "text"}, {field: -1}, {}):
        document = {"type": "decision", "model": {"name": "m"}, "payload": {"inputs": inputs}}
        ContractCheck({"m": Draft202012Validator(schema)})(document)
        (violation,) = document["payload"]["contract_violations"]  # type: ignore[index]
        assert _names(violation, [field])
        unrelated = other != field and not other.startswith(f"{field}.")
        unrelated = unrelated and not field.startswith((f"{other}.", f"{other}: ", f"{other}, "))
        unrelated = unrelated and f", {other}, " not in f", {field}, "
        if unrelated and inputs:
            assert not _names(violation, [other])


def test_outputs_that_break_a_consumers_schema_fail_unless_its_rate_allows_them(
    tmp_path: Path, engine: Engine
) -> None:
    store(engine, decisions(98))
    store(engine, decisions(1, output="maybe", end=NOW - timedelta(hours=3)))
    store(engine, decisions(1, output={"label": "approve"}, end=NOW - timedelta(hours=4)))
    broken = reviewed(engine, contract(tmp_path))["consumer loan-origination: output schema"]
    assert (broken.status, broken.measured) == ("fail", "2.00% (2 of 100)")
    assert broken.threshold == "none break its output schema"
    lenient = NEW_FORM.replace("latency_tolerance_ms: 50", "latency_tolerance_ms: 50\n"
                               "      max_output_violation_rate: 0.02")  # fmt: skip
    allowed = reviewed(engine, contract(tmp_path, lenient))[
        "consumer loan-origination: output schema"
    ]
    assert (allowed.status, allowed.threshold) == ("pass", "≤ 2.00% break its output schema")


def test_a_latency_p99_over_the_consumers_tolerance_fails(tmp_path: Path, engine: Engine) -> None:
    store(engine, decisions(97, latency_ms=10))
    store(engine, decisions(3, latency_ms=400, end=NOW - timedelta(hours=2)))
    slow = reviewed(engine, contract(tmp_path))["consumer loan-origination: latency"]
    assert (slow.status, slow.threshold, slow.sample) == ("fail", "p99 ≤ 50 ms", 100)
    assert slow.measured == "p99 400.0 ms"


def test_a_source_or_consumer_without_an_owner_fails(tmp_path: Path, engine: Engine) -> None:
    store(engine, decisions(20))
    text = NEW_FORM.replace("      owner: bureau-data-team\n", "")
    text = text.replace("      owner: lending-platform\n", "")
    found = reviewed(engine, contract(tmp_path, text))
    for name in ("source bureau: owner", "consumer loan-origination: owner"):
        assert (found[name].status, found[name].measured) == ("fail", "none named")
    assert found["source applicant_form: owner"].status == "pass"


def test_no_decisions_in_the_window_is_not_enough_data_never_a_pass(
    tmp_path: Path, engine: Engine
) -> None:
    store(engine, decisions(50, end=NOW - timedelta(days=3)))  # before the window
    found = reviewed(engine, contract(tmp_path))
    for name, criterion in found.items():
        if not name.endswith(": owner"):
            assert criterion.status == "not enough data", name
    with Session(engine) as session:
        thin = review(session, contract(tmp_path), model="credit-risk", version="3",
                      since=NOW - timedelta(days=4), now=NOW, min_decisions=51)  # fmt: skip
    assert {c.name: c.status for c in thin}["source bureau: missing rate"] == "not enough data"


def test_erased_inputs_count_neither_as_missing_nor_as_seen(tmp_path: Path, engine: Engine) -> None:
    store(engine, decisions(10, end=NOW - timedelta(hours=2)))
    with Session(engine) as session:
        session.execute(update(Decision).values(inputs={TOMBSTONE: {"by": "dpo"}}))
        session.commit()
    store(engine, decisions(10, end=NOW - timedelta(hours=5)))
    found = reviewed(engine, contract(tmp_path))
    assert found["source bureau: missing rate"].measured == "0.00% (0 of 10)"
    assert found["source bureau: freshness"].measured.startswith("last seen 5h ago")  # type: ignore[union-attr]
    assert found["consumer loan-origination: output schema"].sample == 20


def test_other_versions_and_models_are_not_counted(tmp_path: Path, engine: Engine) -> None:
    store(engine, decisions(10))
    other = [d.model_copy(update={"model": events.MODEL.model_copy(update={"version": "4"}),
                                  "decision_id": events.new_event_id(),
                                  "event_id": events.new_event_id()})
             for d in decisions(10, output="maybe")]  # fmt: skip
    store(engine, other)
    found = reviewed(engine, contract(tmp_path))
    assert found["consumer loan-origination: output schema"].measured == "0.00% (0 of 10)"


def test_a_model_without_an_entry_or_without_sources_and_consumers_fails(
    tmp_path: Path, engine: Engine
) -> None:
    (none,) = reviewed(engine, None).values()
    assert (none.name, none.status, none.measured) == (
        "data contract",
        "fail",
        "none for credit-risk",
    )
    bare = load_contracts(write(tmp_path, OLD_FORM)).for_model("credit-risk")
    found = reviewed(engine, bare)
    assert {n: c.status for n, c in found.items()} == {
        "data sources": "fail",
        "data consumers": "fail",
    }


def test_extreme_times_and_durations_give_figures_not_errors(
    tmp_path: Path, engine: Engine
) -> None:
    store(engine, decisions(20))
    forever = contract(tmp_path, NEW_FORM.replace("update_every: 1h", "update_every: 99999999d"))
    earliest, latest = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
    found = reviewed(engine, forever, since=earliest, now=latest)
    assert found["source bureau: freshness"].status == "pass"
    assert found["source bureau: missing rate"].sample == 20
    found = reviewed(engine, forever, since=latest, now=earliest)  # an empty window
    assert found["source bureau: missing rate"].status == "not enough data"
    assert found["source bureau: freshness"].status == "not enough data"


def test_fallbacks_are_given_per_model_and_input(tmp_path: Path) -> None:
    contracts = load_contracts(write(tmp_path, NEW_FORM))
    assert isinstance(contracts, Contracts)
    assert contracts.fallbacks() == {
        "credit-risk": {
            "income": "bureau: scored on the form alone, every decision reviewed",
            "debt_ratio": "bureau: scored on the form alone, every decision reviewed",
            "age": "applicant_form: the form refuses incomplete applications",
            "region": "applicant_form: the form refuses incomplete applications",
        }
    }

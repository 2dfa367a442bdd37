"""The go-live decision, attacked: durations and digests that must read back as they were
written, agreements in one microsecond, altered in the store or recorded by an earlier
Driftline, a verdict given before anything was agreed, a run of a superseded evaluation set,
extreme windows and deadlines, markup and control characters in names, forged events, and the
data-contract review on 100,000 decisions. Every failure is a clear error or a figure, never a
crash (an uncaught exception exits 1, which a pipeline reads as "no-go")."""

import json
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

from driftline.agent.contract import ModelRef, component_event, encode
from driftline.agent.provenance import ProducerKey, TrustedProducers
from driftline.collector.cli.golive import _deadline
from driftline.collector.cli.main import app
from driftline.collector.consume.ingest import RawMessage, write_batch
from driftline.collector.core.durations import format_duration, parse_duration
from driftline.collector.golive.agreements import (
    AgreementError,
    _digest,
    agreement_for,
    agreement_payload,
    threshold_digest,
)
from driftline.collector.golive.contracts import load_contracts, review
from driftline.collector.golive.evalruns import registration
from driftline.collector.golive.evalsets import load_set
from driftline.collector.golive.gate import Agreed, evaluate
from driftline.collector.golive.thresholds import (
    Evaluation,
    ReadinessConfigError,
    Threshold,
    load_thresholds,
)
from driftline.collector.runtime.simulation import decide
from driftline.collector.store import bulk
from driftline.collector.store.models import AgreedThresholds, DeadLetter, Decision
from driftline.collector.store.projections import row_for
from tests import events
from tests.readiness.test_gate_agreement import EXAMPLE, record_run, store

NOW = datetime.now(UTC)
MODEL = "credit-risk"


# Durations: what a file can hold reads back as itself.

milliseconds = st.integers(0, timedelta.max // timedelta(milliseconds=1))


@given(milliseconds)
def test_every_duration_a_file_can_hold_reads_back_exactly(ms: int) -> None:
    duration = timedelta(milliseconds=ms)
    text = format_duration(duration)
    assert parse_duration(text) == duration
    assert format_duration(parse_duration(text)) == text


@given(st.timedeltas(min_value=timedelta(0)))
def test_any_duration_formats_to_text_that_reads_back_to_its_millisecond(value: timedelta) -> None:
    assert parse_duration(format_duration(value)) == value // timedelta(milliseconds=1) * (
        timedelta(milliseconds=1)
    )


def test_long_durations_keep_their_milliseconds_and_the_longest_reads_back() -> None:
    long = timedelta(days=99_999_999, milliseconds=123)
    assert parse_duration(format_duration(long)) == long  # a float sum lost 47 µs
    assert parse_duration(format_duration(timedelta.max)) <= timedelta.max
    assert format_duration(-timedelta(days=1)) == "0s"


@pytest.mark.parametrize("text", ["\u0667d", "7d\n", " 7d", "7", "", "1x", "9" * 5_000 + "d"])
def test_a_duration_is_ascii_whole_and_bounded_or_a_clear_error(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


# Thresholds: the digest of what was agreed is that of the file read again.

thresholds = st.builds(
    Threshold,
    model=st.sampled_from(["credit-risk", "模型", "a b"]),
    window=st.integers(1, 36_500 * 86_400_000).map(lambda ms: timedelta(milliseconds=ms)),
    min_decisions=st.integers(1, 10**12),
    technical=st.fixed_dictionaries(
        {},
        optional={
            "latency_p95_ms": st.floats(min_value=1e-300, max_value=1e300),
            "max_error_rate": st.floats(0, 1),
        },
    ),
    governance=st.fixed_dictionaries({}, optional={"min_accuracy": st.floats(0, 1)}),
)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(thresholds)
def test_the_digest_survives_the_json_an_agreement_keeps(threshold: Threshold) -> None:
    kept = json.loads(json.dumps(threshold.model_dump(mode="json")))
    assert threshold_digest(Threshold.model_validate(kept)) == threshold_digest(threshold)
    assert Threshold.model_validate(kept) == threshold


def write(tmp_path: Path, text: str, name: str = "thresholds.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("    technical: {latency_p95_ms: .inf}", "thresholds[0].technical.latency_p95_ms"),
        ("    window: 99999999d", "thresholds[0].window"),
        ("    window: 0s", "thresholds[0].window"),
        ("    evaluation: {set: x, within_days: 1000000000000}", "thresholds[0].evaluation"),
        ("    organisational: {drill_within_days: 99999999999}", "thresholds[0].organisational"),
        ('    evaluation: {set: "a\\0b"}', "thresholds[0].evaluation.set"),
        ('    evaluation: {set: x, tag_minimums: {"t\\u202e": 0.5}}', "thresholds[0].evaluation"),
        ('    version: "3\\r"', "thresholds[0].version"),
    ],
)
def test_a_threshold_no_agreement_could_keep_or_no_gate_could_measure_is_named(
    tmp_path: Path, line: str, key: str
) -> None:
    """Infinity crashed the digest (JSON has none) in `agree`, `readiness` and the page; a
    window of centuries crashed the gate (a date before year 1); NUL cannot be stored."""
    path = write(tmp_path, f"thresholds:\n  - model: credit-risk\n{line}\n")
    with pytest.raises(ReadinessConfigError) as raised:
        load_thresholds(path)
    assert any(p.startswith(f"{path}:3: {key}") for p in raised.value.problems), raised.value


def gate(engine: Engine, threshold: Threshold, **more: Any) -> dict[str, Any]:
    with Session(engine) as session:
        found = evaluate(
            session, threshold, model=MODEL, version="3", now=more.pop("now", NOW),
            alerting=None, ledger_intact=lambda: True, **more,
        )  # fmt: skip
    return {c.name: c for c in found.criteria} | {"verdict": found.verdict}


def test_a_window_before_year_one_counts_every_record_instead_of_crashing(engine: Engine) -> None:
    threshold = Threshold(model=MODEL, min_decisions=1, organisational={"drill_within_days": 1})
    found = gate(engine, threshold, window=timedelta(days=999_999_999))
    assert found["verdict"] in ("no-go", "not enough data")
    early = gate(engine, threshold, now=datetime(1, 1, 2, tzinfo=UTC))
    assert early["incident drill"].status == "not enough data"


# Agreements.


def agree(
    engine: Engine, threshold: Threshold, at: datetime, *, version: str = "3", **more: Any
) -> None:
    payload = agreement_payload(
        threshold, version=version, decision_maker=more.pop("decision_maker", "head-of-credit"),
        deadline=more.pop("deadline", at + timedelta(days=90)), source="thresholds.yaml",
    )  # fmt: skip
    store(engine, [("thresholds_agreed", payload, version, at)])


def test_two_agreements_in_one_microsecond_the_later_made_governs_on_every_store(
    engine: Engine,
) -> None:
    """Ordered by time alone, which of the two was "the latest" was the store's choice."""
    at = NOW - timedelta(days=1)
    first, second = (Threshold(model=MODEL, min_decisions=n) for n in (1, 2))
    agree(engine, first, at)
    agree(engine, second, at)  # a later event id (UUIDv7), the same microsecond
    with Session(engine) as session:
        agreement = agreement_for(session, MODEL, "3")
    assert agreement is not None and agreement.agreements == 2
    assert agreement.threshold == second


def test_an_agreement_for_every_version_after_one_for_the_version_does_not_govern_it(
    engine: Engine,
) -> None:
    """As in the file, an exact version wins over "*": the later "*" agreement leaves it."""
    own = Threshold(model=MODEL, min_decisions=1)
    agree(engine, own, NOW - timedelta(days=5))
    agree(engine, own.model_copy(update={"min_decisions": 9}), NOW - timedelta(days=1),
          version="*")  # fmt: skip
    with Session(engine) as session:
        three, four = agreement_for(session, MODEL, "3"), agreement_for(session, MODEL, "4")
    assert three is not None and three.threshold.min_decisions == 1 and three.scope == "3"
    assert four is not None and four.threshold.min_decisions == 9 and four.scope == "*"


def test_a_threshold_altered_in_the_store_is_an_error_not_what_the_gate_judges_by(
    engine: Engine,
) -> None:
    """The read model's row is what the gate reads; an edit of it kept the agreed SHA-256 on
    show while the gate judged by other thresholds."""
    agree(engine, Threshold(model=MODEL, min_decisions=500), NOW - timedelta(days=1))
    with Session(engine) as session:
        row = session.exec(select(AgreedThresholds)).one()
        row.threshold = {**row.threshold, "min_decisions": 1}
        session.add(row)
        session.commit()
        with pytest.raises(AgreementError, match="do not match their SHA-256"):
            agreement_for(session, MODEL, "3")


def test_an_agreement_without_the_defaults_of_later_settings_is_no_proposed_change(
    engine: Engine,
) -> None:
    """An agreement recorded before a setting existed (or kept as the file gave it) digests
    otherwise than the same file read today: shown for ever as a change no one proposed."""
    threshold = Threshold(model=MODEL, min_decisions=5)
    older = threshold.model_dump(mode="json")
    del older["evaluation"]  # as a Driftline without the evaluation section recorded it
    payload = agreement_payload(
        threshold, version="3", decision_maker="head-of-credit",
        deadline=NOW + timedelta(days=30), source="thresholds.yaml",
    ).model_copy(update={"threshold": older, "sha256": _digest(older)})  # fmt: skip
    store(engine, [("thresholds_agreed", payload, "3", NOW - timedelta(days=1))])
    with Session(engine) as session:
        agreement = agreement_for(session, MODEL, "3")
    assert agreement is not None and agreement.sha256 != threshold_digest(threshold)
    assert not agreement.proposes_change(threshold)
    assert agreement.proposes_change(threshold.model_copy(update={"min_decisions": 6}))
    assert not agreement.proposes_change(None)


def test_a_verdict_given_before_anything_was_agreed_does_not_meet_the_deadline(
    engine: Engine,
) -> None:
    """The no-go a pipeline got because nothing was agreed yet decided nothing."""
    threshold = Threshold(model=MODEL, min_decisions=1)
    producer = ProducerKey.load(Path(os.environ["DRIFTLINE_PRODUCER_KEY_FILE"]))
    before = events.readiness(occurred_at=NOW - timedelta(days=100))
    with Session(engine) as session:
        write_batch(session, [RawMessage("other", 0, 0, None, encode(producer.seal(before)))])
        session.commit()
    agree(engine, threshold, NOW - timedelta(days=90), deadline=NOW - timedelta(days=1))
    with Session(engine) as session:
        agreement = agreement_for(session, MODEL, "3")
    found = gate(engine, threshold, agreed=Agreed(agreement))
    assert found["decision deadline"].status == "fail"
    assert found["decision deadline"].measured == "the deadline passed with no decision"


def test_a_deadline_at_the_end_of_time_is_stored_and_counted(engine: Engine) -> None:
    end = datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    agree(engine, Threshold(model=MODEL, min_decisions=1), NOW - timedelta(days=2), deadline=end)
    with Session(engine) as session:
        agreement = agreement_for(session, MODEL, "3")
    assert agreement is not None and agreement.deadline == end
    assert agreement.clock(NOW).startswith("day 3 of ")
    assert agreement.clock(NOW).endswith("(decision due 9999-12-31)")


def test_the_clock_counts_whole_days_from_the_first_agreement_across_midnight_utc(
    engine: Engine,
) -> None:
    start = datetime(2027, 1, 1, 23, 59, 59, 999_999, tzinfo=UTC)
    agree(engine, Threshold(model=MODEL, min_decisions=1), start, deadline=start + timedelta(7))
    with Session(engine) as session:
        agreement = agreement_for(session, MODEL, "3")
    assert agreement is not None and agreement.days == 7
    assert agreement.day(start) == 1
    assert agreement.day(start + timedelta(days=1, microseconds=-1)) == 1
    assert agreement.day(start + timedelta(days=1)) == 2
    assert agreement.clock(start + timedelta(days=7)).startswith("day 8 of 7")
    assert agreement.clock(start + timedelta(days=7, microseconds=1)).startswith("deadline passed")


# The deadline on the command line.


def test_a_date_deadline_is_the_whole_of_that_day_and_shown_as_that_day() -> None:
    """It was the next midnight, shown as the next day ("--deadline 2027-03-01": "due
    2027-03-02"); 9999-12-31 overflowed, uncaught."""
    now = datetime(2027, 1, 1, tzinfo=UTC)
    due = _deadline("2027-03-01", now)
    assert f"{due:%Y-%m-%d}" == "2027-03-01" and due > datetime(2027, 3, 1, 23, 59, tzinfo=UTC)
    assert f"{_deadline('9999-12-31', now):%Y-%m-%d}" == "9999-12-31"
    assert _deadline("30d", now) == now + timedelta(days=30)
    for bad in ("2027-02-30", "2027-13-01", "99999999d", "soon"):
        with pytest.raises(typer.Exit) as raised:
            _deadline(bad, now)
        assert raised.value.exit_code == 2


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A store on SQLite and a thresholds file; a broker that is not there (nothing here gets
    as far as publishing)."""
    monkeypatch.setenv("DRIFTLINE_DATABASE_URL", f"sqlite:///{tmp_path / 'driftline.db'}")
    monkeypatch.setenv("DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv(
        "DRIFTLINE_READINESS_CONFIG",
        str(write(tmp_path, "thresholds:\n  - model: credit-risk\n    min_decisions: 1\n")),
    )
    for module in ("main", "golive"):  # its logs would go to the runner's stderr, then closed
        monkeypatch.setattr(f"driftline.collector.cli.{module}.configure_logging", lambda *a: None)
    runner = CliRunner()
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    keygen = ["audit", "keygen", "--out", os.environ["DRIFTLINE_SIGNING_KEY_FILE"]]
    assert runner.invoke(app, keygen).exit_code == 0
    return runner


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (["--decision-maker", ""], "--decision-maker: String should have at least 1 character"),
        (["--decision-maker", "x" * 201], "--decision-maker: String should have at most 200"),
        (["--decision-maker", "x", "--stage", ""], "--stage: String should have at least 1"),
        (["--decision-maker", "x", "--deadline", "2027-02-30"], "'2027-02-30' is not a date"),
        (["--decision-maker", "x", "--deadline", "0001-01-01"], "has passed"),
    ],
)
def test_agree_names_a_bad_option_and_exits_2(
    cli: CliRunner, options: list[str], said: str
) -> None:
    """A name no event can carry raised a ValidationError: a traceback and exit 1."""
    result = cli.invoke(app, ["readiness", "agree", "--model", MODEL, *options])
    assert result.exit_code == 2, result.output
    assert said in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("name", ["[/x]", "[bold]x[/bold]", "[link=javascript:x]y"])
def test_markup_in_a_name_or_option_is_shown_as_text(cli: CliRunner, name: str) -> None:
    """Rich read it as markup: "[/x]" crashed the error message (exit 1, a "no-go")."""
    result = cli.invoke(app, ["readiness", "--model", name, "--version", "1", "--no-record"])
    assert result.exit_code == 2, result.output
    assert name in result.output
    trail = cli.invoke(app, ["readiness", "trail", "--model", name])
    assert trail.exit_code == 1 and name in trail.output, trail.output
    window = cli.invoke(
        app, ["readiness", "--model", MODEL, "--version", "1", "--window", name, "--no-record"]
    )
    assert window.exit_code == 2 and repr(name) in window.output, window.output


def test_readiness_with_a_window_of_centuries_gives_a_verdict(cli: CliRunner) -> None:
    result = cli.invoke(
        app, ["readiness", "--model", MODEL, "--version", "1", "--window", "99999999d",
              "--no-record", "--json"],
    )  # fmt: skip
    assert result.exit_code == 1, result.output  # no-go: never agreed
    assert json.loads(result.output)["window_start"].startswith("0001-01-01")


def test_readiness_exits_with_its_documented_codes(cli: CliRunner, tmp_path: Path) -> None:
    engine_url = os.environ["DRIFTLINE_DATABASE_URL"]
    from driftline.collector.store.database import make_engine

    engine = make_engine(engine_url)
    asked = ["readiness", "--model", MODEL, "--version", "3", "--no-record"]
    # A file, nothing agreed: "thresholds agreed" fails: no-go.
    assert cli.invoke(app, asked).exit_code == 1
    # No file and nothing agreed: nothing to judge by.
    os.environ.pop("DRIFTLINE_READINESS_CONFIG")
    nothing = cli.invoke(app, asked)
    assert nothing.exit_code == 2 and "no threshold agreed" in nothing.output
    # An agreement and no file: judged by the agreement (too few decisions).
    agree(engine, Threshold(model=MODEL, min_decisions=1, governance={"min_accuracy": 0.9}),
          NOW - timedelta(days=1))  # fmt: skip
    thin = cli.invoke(app, [*asked, "--json"])
    assert thin.exit_code in (1, 3), thin.output
    assert json.loads(thin.output)["proposed_change"] is False
    # An agreement altered in the store: could not check.
    with Session(engine) as session:
        row = session.exec(select(AgreedThresholds)).one()
        row.threshold = {**row.threshold, "governance": {}}
        session.add(row)
        session.commit()
    altered = cli.invoke(app, asked)
    assert altered.exit_code == 2 and "do not match their SHA-256" in altered.output
    engine.dispose()


# Evaluation runs.


def register(engine: Engine, path: Path, at: datetime, model: str = MODEL) -> str:
    payload = registration(load_set(path), "tests", str(path))
    producer = ProducerKey.load(Path(os.environ["DRIFTLINE_PRODUCER_KEY_FILE"]))
    event = component_event(
        "evaluation_set_registered", payload, service="driftline-eval",
        model=ModelRef(name=model, version="*"),
    ).model_copy(update={"occurred_at": at})  # fmt: skip
    with Session(engine) as session:
        message = RawMessage("sets", 0, at.microsecond, None, encode(producer.seal(event)))
        write_batch(session, [message])
        session.commit()
    return payload.sha256


def changed_set(tmp_path: Path) -> Path:
    """The example set, one case fewer: a new version of it, another SHA-256."""
    (tmp_path / "cases.jsonl").write_text(
        "".join((EXAMPLE.parent / "loan-desk-cases.jsonl").read_text().splitlines(True)[:-1])
    )
    text = EXAMPLE.read_text().replace('version: "2026-12"', 'version: "2027-01"')
    return write(tmp_path, text.replace("loan-desk-cases.jsonl", "cases.jsonl"), "set.yaml")


GOLDEN = Evaluation(set="loan-desk-golden", within_days=7)


def test_a_run_of_a_superseded_version_of_the_set_does_not_count(
    engine: Engine, tmp_path: Path
) -> None:
    """Any registration of the run's SHA-256 counted, however many versions since."""
    old = register(engine, EXAMPLE, NOW - timedelta(days=9))
    record_run(engine, "3", decide, NOW - timedelta(days=2))
    threshold = Threshold(model=MODEL, min_decisions=1, evaluation=GOLDEN)
    assert gate(engine, threshold)["evaluation loan-desk-golden"].status == "pass"
    new = register(engine, changed_set(tmp_path), NOW - timedelta(days=1))
    assert new != old
    run = gate(engine, threshold)["evaluation loan-desk-golden"]
    assert run.status == "fail"
    assert "of set version 2026-12" in run.measured and "not the registered 2027-01" in run.measured


def test_a_set_registered_for_another_model_only_does_not_count(engine: Engine) -> None:
    register(engine, EXAMPLE, NOW - timedelta(days=9), model="another-model")
    record_run(engine, "3", decide, NOW - timedelta(days=2))
    threshold = Threshold(model=MODEL, min_decisions=1, evaluation=GOLDEN)
    run = gate(engine, threshold)["evaluation loan-desk-golden"]
    assert run.status == "fail" and "its set is not registered" in run.measured


def test_a_run_whose_set_is_registered_after_it_counts(engine: Engine) -> None:
    record_run(engine, "3", decide, NOW - timedelta(days=2))
    register(engine, EXAMPLE, NOW - timedelta(days=1))
    threshold = Threshold(model=MODEL, min_decisions=1, evaluation=GOLDEN)
    assert gate(engine, threshold)["evaluation loan-desk-golden"].status == "pass"


# Forged events.


def test_forged_or_altered_agreements_and_runs_are_dead_letters(engine: Engine) -> None:
    producer = ProducerKey.load(Path(os.environ["DRIFTLINE_PRODUCER_KEY_FILE"]))
    trusted = TrustedProducers([producer.public_key])
    stranger = ProducerKey.generate()
    payload = agreement_payload(
        Threshold(model=MODEL, min_decisions=1), version="3", decision_maker="anyone",
        deadline=NOW + timedelta(days=9), source="forged.yaml",
    )  # fmt: skip
    agreed = component_event(
        "thresholds_agreed", payload, service="driftline-readiness",
        model=ModelRef(name=MODEL, version="3"),
    )  # fmt: skip
    sealed = json.loads(encode(producer.seal(agreed)))
    sealed["payload"]["threshold"]["min_decisions"] = 1_000_000  # altered after signing
    forged = [encode(agreed), json.dumps(sealed).encode(), encode(stranger.seal(agreed))]
    completed = events.evaluations()[2]
    forged.append(encode(completed))  # an unsigned passing run
    with Session(engine) as session:
        messages = [RawMessage("forged", 0, n, None, raw) for n, raw in enumerate(forged)]
        write_batch(session, messages, producers=trusted)
        session.commit()
        assert session.exec(select(AgreedThresholds)).all() == []
        assert len(session.exec(select(DeadLetter)).all()) == len(forged)
        assert agreement_for(session, MODEL, "3") is None


# The data-contract review at scale.


CONTRACTS = """\
credit-risk:
  inputs:
    type: object
    properties: {income: {type: number}, region: {type: string}}
  sources:
    - {name: bureau, fields: [income], owner: b, update_every: 1h, max_missing_rate: 0.05,
       max_violation_rate: 0.05, fallback: scored on the form alone}
    - {name: form, fields: [region], owner: f, update_every: 1h, max_missing_rate: 0.05,
       fallback: the form refuses incomplete applications}
  consumers:
    - {name: origination, owner: o, output_schema: {enum: [approve, decline]},
       latency_tolerance_ms: 50, consequence: the application stops}
"""


def test_the_contracts_review_of_100k_decisions_takes_seconds(
    engine: Engine, tmp_path: Path
) -> None:
    contract = load_contracts(write(tmp_path, CONTRACTS, "contracts.yaml")).for_model(MODEL)
    template = row_for(events.decision(occurred_at=NOW))[1]
    rows = [
        template | {"event_id": uuid.uuid4(), "decision_id": uuid.uuid4(),
                    "occurred_at": NOW - timedelta(seconds=n),
                    "inputs": {"income": n, "region": "north"} if n % 50 else {"region": "x"}}
        for n in range(100_000)
    ]  # fmt: skip
    with Session(engine) as session:
        for start in range(0, len(rows), 10_000):
            bulk.insert_rows(session, Decision.__table__, rows[start : start + 10_000])  # type: ignore[attr-defined]
        session.commit()
    started = time.monotonic()
    with Session(engine) as session:
        found = review(
            session, contract, model=MODEL, version="3", since=NOW - timedelta(days=2), now=NOW,
            min_decisions=500,
        )  # fmt: skip
    took = time.monotonic() - started
    named = {c.name: c for c in found}
    assert named["source bureau: missing rate"].measured == "2.00% (2000 of 100000)"
    assert named["source bureau: freshness"].status == "pass"
    assert took < 20, f"the review of 100,000 decisions took {took:.1f} s"

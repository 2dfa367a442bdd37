"""The data-contract review: for each model, where its inputs come from and who takes its
outputs, with what each promises, checked against the stored decisions of a version.

The contracts file is the agent's (``DRIFTLINE_INPUT_CONTRACTS``, ``agent/input_contracts.py``).
A model's entry is either a plain JSON Schema of its inputs, as it always could be, or a
mapping with that schema under ``inputs`` (all the agent reads), and the review::

    credit-risk:
      inputs:                       # the JSON Schema the agent checks each decision's inputs on
        type: object
        required: [income, region]
        properties:
          income: {type: number, minimum: 0}
          region: {enum: [north, south, east, west]}
      sources:                      # upstream data: who supplies which inputs
        - name: bureau
          fields: [income]          # input keys; each must be in inputs.properties, if it has any
          owner: bureau-data-team   # absent: the review fails until someone is named
          update_every: 1d          # a decision with one of them present at least this often
          max_missing_rate: 0.01    # optional: share of decisions lacking one of them (or null)
          max_violation_rate: 0.02  # optional: share whose contract violations name one of them
          fallback: scored without the bureau file, every decision sent to review
      consumers:                    # downstream: who takes the outputs
        - name: loan-origination
          owner: lending-platform
          output_schema: {enum: [approve, decline]}  # optional: each output should meet it
          max_output_violation_rate: 0             # optional (default 0): share that may not
          latency_tolerance_ms: 250                # optional: the p99 decision latency allowed
          consequence: a malformed answer stops the application at the origination desk

A source's fallback is also shown on drift alerts about its fields (``fallbacks``).

``load_contracts`` names the file, line and key of every mistake; ``review`` measures one
version over a window and returns the criteria of the go-live gate's data area. Erased
decisions (inputs replaced by a tombstone) count for the consumers' checks, not for the
sources'. A field the redaction policy drops is stored absent, so it reads as missing: list
only fields that are kept (masked or hashed ones are).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from jsonschema.protocols import Validator
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    RootModel,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from sqlmodel import Session, col, select

from driftline.agent.contract import CriterionStatus
from driftline.agent.input_contracts import is_entry
from driftline.collector.core.config_files import ConfigFileError, load_model, located
from driftline.collector.core.durations import Duration, format_duration
from driftline.collector.golive.criteria import Criterion
from driftline.collector.store.ledger import TOMBSTONE
from driftline.collector.store.models import Decision

Loc = tuple[str | int, ...]


def _one_line(text: str) -> str:
    if not text.isprintable():
        raise ValueError("must be printable text on one line (no control or format characters)")
    if not text.strip():
        raise ValueError("must not be blank")
    return text


def _paragraph(text: str) -> str:
    if not all(c.isprintable() or c in "\n\t" for c in text):
        raise ValueError("must be printable text (no control or format characters but newlines)")
    if not text.strip():
        raise ValueError("must not be blank")
    return text


# Short enough that "source <name>: missing rate" fits a criterion's name (200 characters).
Name = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_one_line)]
ModelName = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_one_line)]
Owner = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_one_line)]
InputKey = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_one_line)]
Text = Annotated[str, Field(min_length=1, max_length=1_000), AfterValidator(_paragraph)]
Rate = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Schema = dict[str, Any] | bool


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    """Upstream data: which of the model's inputs it supplies, and what it promises."""

    name: Name
    fields: list[InputKey] = Field(min_length=1)
    owner: Owner | None = None
    update_every: Duration
    max_missing_rate: Rate | None = None
    max_violation_rate: Rate | None = None
    fallback: Text = Field(description="what the service does when the source is down or bad")

    @field_validator("update_every")
    @classmethod
    def _some_time(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than 0s")
        return value


class Consumer(_Strict):
    """Downstream: who takes the model's outputs, what they tolerate, what a bad one costs."""

    name: Name
    owner: Owner | None = None
    output_schema: Schema | None = None
    max_output_violation_rate: Rate = 0.0
    latency_tolerance_ms: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    consequence: Text = Field(description="what an unexpected output costs this consumer")


class ModelContract(_Strict):
    """A model's entry: the JSON Schema of its inputs (None: none), its sources, its consumers."""

    inputs: Schema | None = None
    sources: list[Source] = Field(default_factory=list)
    consumers: list[Consumer] = Field(default_factory=list)
    _plain: bool = PrivateAttr(default=False)  # written as a bare JSON Schema

    @model_validator(mode="wrap")
    @classmethod
    def _either_form(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> ModelContract:
        if isinstance(value, ModelContract):
            return value
        plain = isinstance(value, dict | bool) and not is_entry(value)
        if not plain and not isinstance(value, dict):
            raise ValueError("expected a JSON Schema, or a mapping of inputs, sources, consumers")
        contract: ModelContract = handler({"inputs": value} if plain else value)
        contract._plain = plain
        return contract

    @property
    def fallbacks(self) -> dict[str, str]:
        """Each source field's fallback as an alert shows it: ``"<source>: <fallback>"``."""
        return {f: f"{s.name}: {s.fallback}" for s in self.sources for f in s.fields}


class Contracts(RootModel[dict[ModelName, ModelContract]]):
    """The contracts file: each model's entry, by model name."""

    model_config = ConfigDict(frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _string_keys(cls, value: Any) -> Any:
        # YAML reads `2024:` as a number; the agent takes str() of a key as the model's name.
        return {str(k): v for k, v in value.items()} if isinstance(value, dict) else value

    def for_model(self, model: str) -> ModelContract | None:
        return self.root.get(model)

    def fallbacks(self) -> dict[str, dict[str, str]]:
        """Per model, each source field's fallback as drift alerts show it."""
        return {model: c.fallbacks for model, c in self.root.items() if c.sources}


class ContractsFileError(ConfigFileError):
    """Every mistake in a contracts file, each as ``file:line: key: what is wrong``."""


def load_contracts(path: Path) -> Contracts:
    contracts, root = load_model(
        path, Contracts, "a mapping of model name to its contract", ContractsFileError
    )
    problems = [located(path, root, loc, message) for loc, message in _mistakes(contracts)]
    if problems:
        raise ContractsFileError(problems)
    return contracts


def _mistakes(contracts: Contracts) -> Iterator[tuple[Loc, str]]:
    """What a field-by-field validation cannot see: schemas, names, fields across sources."""
    for model, contract in contracts.root.items():
        at: Loc = (model,) if contract._plain else (model, "inputs")
        if contract.inputs is not None:
            yield from _schema_mistakes(contract.inputs, at)
        known = _properties(contract.inputs)
        supplier: dict[str, str] = {}
        for n, source in enumerate(contract.sources):
            where: Loc = (model, "sources", n)
            if any(s.name == source.name for s in contract.sources[:n]):
                yield (*where, "name"), f"another source is named {source.name!r}"
            for m, field in enumerate(source.fields):
                if known and field not in known:
                    yield (*where, "fields", m), f"{field!r} is not in the inputs' properties"
                elif field in source.fields[:m]:
                    yield (*where, "fields", m), f"{field!r} is listed twice"
                elif field in supplier:
                    yield (*where, "fields", m), f"{field!r} is supplied by {supplier[field]!r}"
                supplier.setdefault(field, source.name)
        for n, consumer in enumerate(contract.consumers):
            where = (model, "consumers", n)
            if any(c.name == consumer.name for c in contract.consumers[:n]):
                yield (*where, "name"), f"another consumer is named {consumer.name!r}"
            if consumer.output_schema is not None:
                yield from _schema_mistakes(consumer.output_schema, (*where, "output_schema"))


def _schema_mistakes(schema: Schema, at: Loc) -> Iterator[tuple[Loc, str]]:
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        yield (*at, *error.path), f"not a valid JSON Schema: {error.message}"
    except RecursionError:
        yield at, "not a valid JSON Schema: nested too deeply"


def _properties(schema: Schema | None) -> set[str]:
    properties = schema.get("properties") if isinstance(schema, dict) else None
    return set(properties) if isinstance(properties, dict) else set()


# The review.


@dataclass(frozen=True)
class _Finding:
    name: str
    threshold: str
    measured: str | None
    sample: int | None
    status: CriterionStatus


@dataclass
class _Tally:
    """One source over the window's decisions that are not erased."""

    fields: frozenset[str]
    missing: int = 0
    last_seen: datetime | None = None

    def add(self, occurred_at: datetime, inputs: dict[str, Any]) -> None:
        present = [inputs.get(f) is not None for f in self.fields]
        if not all(present):
            self.missing += 1
        if any(present) and (self.last_seen is None or occurred_at > self.last_seen):
            self.last_seen = occurred_at


@dataclass(frozen=True)
class _Window:
    decisions: int
    readable: int  # decisions whose inputs are not erased
    latency_ms: list[float]
    broken: dict[str, int]  # per consumer with an output schema: outputs that break it


def review(
    session: Session,
    contracts_for_model: ModelContract | None,
    *,
    model: str,
    version: str,
    since: datetime,
    now: datetime,
    min_decisions: int = 1,
) -> list[Criterion]:
    """The data area's criteria for ``version`` of ``model``, from its decisions in
    ``[since, now]`` (aware datetimes): for every source its owner, freshness and quality SLA,
    for every consumer its owner, output schema and latency tolerance. A rate with fewer than
    ``min_decisions`` decisions to measure is "not enough data"; a model without an entry in
    the contracts file fails, as does an entry that names no source or no consumer."""
    findings = _review(session, contracts_for_model, model, version, since, now, min_decisions)
    return [
        Criterion("data", f.name, f.threshold, f.measured, f.sample, f.status) for f in findings
    ]


def _review(
    session: Session,
    contract: ModelContract | None,
    model: str,
    version: str,
    since: datetime,
    now: datetime,
    min_decisions: int,
) -> list[_Finding]:
    if contract is None:
        return [_Finding("data contract", "an entry in the contracts file",
                         f"none for {model}", None, "fail")]  # fmt: skip
    found: list[_Finding] = []
    if not contract.sources:
        found.append(_Finding("data sources", "each named", "none named", None, "fail"))
    if not contract.consumers:
        found.append(_Finding("data consumers", "each named", "none named", None, "fail"))
    tallies = {s.name: _Tally(frozenset(s.fields)) for s in contract.sources}
    window = _scan(session, contract, tallies, model, version, since, now)
    mentions = _mentions(session, contract.sources, model, version, since, now)
    for source in contract.sources:
        name, tally = f"source {source.name}", tallies[source.name]
        found.append(_owner(name, source.owner))
        found.append(_freshness(session, source, tally, window, model, version, since, now))
        enough = window.readable >= min_decisions
        if source.max_missing_rate is not None:
            found.append(_rate(f"{name}: missing rate", source.max_missing_rate, tally.missing,
                               window.readable, enough, "lack one of its fields"))  # fmt: skip
        if source.max_violation_rate is not None:
            found.append(_rate(f"{name}: violation rate", source.max_violation_rate,
                               mentions[source.name], window.decisions,
                               window.decisions >= min_decisions,
                               "break the contract on its fields"))  # fmt: skip
    enough = window.decisions >= min_decisions
    for consumer in contract.consumers:
        name = f"consumer {consumer.name}"
        found.append(_owner(name, consumer.owner))
        if consumer.output_schema is not None:
            found.append(_rate(f"{name}: output schema", consumer.max_output_violation_rate,
                               window.broken[consumer.name], window.decisions, enough,
                               "break its output schema"))  # fmt: skip
        if consumer.latency_tolerance_ms is not None:
            found.append(_latency(name, consumer.latency_tolerance_ms, window, enough))
    return found


def _decisions(model: str, version: str, since: datetime, now: datetime) -> list[Any]:
    return [
        col(Decision.model_name) == model,
        col(Decision.model_version) == version,
        col(Decision.occurred_at) >= since,
        col(Decision.occurred_at) <= now,
    ]


def _scan(
    session: Session,
    contract: ModelContract,
    tallies: dict[str, _Tally],
    model: str,
    version: str,
    since: datetime,
    now: datetime,
) -> _Window:
    """One pass over the window's decisions, reading only the columns some check needs."""
    checks = {
        c.name: _validity(c.output_schema)
        for c in contract.consumers
        if c.output_schema is not None
    }
    timed = any(c.latency_tolerance_ms is not None for c in contract.consumers)
    columns: list[Any] = [col(Decision.occurred_at)]
    columns += [col(Decision.inputs)] if tallies else []
    columns += [col(Decision.output)] if checks else []
    columns += [col(Decision.latency_ms)] if timed else []
    decisions = readable = 0
    latency_ms: list[float] = []
    broken = dict.fromkeys(checks, 0)
    query = select(*columns).where(*_decisions(model, version, since, now))
    with session.exec(query.execution_options(yield_per=2_000)) as rows:
        for row in rows:
            decisions += 1
            values = iter(row[1:])
            if tallies:
                inputs = next(values)
                if isinstance(inputs, dict) and TOMBSTONE not in inputs:
                    readable += 1
                    for tally in tallies.values():
                        tally.add(row[0], inputs)
            if checks:
                output = next(values)
                for name, valid in checks.items():
                    broken[name] += not valid(output)
            if timed:
                latency_ms.append(float(next(values)))
    return _Window(decisions, readable, latency_ms, broken)


def _validity(schema: Schema) -> Callable[[Any], bool]:
    """Whether an output meets ``schema``, remembered for the outputs that repeat (labels)."""
    validator: Validator = Draft202012Validator(schema)
    known: dict[tuple[type, Any], bool] = {}

    def valid(output: Any) -> bool:
        if not isinstance(output, str | int | float | bool) or len(known) >= 10_000:
            return bool(validator.is_valid(output))
        key = (type(output), output)
        if key not in known:
            known[key] = bool(validator.is_valid(output))
        return known[key]

    return valid


def _mentions(
    session: Session,
    sources: Sequence[Source],
    model: str,
    version: str,
    since: datetime,
    now: datetime,
) -> dict[str, int]:
    """Per source, the window's decisions with a contract violation that names one of its
    fields, as the agent words them: ``income: minimum 0``, ``applicant.age: type integer``,
    ``inputs: required income, region``."""
    counts = dict.fromkeys((s.name for s in sources), 0)
    if not any(s.max_violation_rate is not None for s in sources):
        return counts
    query = select(col(Decision.contract_violations)).where(
        *_decisions(model, version, since, now), col(Decision.has_violations)
    )
    with session.exec(query.execution_options(yield_per=2_000)) as rows:
        for violations in rows:
            for source in sources:
                counts[source.name] += any(_names(v, source.fields) for v in violations or ())
    return counts


def _names(violation: str, fields: Iterable[str]) -> bool:
    if violation.startswith("inputs: required "):
        missing = f", {violation.removeprefix('inputs: required ')}, "
        return any(f", {field}, " in missing for field in fields)
    return any(violation.startswith((f"{field}: ", f"{field}.")) for field in fields)


def _owner(name: str, owner: str | None) -> _Finding:
    if owner is None:
        return _Finding(f"{name}: owner", "named", "none named", None, "fail")
    return _Finding(f"{name}: owner", "named", owner, None, "pass")


def _freshness(
    session: Session,
    source: Source,
    tally: _Tally,
    window: _Window,
    model: str,
    version: str,
    since: datetime,
    now: datetime,
) -> _Finding:
    """The latest decision with one of the source's fields present is within ``update_every``
    of ``now``; one before the window is looked for as far back as that allows."""
    every = source.update_every
    wanted = f"seen within {format_duration(every)}"
    name = f"source {source.name}: freshness"
    last_seen, anything = tally.last_seen, window.readable > 0
    if last_seen is None and now - since < every:
        last_seen, before = _seen_before(session, source, model, version, since, now)
        anything = anything or before
    if last_seen is None:
        if not anything:
            return _Finding(name, wanted, "no decisions", 0, "not enough data")
        return _Finding(name, wanted, f"not seen in {_age(max(now - since, every))}", None,
                        "fail")  # fmt: skip
    age = now - last_seen
    measured = f"last seen {_age(age)} ago ({last_seen.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z)"
    return _Finding(name, wanted, measured, None, "pass" if age <= every else "fail")


def _seen_before(
    session: Session, source: Source, model: str, version: str, since: datetime, now: datetime
) -> tuple[datetime | None, bool]:
    """The latest decision before the window, within ``update_every`` of ``now``, with one of
    the source's fields present; and whether there was any readable decision there at all."""
    try:
        earliest = now - source.update_every
    except OverflowError:
        earliest = datetime.min.replace(tzinfo=UTC)
    query = (
        select(col(Decision.occurred_at), col(Decision.inputs))
        .where(
            col(Decision.model_name) == model,
            col(Decision.model_version) == version,
            col(Decision.occurred_at) >= earliest,
            col(Decision.occurred_at) < min(since, now),
        )
        .order_by(col(Decision.occurred_at).desc())
    )
    anything = False
    with session.exec(query.execution_options(yield_per=500)) as rows:
        for occurred_at, inputs in rows:
            if not isinstance(inputs, dict) or TOMBSTONE in inputs:
                continue
            anything = True
            if any(inputs.get(f) is not None for f in source.fields):
                return occurred_at, True
    return None, anything


def _age(age: timedelta) -> str:
    return format_duration(timedelta(seconds=round(age.total_seconds())))


def _rate(name: str, ceiling: float, count: int, total: int, enough: bool, what: str) -> _Finding:
    wanted = f"none {what}" if ceiling == 0 else f"≤ {ceiling:.2%} {what}"
    if not enough or total == 0:
        return _Finding(name, wanted, None, total, "not enough data")
    rate = count / total
    measured = f"{rate:.2%} ({count} of {total})"
    return _Finding(name, wanted, measured, total, "pass" if rate <= ceiling else "fail")


def _latency(name: str, tolerance_ms: float, window: _Window, enough: bool) -> _Finding:
    latencies = window.latency_ms or []
    wanted = f"p99 ≤ {tolerance_ms:g} ms"
    if not enough or not latencies:
        return _Finding(f"{name}: latency", wanted, None, len(latencies), "not enough data")
    p99 = float(np.percentile(latencies, 99))
    status: CriterionStatus = "pass" if p99 <= tolerance_ms else "fail"
    return _Finding(f"{name}: latency", wanted, f"p99 {p99:.1f} ms", len(latencies), status)

"""The deployment thresholds: what "ready for production" means for a model, agreed before go-
live, in four areas (technical, data, organisational, governance). A YAML file, validated like
the alerting file: ``load_thresholds`` names the file, line and key of every mistake.

    thresholds:
      - model: credit-risk
        version: "*"            # or one version; an exact version wins over "*"
        window: 7d
        min_decisions: 500      # fewer in the window: not enough data to decide
        technical: {latency_p95_ms: 50, latency_p99_ms: 120, load_peak_per_s: 1000,
                    max_error_rate: 0.001, load_within_days: 30}
        data: {max_contract_violation_rate: 0.02, no_open_input_drift: true}
        organisational: {named_owner: true, drill_within_days: 30}
        governance: {ledger_verifies: true, review_below_confidence: 0.7,
                     min_review_coverage: 0.95, max_override_rate: 0.15,
                     min_accuracy: 0.9, min_labelled: 200}
        evaluation: {set: loan-desk-golden, within_days: 30, tag_minimums: {high-debt: 0.9},
                     max_regression: 0.02}

What the gate judges is the threshold as agreed (``driftline readiness agree``, recorded in the
ledger), not this file's text: a change to it is a proposal until it is agreed again.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from driftline.collector.core.config_files import ConfigFileError, load_model, located
from driftline.collector.core.durations import Duration

Rate = Annotated[float, Field(ge=0, le=1)]
Positive = Annotated[float, Field(gt=0)]
# A span a file can give: a century at most, so that "now minus it" is always a date.
MAX_DAYS = 36_500
Days = Annotated[int, Field(ge=1, le=MAX_DAYS)]


def _no_control(text: str) -> str:
    # NUL cannot be stored (PostgreSQL refuses it); other control and format characters
    # (a carriage return, a right-to-left override) would make a name read as another.
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in text):
        raise ValueError("must not hold control or format characters")
    return text


Text200 = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_no_control)]
Text100 = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_no_control)]


class _Strict(BaseModel):
    # No infinity or NaN: an agreement keeps the threshold as JSON, which has neither.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Technical(_Strict):
    latency_p95_ms: Positive | None = None
    latency_p99_ms: Positive | None = None
    load_peak_per_s: Positive | None = Field(
        default=None, description="a load test at three times this peak must have passed"
    )
    max_error_rate: Rate | None = Field(default=None, description="in that load test")
    load_within_days: Days = 30


class Data(_Strict):
    max_contract_violation_rate: Rate | None = None
    no_open_input_drift: bool = True


class Organisational(_Strict):
    named_owner: bool = Field(default=True, description="an owner and an escalation path")
    drill_within_days: Days | None = None


class Governance(_Strict):
    ledger_verifies: bool = True
    review_below_confidence: Rate | None = None
    min_review_coverage: Rate | None = None
    max_override_rate: Rate | None = None
    min_accuracy: Rate | None = None
    min_labelled: int = Field(default=100, ge=1)

    @model_validator(mode="after")
    def _coverage_needs_a_threshold(self) -> Self:
        if self.min_review_coverage is not None and self.review_below_confidence is None:
            raise ValueError("min_review_coverage needs review_below_confidence")
        return self


class Evaluation(_Strict):
    """A golden evaluation set the version must have passed (``driftline eval run``)."""

    set: Text200 | None = Field(
        default=None, description="the set's name; a passing run of it is required"
    )
    within_days: Days = 30
    tag_minimums: dict[Text100, Rate] = Field(
        default_factory=dict, description="a minimum pass rate per tag, in that run"
    )
    max_regression: Rate | None = Field(
        default=None,
        description="the most the pass rate may fall from the previous version's latest run",
    )

    @model_validator(mode="after")
    def _names_its_set(self) -> Self:
        if self.set is None and (self.tag_minimums or self.max_regression is not None):
            raise ValueError("tag_minimums and max_regression need the set they are of")
        return self


class Threshold(_Strict):
    model: Text200
    version: Text200 = "*"
    window: Duration = timedelta(days=7)
    min_decisions: int = Field(default=500, ge=1)
    technical: Technical = Technical()
    data: Data = Data()
    organisational: Organisational = Organisational()
    governance: Governance = Governance()
    evaluation: Evaluation = Evaluation()

    @field_validator("window")
    @classmethod
    def _some_window(cls, value: timedelta) -> timedelta:
        if not timedelta(0) < value <= timedelta(days=MAX_DAYS):
            raise ValueError(f"must be longer than 0s and at most {MAX_DAYS}d")
        return value


class ReadinessConfig(_Strict):
    thresholds: list[Threshold]

    def for_version(self, model: str, version: str) -> Threshold | None:
        """The threshold agreed for this version, else the model's ``"*"`` one."""
        exact = [t for t in self.thresholds if t.model == model and t.version == version]
        general = [t for t in self.thresholds if t.model == model and t.version == "*"]
        return next(iter(exact + general), None)


class ReadinessConfigError(ConfigFileError):
    """Every mistake in a thresholds file, each as ``file:line: key: what is wrong``."""


def load_thresholds(path: Path) -> ReadinessConfig:
    config, root = load_model(
        path, ReadinessConfig, "a mapping with a list of thresholds", ReadinessConfigError
    )
    problems = [located(path, root, loc, message) for loc, message in _duplicates(config)]
    if problems:
        raise ReadinessConfigError(problems)
    return config


def _duplicates(config: ReadinessConfig) -> Iterator[tuple[tuple[str | int, ...], str]]:
    seen: set[tuple[str, str]] = set()
    for index, threshold in enumerate(config.thresholds):
        key = (threshold.model, threshold.version)
        if key in seen:
            yield (
                ("thresholds", index, "version"),
                f"{threshold.model} {threshold.version} has a threshold already",
            )
        seen.add(key)

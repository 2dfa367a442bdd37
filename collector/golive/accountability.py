"""The accountability map: for each type of decision (a model, or one output class or segment of
it), who is accountable, where a challenged decision goes (a review overrides it, or feedback
says it was wrong), what audit trail is kept, and when the entry was last reviewed. A YAML file
named by ``DRIFTLINE_ACCOUNTABILITY_CONFIG``, validated like the alerting file:
``load_accountability`` names the file, line and key of every mistake.

    review_every: 180d          # each entry is reviewed again within this (default 180d)
    decision_types:
      - model: credit-risk      # every decision of the model
        accountable: head-of-credit-risk
        escalation: [risk-oncall, head-of-ml]
        audit_trail: "every decision in the ledger, 7 years; reviews and feedback linked"
        reviewed_on: 2026-05-20
        reviewed_by: model-risk-committee
      - model: credit-risk
        output: decline         # one output class; omitted: every output
        segment: high-debt      # a segment or tag, free text; omitted: every decision
        accountable: head-of-credit-risk
        escalation: [risk-oncall, head-of-ml, chief-risk-officer]
        audit_trail: "as above; declines also kept in the complaints file"
        reviewed_on: 2026-05-20
        reviewed_by: model-risk-committee
        review_every: 90d       # this entry's own period

A file that loads may still have gaps, which ``survey`` finds and the page, ``GET
/accountability`` and the go-live gate show: a model with decisions that no entry covers (no
entry at all, or none for some of its output classes, or for its decisions outside the
segments named), an entry without an accountable person, an escalation path or an audit trail,
a review never made, overdue (reviewed_on + period before now) or dated in the future, and two
entries for the same (model, output, segment). Decisions carry no segment, so entries for a
segment refine the map but never cover a model's decisions; an output class is matched against
decisions' outputs that are a string, an integer or a boolean (``"1"``, ``"true"``).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
)
from sqlmodel import Session, col, select

from driftline.collector.core.config_files import ConfigFileError, load_model
from driftline.collector.core.durations import parse_duration
from driftline.collector.golive.criteria import Criterion
from driftline.collector.store.models import Decision, ModelDeployment
from driftline.collector.store.synthetic import is_synthetic

SETTING = "DRIFTLINE_ACCOUNTABILITY_CONFIG"
DEFAULT_PERIOD = timedelta(days=180)
LONGEST_PERIOD = timedelta(days=3_660)  # ten years: a longer period is no review at all
SAMPLE = 2_000  # latest decisions per version whose output classes are looked at
# Invisible marks that make a name read otherwise than it is written, on the page and in alerts.
_BIDI = frozenset(
    "\u061c\u200b\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"
)


def _storable(value: str) -> str:
    """What every store keeps: no NUL, no lone surrogate (which UTF-8 cannot carry)."""
    if "\x00" in value:
        raise ValueError(r"a NUL character (\u0000) is not allowed")
    if any("\ud800" <= c <= "\udfff" for c in value):
        raise ValueError("a lone surrogate is not allowed")
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _plain_name(value: str) -> str:
    """A person's or a team's name as people read it: no control character nor invisible
    mark that reorders or hides what follows."""
    _storable(value)
    for c in value:
        if unicodedata.category(c) == "Cc" or c in _BIDI:
            raise ValueError(f"holds U+{ord(c):04X}, which a name may not (control or invisible)")
    return value


def _plain_text(value: str) -> str:
    _storable(value)
    for c in value:
        if unicodedata.category(c) == "Cc" and c not in "\t\n\r":
            raise ValueError(f"holds U+{ord(c):04X}, a control character")
    return value


def _blank_is_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


def _none_is_empty(value: object) -> object:
    return [] if value is None else value


def _as_class(value: object) -> object:
    """An output class written bare, ``output: 1`` or ``output: true``, as JSON writes it."""
    return output_class(value) if isinstance(value, bool | int) else value


def _a_date(value: object) -> object:
    """YYYY-MM-DD only: pydantic would read a number as seconds since 1970."""
    if isinstance(value, int | float):
        raise ValueError("write a date as YYYY-MM-DD")
    return value


def _period(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than 0s")
    if value > LONGEST_PERIOD:
        raise ValueError(f"must be at most {LONGEST_PERIOD.days}d (ten years)")
    return value


def period_text(period: timedelta) -> str:
    """A period as the file writes it, in days at most: ``90d``, ``1d12h``, ``90m``."""
    left, parts = round(period.total_seconds() * 1_000), []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000)):
        amount, left = divmod(left, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts) + (f"{left}ms" if left else "") or "0s"


Key = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_storable)]
Person = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_plain_name)]
Text = Annotated[str, Field(min_length=1, max_length=2_000), AfterValidator(_plain_text)]
# Written back as the file writes it (a map dumped to JSON or YAML loads again as the same).
Period = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    AfterValidator(_period),
    PlainSerializer(period_text, return_type=str, when_used="json"),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DecisionType(_Strict):
    """One entry: the decisions it is about, and who answers for them."""

    model: Key
    output: Annotated[Key | None, BeforeValidator(_as_class)] = None
    segment: Key | None = None
    accountable: Annotated[Person | None, BeforeValidator(_blank_is_none)] = None
    escalation: Annotated[list[Person], BeforeValidator(_none_is_empty)] = Field(
        default=[], max_length=20
    )
    audit_trail: Annotated[Text | None, BeforeValidator(_blank_is_none)] = None
    reviewed_on: Annotated[date | None, BeforeValidator(_a_date)] = None
    reviewed_by: Annotated[Person | None, BeforeValidator(_blank_is_none)] = None
    review_every: Period | None = None

    @property
    def key(self) -> tuple[str, str | None, str | None]:
        return self.model, self.output, self.segment

    @property
    def name(self) -> str:
        """``credit-risk``, ``credit-risk, output decline, segment high-debt``."""
        parts = [self.model]
        if self.output is not None:
            parts.append(f"output {self.output}")
        if self.segment is not None:
            parts.append(f"segment {self.segment}")
        return ", ".join(parts)


class AccountabilityMap(_Strict):
    review_every: Period = DEFAULT_PERIOD
    decision_types: list[DecisionType] = Field(max_length=10_000)

    def period(self, entry: DecisionType) -> timedelta:
        return entry.review_every or self.review_every

    def challenged(self, model: str, output: Any) -> DecisionType | None:
        """The entry that answers for a challenged decision of ``model`` that gave ``output``:
        the first for its output class, else the first for every output (segments aside)."""
        label = output_class(output)
        candidates = [e for e in self.decision_types if e.model == model and e.segment is None]
        exact = [e for e in candidates if label is not None and e.output == label]
        return next(iter(exact or [e for e in candidates if e.output is None]), None)


class AccountabilityConfigError(ConfigFileError):
    """Every mistake in an accountability file, each as ``file:line: key: what is wrong``."""


def load_accountability(path: Path) -> AccountabilityMap:
    found, _ = load_model(
        path,
        AccountabilityMap,
        "a mapping with review_every and a list of decision_types",
        AccountabilityConfigError,
    )
    return found


def output_class(output: Any) -> str | None:
    """A decision's output as an output class is written in the file: a string as it is, an
    integer or a boolean as JSON (``1``, ``true``); None for anything else (a generated text
    is a string too: it is simply named by no entry)."""
    if isinstance(output, str):
        return output
    if isinstance(output, bool | int):
        return json.dumps(output)
    return None


GapKind = Literal[
    "no entry",
    "not covered",
    "no accountable person",
    "no escalation path",
    "no audit trail",
    "never reviewed",
    "review overdue",
    "review dated in the future",
    "duplicate",
]
REVIEW_GAPS: frozenset[GapKind] = frozenset(
    {"never reviewed", "review overdue", "review dated in the future"}
)


@dataclass(frozen=True)
class Gap:
    model: str
    decision_type: str  # as DecisionType.name writes it
    kind: GapKind
    what: str  # what is missing: of the entry, or a sentence naming the model
    entry: int | None = None  # its entry's number in the file (from 1); None: a model's own


@dataclass(frozen=True)
class EntryStatus:
    number: int  # in the file, from 1
    entry: DecisionType
    period: timedelta
    next_review: datetime | None  # None: never reviewed, or due after year 9999
    gaps: list[Gap]


@dataclass(frozen=True)
class Survey:
    entries: list[EntryStatus]
    uncovered: list[Gap]  # models with decisions that no entry covers, first

    @property
    def gaps(self) -> list[Gap]:
        return [*self.uncovered, *(g for e in self.entries for g in e.gaps)]


def survey(
    accountability: AccountabilityMap, seen: Mapping[str, Collection[str]], *, now: datetime
) -> Survey:
    """Every entry with its gaps and next review, and the models of ``seen`` (a model: the
    output classes its decisions gave) that the map does not cover."""
    today = now.astimezone(UTC).date()
    first: dict[tuple[str, str | None, str | None], int] = {}
    entries = []
    for number, entry in enumerate(accountability.decision_types, start=1):
        period = accountability.period(entry)
        due = _due(entry.reviewed_on, period)
        gaps = list(_entry_gaps(entry, number, period, due, now, today))
        if entry.key in first:
            gaps.append(_gap(entry, number, "duplicate",
                             f"the same decision type as entry {first[entry.key]}"))  # fmt: skip
        first.setdefault(entry.key, number)
        entries.append(EntryStatus(number, entry, period, due, gaps))
    uncovered = [
        gap
        for model, outputs in sorted(seen.items())
        if (gap := _uncovered(model, outputs, accountability.decision_types)) is not None
    ]
    return Survey(entries, uncovered)


def _due(reviewed_on: date | None, period: timedelta) -> datetime | None:
    if reviewed_on is None:
        return None
    try:
        return datetime.combine(reviewed_on, time(), UTC) + period
    except OverflowError:
        return None


def _entry_gaps(
    entry: DecisionType,
    number: int,
    period: timedelta,
    due: datetime | None,
    now: datetime,
    today: date,
) -> Iterable[Gap]:
    if entry.accountable is None:
        yield _gap(entry, number, "no accountable person", "names no one accountable")
    if not entry.escalation:
        yield _gap(entry, number, "no escalation path",
                   "names no one to escalate a challenged decision to")  # fmt: skip
    if entry.audit_trail is None:
        yield _gap(entry, number, "no audit trail", "does not say what audit trail is kept")
    if entry.reviewed_on is None:
        yield _gap(entry, number, "never reviewed", "has no reviewed_on date")
    elif entry.reviewed_on > today:
        yield _gap(entry, number, "review dated in the future",
                   f"reviewed_on {entry.reviewed_on} is after today ({today})")  # fmt: skip
    elif due is not None and due < now:
        yield _gap(entry, number, "review overdue",
                   f"reviewed on {entry.reviewed_on}; due again by {due.date()} "
                   f"(every {period_text(period)})")  # fmt: skip


def _uncovered(model: str, outputs: Collection[str], entries: list[DecisionType]) -> Gap | None:
    """Whether every decision of ``model`` falls under an entry without a segment: one for
    every output, or one for each output class seen."""
    mine = [e for e in entries if e.model == model]
    if not mine:
        return Gap(model, model, "no entry", f"no entry of the map covers {model}")
    whole = [e for e in mine if e.segment is None]
    if any(e.output is None for e in whole):
        return None
    if not whole:
        segments = _listed(sorted({e.segment or "" for e in mine}))
        what = f"only segments have entries ({segments}): its other decisions have none"
        return Gap(model, model, "not covered", what)
    missing = sorted(set(outputs) - {e.output for e in whole})
    if not missing:
        return None
    return Gap(model, model, "not covered",
               f"decisions with output {_listed(missing)} have no entry")  # fmt: skip


def _gap(entry: DecisionType, number: int, kind: GapKind, what: str) -> Gap:
    return Gap(entry.model, entry.name, kind, what, number)


def _listed(names: list[str], shown: int = 5) -> str:
    quoted = [json.dumps(n, ensure_ascii=False) for n in names[:shown]]
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(quoted) + more


def decisions_seen(
    session: Session, *, outputs_of: Collection[str] = (), models: Collection[str] | None = None
) -> dict[str, frozenset[str]]:
    """Every model with decisions (a load test's or a drill's versions aside) or a recorded
    deployment, with, for those in ``outputs_of``, the output classes given by the latest
    ``SAMPLE`` decisions of each version; ``models``: only these."""
    versions = select(Decision.model_name, Decision.model_version).distinct()
    deployed = select(ModelDeployment.model_name).distinct()
    if models is not None:
        versions = versions.where(col(Decision.model_name).in_(list(models)))
        deployed = deployed.where(col(ModelDeployment.model_name).in_(list(models)))
    seen: dict[str, set[str]] = {}
    for model, version in session.exec(versions).all():
        if is_synthetic(version):
            continue
        found = seen.setdefault(model, set())
        if model in outputs_of:
            latest = session.exec(
                select(Decision.output)
                .where(Decision.model_name == model, Decision.model_version == version)
                .order_by(col(Decision.occurred_at).desc())
                .limit(SAMPLE)
            ).all()
            found |= {c for c in map(output_class, latest) if c is not None}
    for model in session.exec(deployed).all():
        seen.setdefault(model, set())
    return {model: frozenset(outputs) for model, outputs in seen.items()}


def needs_outputs(accountability: AccountabilityMap) -> set[str]:
    """The models whose output classes decide whether they are covered: those with entries,
    none of them for every output and every segment."""
    named = {e.model for e in accountability.decision_types}
    whole = {
        e.model for e in accountability.decision_types if e.output is None and e.segment is None
    }
    return named - whole


def survey_store(
    accountability: AccountabilityMap,
    session: Session,
    *,
    now: datetime,
    models: Collection[str] | None = None,
) -> Survey:
    """``survey`` over the models the store has seen (``models``: these, seen or not)."""
    seen = decisions_seen(session, outputs_of=needs_outputs(accountability), models=models)
    for model in models or ():
        seen.setdefault(model, frozenset())
    return survey(accountability, seen, now=now)


def accountability_criteria(
    accountability: AccountabilityMap | None, session: Session, *, model: str, now: datetime
) -> list[Criterion]:
    """The go-live gate's governance criteria: every decision type of ``model`` has an entry
    that names who is accountable, an escalation path and the audit trail kept, and each of
    its entries was reviewed within its period. No map: one failing criterion naming the
    setting."""
    complete, reviewed = "accountability map", "accountability review"
    wanted = "every decision type: accountable, escalation, audit trail"
    if accountability is None:
        unset = f"no accountability map ({SETTING} is not set)"
        return [Criterion("governance", complete, wanted, unset, None, "fail")]
    found = survey_store(accountability, session, now=now, models=[model])
    entries = [e for e in found.entries if e.entry.model == model]
    gaps = [g for g in found.gaps if g.model == model]
    missing = [g for g in gaps if g.kind not in REVIEW_GAPS]
    late = [g for g in gaps if g.kind in REVIEW_GAPS]
    measured = (
        _summary(missing)
        if missing
        else f"{len(entries)} {'entry' if len(entries) == 1 else 'entries'}, none with a gap"
    )
    criteria = [Criterion("governance", complete, wanted, measured, len(entries),
                          "fail" if missing else "pass")]  # fmt: skip
    within = "each entry reviewed within its period"
    if not entries:
        criteria.append(Criterion("governance", reviewed, within, "no entry to review", 0, "fail"))
    elif late:
        criteria.append(Criterion("governance", reviewed, within, _summary(late), len(entries),
                                  "fail"))  # fmt: skip
    else:
        due = min(e.next_review or datetime.max.replace(tzinfo=UTC) for e in entries)
        criteria.append(Criterion("governance", reviewed, within, f"next due by {due.date()}",
                                  len(entries), "pass"))  # fmt: skip
    return criteria


def _summary(gaps: list[Gap], shown: int = 3, longest: int = 1_000) -> str:
    """The first gaps, within what a readiness event's ``measured`` holds (2,000 characters)."""
    said = "; ".join(f"{g.decision_type}: {g.kind}" for g in gaps[:shown])
    if len(said) > longest:
        said = said[: longest - 1] + "…"
    return said + (f" (and {len(gaps) - shown} more)" if len(gaps) > shown else "")

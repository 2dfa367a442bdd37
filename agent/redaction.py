"""Redaction: what leaves the process is decided here, once, before Kafka, spans, logs or spool.

Policy. Per model, rules by field name (wherever the key appears) or by dotted path from the
payload (``inputs.applicant.name``; ``inputs.people[].name`` for a list's items), each with an
action: ``drop`` the value, ``hash`` it with a keyed HMAC (so equal values still join), ``mask``
it, or ``keep`` it as it is, unscanned; and the detectors to run. ``"*"`` applies to every
model (absent, it is no rules and every detector). A model's own entry adds to ``"*"``: its
rules join ``"*"``'s, its own winning for the same field or path, and its detectors join
``"*"``'s, so that a model can only redact more; with ``inherit: false`` it stands alone. A path
rule is more specific than a field rule and wins over it, wherever each comes from. Dropping a
field the contract requires (``reviewer``, ``reporter``, ``owner``...) refuses the event: hash
or mask those.

Names. Field names and path segments compare case-folded and without ``-``, ``_`` or spaces:
one rule for ``date_of_birth`` also covers ``dateOfBirth``, ``Date-Of-Birth`` and ``DATE OF
BIRTH``, since services spell keys in every convention and a rule missed for its spelling is a
leak. Two rules of one model for the same name so compared are refused at load.

What is scanned. The free-text fields of every event type (``FREE_TEXT``): a decision's inputs,
output, subject_ref, class labels and contract violations (which quote input keys); a review's
reviewer, rationale and new output; feedback's reporter, comment and ground truth; of the named
scores of both, each comment (a judge's explanation may quote the text) and categorical label,
never a score's name, number or source, which say what was measured; the people
and prose of governance events (owner, approved_by, set_by, asked_by, registered_by,
decision_maker, source, target, reason, error), and an evaluation case's output. In them
every string and every key is scanned, at any depth; a key that holds a secret becomes the
detector's mask, numbered to stay unique (``[email]``, ``[email]#2``). Never scanned, as they
are not free text and a change would corrupt the record: the envelope (ids, service, model
name and version, time); figures, flags and enumerations; versions, ids and digests; the
baseline record and an agreed threshold (their SHA-256 is ``baseline_id``, ``sha256``); names
from Driftline's own configuration and from an evaluation set (its cases' ids and tags).

Detectors. ``email``: an address, in any case. ``card``: 13 to 19 digits that pass the Luhn
check and start with 2 to 6 (the payment networks' ISO/IEC 7812 identifiers: Mastercard, Amex,
Diners, JCB, Visa, Discover, UnionPay, Maestro), written unbroken or in groups of 3 to 6 digits
as cards are printed (4 4 4 4, Amex's 4 6 5; the last group may be shorter) separated by a
space, ``-``, ``.`` or ``/``. Not a card: digits glued to a letter (hex ids and tokens), a
stretch inside a longer number, or a decimal's fraction. The leading digit keeps out epoch
timestamps in ms, µs and ns, which start with 1 until 2033. ``phone``: ``+`` and 8 to 15 digits
(E.164), separators optional; trunk ``0`` and 9 to 15 digits in groups separated by a space,
``-`` or ``.`` (``020 7946 0958``, ``0044 20 7946 0958``); a North American number with
separators (``(415) 555-2671``, ``415.555.2671``). Bare digits in text are not phones: as often
they are amounts and ids. Every detector runs in time linear in the text.

Numbers. An integer, or a whole float (JavaScript sends every number as one), is a card by the
same test on its digits. It is a phone only with 7 to 15 digits under a key whose normalised
name contains ``phone``, ``mobile``, ``msisdn`` or ``fax`` or starts with ``tel``, or inside
such a key's value; there a string of 7 to 15 digits with ``+``, spaces, dashes, dots or
parentheses is one too. So amounts, counts, ids and timestamps survive.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from driftline.agent.labels import LabelCap, LabelledCounts, of_document

Action = Literal["drop", "hash", "mask", "keep"]
Detector = Literal["email", "card", "phone"]
ALL_DETECTORS: tuple[Detector, ...] = ("email", "card", "phone")
MASK = "[redacted]"
# The payload fields, of any event type, that carry what a service saw, said or wrote, or who
# wrote it; and a decision's class_scores, whose labels are scanned too (as keys, under no rule:
# a rule names a field, not a class). The rest are ids, figures and names that must arrive as
# they were sent.
FREE_TEXT = frozenset(
    {
        *("inputs", "output", "subject_ref", "contract_violations"),
        *("reviewer", "new_output", "rationale", "reporter", "ground_truth", "comment"),
        *("owner", "approved_by", "set_by", "asked_by", "source", "reason"),
        *("registered_by", "decision_maker", "target", "error"),
    }
)
_SEGMENT = re.compile(r"(.*?)((?:\[\])*)")


def normal_name(name: str) -> str:
    """A field name as rules compare it: case-folded, without ``-``, ``_`` or spaces."""
    folded = name.casefold()
    if folded.isalnum():
        return folded
    return folded.replace("_", "").replace("-", "").replace(" ", "")  # thrice a regex's speed


def normal_path(path: str) -> str:
    """A dotted path with each segment a normal name, its ``[]`` (list items) kept."""
    segments = (_SEGMENT.fullmatch(segment) for segment in path.split("."))
    return ".".join(normal_name(m[1]) + m[2] for m in segments if m is not None)


class RedactionError(ValueError):
    """A policy that cannot be applied; the message names the file and key."""


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str | None = None
    path: str | None = None
    action: Action

    @model_validator(mode="after")
    def _one_target(self) -> Rule:
        if (self.field is None) == (self.path is None):
            raise ValueError("a rule names exactly one of field or path")
        return self

    @field_validator("path")
    @classmethod
    def _from_a_free_text_field(cls, path: str | None) -> str | None:
        if path is None:
            return path
        # A path that starts anywhere else never matches: a rule that silently does nothing.
        first = normal_path(path).split(".", 1)[0].removesuffix("[]")
        if first not in {normal_name(name) for name in FREE_TEXT}:
            raise ValueError(f"must start with one of {', '.join(sorted(FREE_TEXT))}")
        return path

    @property
    def target(self) -> tuple[Literal["field", "path"], str]:
        """What the rule applies to, as names are compared."""
        if self.field is not None:
            return "field", normal_name(self.field)
        return "path", normal_path(self.path or "")


class ModelPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: list[Rule] = Field(default_factory=list)
    detect: list[Detector] = Field(default_factory=lambda: list(ALL_DETECTORS))
    inherit: bool = Field(default=True, strict=True)  # add to "*"'s rules and detectors

    @model_validator(mode="after")
    def _one_rule_per_target(self) -> ModelPolicy:
        first: dict[tuple[str, str], int] = {}
        for index, rule in enumerate(self.rules):
            kind, name = rule.target
            if (kind, name) in first:
                raise PydanticCustomError(
                    "duplicate_rule",
                    "rules.{index} names the same {kind} as rules.{first} ('{name}')",
                    {"index": index, "kind": kind, "first": first[(kind, name)], "name": name},
                )
            first[(kind, name)] = index
        return self


class RedactionPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    models: dict[str, ModelPolicy] = Field(default_factory=lambda: {"*": ModelPolicy()})

    @model_validator(mode="after")
    def _star_inherits_nothing(self) -> RedactionPolicy:
        star = self.models.get("*")
        if star is not None and "inherit" in star.model_fields_set:
            raise PydanticCustomError(
                "star_inherit",
                'models.*.inherit: "*" is what models inherit; it has nothing to inherit itself',
            )
        return self

    def for_model(self, name: str) -> ModelPolicy:
        """The policy for model ``name``: its own entry added to ``"*"``'s, unless it opts out."""
        star = self.models.get("*") or ModelPolicy()
        own = self.models.get(name)
        if own is None or name == "*":
            return star
        if not own.inherit:
            return own
        targets = {rule.target for rule in own.rules}
        return ModelPolicy(
            rules=own.rules + [rule for rule in star.rules if rule.target not in targets],
            detect=[d for d in ALL_DETECTORS if d in own.detect or d in star.detect],
        )

    @classmethod
    def load(cls, path: Path) -> RedactionPolicy:
        try:
            document = yaml.safe_load(path.read_text()) or {}
            return cls.model_validate(document)
        except (OSError, yaml.YAMLError) as error:
            raise RedactionError(f"{path}: {error}") from None
        except ValidationError as error:
            problems = "; ".join(_problem(e["loc"], e["msg"]) for e in error.errors())
            raise RedactionError(f"{path}: {problems}") from None


def _problem(location: tuple[int | str, ...], message: str) -> str:
    """A problem with where it is; a problem with the whole policy says where in its message."""
    where = ".".join(str(part) for part in location)
    return f"{where}: {message}" if where else message


MAYBE_SECRET = re.compile(r"[@\d]")  # every detector needs an "@" or a digit
# Starting only where a local part can start: unanchored, "aaaa...@" costs quadratic time.
EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# At least 13 digits, unbroken or in groups joined by one separator, not glued to a letter or
# digit ([^\W_]: a word character but "_"), so that hex ids and tokens are let be; cards are
# found among them.
DIGIT_RUN = re.compile(r"(?<![^\W_])\d(?:[\s./-]?\d){12,}(?![^\W_])")
DIGIT_GROUP = re.compile(r"\d+")
# Each alternative reads one way only (a digit a step, or groups between separators), so that a
# failing match backtracks in linear time.
PHONE = re.compile(
    r"(?<![\w+.-])(?:"
    r"\+[1-9](?:[\s.-]?(?:\(\d{1,4}\)|\d)){6,24}"  # +44 20 7946 0958, +14155552671
    r"|\(?0\d{1,4}\)?(?:[\s.-](?:\(\d{1,4}\)|\d{1,8})){1,6}"  # 020 7946 0958, 07700 900123
    r"|(?:1[\s.-])?(?:\([2-9]\d\d\)\s?|[2-9]\d\d[\s.-])[2-9]\d\d[\s.-]\d{4}"  # (415) 555-2671
    r")(?!\w|[.:/-]\d)"  # not the start of a longer number, a time or a date
)
# A whole value that is a phone number under a phone-named key: 7 to 15 digits, punctuated.
PHONE_VALUE = re.compile(r"\+?[\s().-]*(?:\d[\s().-]*){7,15}")
PHONE_NAME = re.compile(r"phone|mobile|msisdn|fax|^tel")


def _luhn(digits: str) -> bool:
    total = 0
    for position, digit in enumerate(reversed(digits)):
        value = int(digit) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _is_card(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and digits[0] in "23456" and _luhn(digits)


def _mask_cards(text: str) -> str:
    return DIGIT_RUN.sub(lambda match: _mask_run(match.group()), text)


def _mask_run(run: str) -> str:
    """Mask the cards in a run of digit groups, left to right. (A loop, not recursion: a run
    may hold thousands of cards.)"""
    groups = list(DIGIT_GROUP.finditer(run))
    pieces, done, first = [], 0, 0
    while first < len(groups):
        last = _card_end(run, groups, first)
        if last is None:
            first += 1
            continue
        pieces += [run[done : groups[first].start()], "[card]"]
        done, first = groups[last].end(), last + 1
    return "".join(pieces) + run[done:]


def _card_end(run: str, groups: list[re.Match[str]], first: int) -> int | None:
    """The last group of the longest card that starts at group ``first`` of ``run``: one
    unbroken group that no ".", "/" or "-" joins to other digits (a decimal's fraction, say), or
    groups of 3 to 6 digits as cards are printed (4 4 4 4, Amex's 4 6 5), the last of 1 to 6.
    So a decimal, a date or a number beside a card is not read as part of one."""
    alone = groups[first]
    joins = run[alone.start() - 1 : alone.start()] + run[alone.end() : alone.end() + 1]
    if not any(c in "./-" for c in joins) and _is_card(alone.group()):
        return first
    digits, end = "", None
    for last in range(first, len(groups)):
        group = groups[last].group()
        if len(group) > 6 or len(digits) + len(group) > 19:
            break
        digits += group
        if _is_card(digits):
            end = last
        if len(group) < 3:
            break  # only a card's last group is this short
    return end


def _mask_phone(match: re.Match[str]) -> str:
    """A match is a phone when its digits number 8 to 15 with a "+", 9 to 15 without; digit
    groups past the 15th digit are text that followed it, and stay."""
    text = match.group()
    digits, kept = 0, 0
    for group in DIGIT_GROUP.finditer(text):
        if digits + len(group.group()) > 15:
            break
        digits, kept = digits + len(group.group()), group.end()
    return "[phone]" + text[kept:] if digits >= (8 if text[0] == "+" else 9) else text


SCANNERS: dict[Detector, Callable[[str], str]] = {
    "email": lambda text: EMAIL.sub("[email]", text) if "@" in text else text,
    "card": _mask_cards,  # before phones: a card's digit groups could pass for a phone
    "phone": lambda text: PHONE.sub(_mask_phone, text),
}


@dataclass(frozen=True)
class _Plan:
    """A model's policy, merged and compiled for the walk."""

    paths: dict[str, Action]
    fields: dict[str, Action]
    prefixes: frozenset[str]  # the paths that lead to a path rule: only these are followed
    scanners: tuple[Callable[[str], str], ...]
    cards: bool
    phones: bool

    @classmethod
    def of(cls, policy: ModelPolicy) -> _Plan:
        paths: dict[str, Action] = {}
        fields: dict[str, Action] = {}
        for rule in policy.rules:
            kind, name = rule.target
            (paths if kind == "path" else fields).setdefault(name, rule.action)
        prefixes = {p[:i] for p in paths for i, c in enumerate(p) if c in ".["}
        return cls(
            paths,
            fields,
            frozenset(prefixes),
            tuple(scan for detector, scan in SCANNERS.items() if detector in policy.detect),
            "card" in policy.detect,
            "phone" in policy.detect,
        )


class _Made(threading.local):
    """The redactions made in the document this thread is redacting: the sidecar's threads
    redact (DRIFTLINE_SIDECAR_ACK=on_disk) while the worker does."""

    count = 0


class Redactor:
    """Applies a policy to an event document in place; counts what it changed, by the event's
    service and model."""

    def __init__(
        self, policy: RedactionPolicy, hmac_key: bytes | None, cap: LabelCap | None = None
    ) -> None:
        uses_hash = any(r.action == "hash" for m in policy.models.values() for r in m.rules)
        if uses_hash and not hmac_key:
            raise RedactionError(
                "the redaction policy hashes values but DRIFTLINE_REDACTION_KEY is not set"
            )
        self._plans = {name: _Plan.of(policy.for_model(name)) for name in policy.models}
        self._default = self._plans.get("*") or _Plan.of(policy.for_model("*"))
        self._key = hmac_key or b""
        self.counts = LabelledCounts(cap or LabelCap())
        self._made = _Made()

    @property
    def redactions(self) -> int:
        """Values dropped, hashed or masked, in all."""
        return self.counts.total

    def __call__(self, document: dict[str, Any]) -> None:
        self._made.count = 0
        self._redact(document)
        if self._made.count:
            self.counts.add(of_document(document), self._made.count)

    def _redact(self, document: dict[str, Any]) -> None:
        payload = document.get("payload")
        model = document.get("model")
        if not isinstance(payload, dict) or not isinstance(model, dict):
            return  # not an event: the contract check will say so
        plan = self._plans.get(str(model.get("name")), self._default)
        for key, value in list(payload.items()):
            if key in FREE_TEXT and value is not None:
                name = normal_name(key)
                walked = self._walk(value, name, name, plan, False)
                payload[key] = None if walked is _DROPPED else walked
        for score in payload.get("scores") or ():
            if isinstance(score, dict):
                self._score(score, plan)
        scores = payload.get("class_scores")
        if isinstance(scores, dict):
            labels: dict[Any, Any] = {}
            for label, score in scores.items():
                labels[self._scanned_key(label, scores, labels, plan)] = score
            payload["class_scores"] = labels

    def _walk(self, value: Any, name: str, path: str | None, plan: _Plan, phone: bool) -> Any:
        """The value under the key ``name`` (normalised) at ``path`` (None: no path rule can
        match it): as its rule says, else scanned, or walked into. ``phone``: under a key named
        for phone numbers. (One call per value, its cheap cases inline: it runs for every one.)"""
        action = plan.fields.get(name)
        if path is not None:
            action = plan.paths.get(path, action)  # the more specific rule
        if action is not None:
            return value if action == "keep" else self._apply(action, value)
        if isinstance(value, str):
            return self._text(value, name, plan, phone) if MAYBE_SECRET.search(value) else value
        if isinstance(value, dict):
            return self._dict(value, path, plan, phone or self._phone_named(name, plan))
        if isinstance(value, list):
            items = f"{path}[]" if path in plan.prefixes else None
            phone = phone or self._phone_named(name, plan)
            walked = [self._walk(v, name, items, plan, phone) for v in value]
            return [v for v in walked if v is not _DROPPED]
        if (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and not -1e6 < value < 1e6
        ):
            return self._number(value, name, plan, phone)  # long enough for a phone or card
        return value

    def _dict(self, value: dict[Any, Any], path: str | None, plan: _Plan, phone: bool) -> Any:
        follow = path in plan.prefixes
        walked: dict[Any, Any] = {}
        for key, child in value.items():
            name = normal_name(key if isinstance(key, str) else str(key))
            entry = self._walk(child, name, f"{path}.{name}" if follow else None, plan, phone)
            if entry is not _DROPPED:
                walked[self._scanned_key(key, value, walked, plan)] = entry
        return walked

    def _score(self, score: dict[str, Any], plan: _Plan) -> None:
        """A named score's comment as any free text under the key ``comment`` (rules on it
        apply); a label scanned, under no rule, so that a rule for ``value`` or ``name`` in the
        inputs cannot rename or retype a score."""
        comment = score.get("comment")
        if comment is not None:
            walked = self._walk(comment, "comment", None, plan, False)
            score["comment"] = None if walked is _DROPPED else walked
        if isinstance(score.get("value"), str) and MAYBE_SECRET.search(score["value"]):
            score["value"] = self._text(score["value"], "value", plan, False)

    def _scanned_key(
        self, key: Any, original: dict[Any, Any], walked: dict[Any, Any], plan: _Plan
    ) -> Any:
        """The key of ``original`` as it may join ``walked``: scanned, and numbered if its mask
        is taken, so that no two entries become one."""
        text = key if isinstance(key, str) else str(key)  # JSON writes any key as text
        if not MAYBE_SECRET.search(text):
            return key
        scanned = self._detect(text, plan)
        if scanned == text:
            return key
        candidate, number = scanned, 1
        while candidate in walked or candidate in original:
            number += 1
            candidate = f"{scanned}#{number}"
        return candidate

    def _text(self, text: str, name: str, plan: _Plan, phone: bool) -> str:
        scanned = self._detect(text, plan)
        if (
            scanned == text
            and PHONE_VALUE.fullmatch(text)
            and (phone or self._phone_named(name, plan))
        ):
            self._made.count += 1
            return "[phone]"
        return scanned

    def _number(self, value: float, name: str, plan: _Plan, phone: bool) -> Any:
        if isinstance(value, float) and not value.is_integer():
            return value
        number = abs(int(value))
        if plan.phones and number < 10**15 and (phone or self._phone_named(name, plan)):
            self._made.count += 1
            return "[phone]"
        if plan.cards and 10**12 <= number < 10**19 and _is_card(str(number)):
            self._made.count += 1
            return "[card]"
        return value

    @staticmethod
    def _phone_named(name: str, plan: _Plan) -> bool:
        return plan.phones and PHONE_NAME.search(name) is not None

    def _apply(self, action: Action, value: Any) -> Any:
        self._made.count += 1
        if action == "drop":
            return _DROPPED
        if action == "mask":
            return MASK
        canonical = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
        digest = hmac.new(self._key, canonical, hashlib.sha256).hexdigest()
        return f"hmac-sha256:{digest}"

    def _detect(self, text: str, plan: _Plan) -> str:
        scanned = text
        for scan in plan.scanners:
            scanned = scan(scanned)
        if scanned != text:
            self._made.count += 1
        return scanned


_DROPPED: Any = object()

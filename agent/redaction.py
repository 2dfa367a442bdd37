"""Redaction: what leaves the process is decided here, once, before Kafka, spans, logs or spool.

A policy names, per model (``"*"`` for every model without its own), rules by field name
(wherever the key appears) or by dotted path from the payload (``inputs.address.street``), each
with an action: ``drop`` the value, ``hash`` it with a keyed HMAC (so equal values still join),
``mask`` it, or ``keep`` it as it is. Every other string (and long number) in the free-form parts
of a payload is scanned for e-mail addresses, card numbers (Luhn-checked) and phone numbers,
which are masked in place.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Action = Literal["drop", "hash", "mask", "keep"]
Detector = Literal["email", "card", "phone"]
ALL_DETECTORS: tuple[Detector, ...] = ("email", "card", "phone")
MASK = "[redacted]"
# The parts of a payload that carry what a service saw or said; ids and figures are left alone.
FREE_FORM = ("inputs", "output", "new_output", "rationale", "ground_truth", "comment")


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


class ModelPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: list[Rule] = Field(default_factory=list)
    detect: list[Detector] = Field(default_factory=lambda: list(ALL_DETECTORS))


class RedactionPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    models: dict[str, ModelPolicy] = Field(default_factory=lambda: {"*": ModelPolicy()})

    def for_model(self, name: str) -> ModelPolicy:
        return self.models.get(name) or self.models.get("*") or ModelPolicy()

    @classmethod
    def load(cls, path: Path) -> RedactionPolicy:
        try:
            document = yaml.safe_load(path.read_text()) or {}
            return cls.model_validate(document)
        except (OSError, yaml.YAMLError) as error:
            raise RedactionError(f"{path}: {error}") from None
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                for e in error.errors(include_url=False)
            )
            raise RedactionError(f"{path}: {problems}") from None


ANY_DIGIT = re.compile(r"\d")
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.-]?\(?\d{1,4}\)?(?:[\s.-]?\d{2,4}){2,4}"
    r"|\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4})(?!\w)"
)


def _luhn(digits: str) -> bool:
    total = 0
    for position, digit in enumerate(reversed(digits)):
        value = int(digit) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _mask_cards(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        run = match.group()
        for first, last in _card_windows(run):
            if _luhn(re.sub(r"\D", "", run[first:last])):
                return run[:first] + "[card]" + run[last:]
        return run

    return CARD.sub(replace, text)


def _card_windows(run: str) -> list[tuple[int, int]]:
    """Where a card may sit in a run of digits, longest first: a card in groups ("4111 1111
    ...") lines up with the groups; an unbroken one may start at any digit."""
    groups = [(m.start(), m.end()) for m in re.finditer(r"\d+", run)]
    if len(groups) == 1:
        digits = groups[0][1] - groups[0][0]
        spans = [(s, s + n) for n in range(digits, 12, -1) for s in range(digits - n + 1)]
        return [(groups[0][0] + s, groups[0][0] + e) for s, e in spans]
    windows = [
        (groups[i][0], groups[j][1])
        for i in range(len(groups))
        for j in range(i, len(groups))
        if 13 <= sum(e - s for s, e in groups[i : j + 1]) <= 19
    ]
    return sorted(windows, key=lambda w: w[0] - w[1])


SCANNERS: dict[Detector, Callable[[str], str]] = {
    "email": lambda text: EMAIL.sub("[email]", text),
    "card": _mask_cards,
    "phone": lambda text: PHONE.sub("[phone]", text),
}


class Redactor:
    """Applies a policy to an event document in place; counts what it changed."""

    def __init__(self, policy: RedactionPolicy, hmac_key: bytes | None) -> None:
        uses_hash = any(r.action == "hash" for m in policy.models.values() for r in m.rules)
        if uses_hash and not hmac_key:
            raise RedactionError(
                "the redaction policy hashes values but DRIFTLINE_REDACTION_KEY is not set"
            )
        self._policy = policy
        self._key = hmac_key or b""
        self.redactions = 0

    def __call__(self, document: dict[str, Any]) -> None:
        payload = document.get("payload")
        model = document.get("model")
        if not isinstance(payload, dict) or not isinstance(model, dict):
            return  # not an event: the contract check will say so
        policy = self._policy.for_model(str(model.get("name")))
        for key in FREE_FORM:
            if key in payload:
                payload[key] = self._walk(payload[key], key, policy)
                if payload[key] is _DROPPED:
                    payload[key] = None

    def _walk(self, value: Any, path: str, policy: ModelPolicy) -> Any:
        action = self._action(path, policy)
        if action == "keep":
            return value
        if action is not None:
            self.redactions += 1
            return self._apply(action, value)
        if isinstance(value, dict):
            walked = {k: self._walk(v, f"{path}.{k}", policy) for k, v in value.items()}
            return {k: v for k, v in walked.items() if v is not _DROPPED}
        if isinstance(value, list):
            return [self._walk(v, f"{path}[]", policy) for v in value]
        if isinstance(value, str):
            return self._scan(value, policy)
        if isinstance(value, int) and not isinstance(value, bool) and value > 10**12:
            scanned = self._scan(str(value), policy)  # a card number given as a number
            return value if scanned == str(value) else scanned
        return value

    def _action(self, path: str, policy: ModelPolicy) -> Action | None:
        if not policy.rules:
            return None
        name = path.rsplit(".", 1)[-1]
        for rule in policy.rules:
            if rule.path == path or rule.field == name:
                return rule.action
        return None

    def _apply(self, action: Action, value: Any) -> Any:
        if action == "drop":
            return _DROPPED
        if action == "mask":
            return MASK
        canonical = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
        digest = hmac.new(self._key, canonical, hashlib.sha256).hexdigest()
        return f"hmac-sha256:{digest}"

    def _scan(self, text: str, policy: ModelPolicy) -> str:
        if "@" not in text and not ANY_DIGIT.search(text):
            return text  # every detector needs an "@" or a digit: most words end here
        scanned = text
        for detector, scan in SCANNERS.items():  # this order: card digits before phone digits
            if detector in policy.detect:
                scanned = scan(scanned)
        if scanned != text:
            self.redactions += 1
        return scanned


_DROPPED: Any = object()

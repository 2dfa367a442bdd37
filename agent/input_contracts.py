"""Data contracts: per model, a JSON Schema that a decision's inputs are expected to meet.

A model's entry in the contracts file is either that JSON Schema itself, or a mapping with the
schema under ``inputs`` beside the model's ``sources`` and ``consumers`` (the data-contract
review the collector checks, ``collector/golive/contracts.py``). The agent reads ``inputs``
only; an entry of the mapping form without it has no input contract.

An input that breaks its contract is still recorded (the decision happened), marked with its
violations in ``payload.contract_violations`` and counted per model and service; detectors use
the rate. The check runs before redaction, on the inputs as the model saw them. A violation
names the field and the schema's rule, never the value, so it cannot leak what redaction hides.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from jsonschema.protocols import Validator

from driftline.agent.labels import LabelCap, LabelledCounts, of_document

MAX_VIOLATIONS = 20
# The keys of a model's entry in its mapping form. A mapping with any of them is that form; any
# other is a plain JSON Schema, as every entry was before (none of them is a JSON Schema keyword).
ENTRY_KEYS = ("inputs", "sources", "consumers")


class InputContractError(ValueError):
    """A contracts file that cannot be used; the message names the file and model."""


def is_entry(value: object) -> bool:
    """Whether a model's entry is the mapping form (``inputs``, ``sources``, ``consumers``)
    rather than a plain JSON Schema."""
    return isinstance(value, dict) and any(key in value for key in ENTRY_KEYS)


def load_contracts(path: Path) -> dict[str, Validator]:
    """``{model name: validator}`` from a YAML file mapping model names to JSON Schemas, or to
    entries that hold one under ``inputs``."""
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise InputContractError(f"{path}: {error}") from None
    if not isinstance(document, dict):
        raise InputContractError(f"{path}: expected a mapping of model name to JSON Schema")
    validators: dict[str, Validator] = {}
    for model, entry in document.items():
        schema, prefix = entry, ""
        if is_entry(entry):
            unknown = [str(key) for key in entry if key not in ENTRY_KEYS]
            if unknown:
                raise InputContractError(
                    f"{path}: {model}: {unknown[0]}: not a key of a contract entry "
                    f"({', '.join(ENTRY_KEYS)}); its JSON Schema goes under inputs"
                )
            if entry.get("inputs") is None:
                continue
            schema, prefix = entry["inputs"], "inputs"
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as error:
            parts = [str(part) for part in error.path]
            where = ".".join([prefix, *parts] if prefix else parts) or "(top)"
            raise InputContractError(f"{path}: {model}: {where}: {error.message}") from None
        validators[str(model)] = Draft202012Validator(schema)
    return validators


class ContractCheck:
    """A processor: marks each decision with the ways its inputs break its model's contract."""

    def __init__(self, validators: dict[str, Validator], cap: LabelCap | None = None) -> None:
        self._validators = validators
        self.violations = LabelledCounts(cap or LabelCap())  # events, by service and model

    def __call__(self, document: dict[str, Any]) -> None:
        payload, model = document.get("payload"), document.get("model")
        if document.get("type") != "decision" or not isinstance(payload, dict):
            return
        name = str(model.get("name")) if isinstance(model, dict) else ""
        validator = self._validators.get(name)
        if validator is None:
            return
        found = sorted(validator.iter_errors(payload.get("inputs")), key=lambda e: list(e.path))
        problems = [_describe(error) for error in found[:MAX_VIOLATIONS]]
        payload["contract_violations"] = problems
        if problems:
            self.violations.add(of_document(document))


def _describe(error: Any) -> str:
    field = ".".join(str(part) for part in error.absolute_path) or "inputs"
    if error.validator == "required":
        missing = [name for name in error.validator_value if name not in (error.instance or {})]
        return f"{field}: required {', '.join(missing)}"
    if error.validator == "additionalProperties":
        return f"{field}: no additional properties allowed"
    return f"{field}: {error.validator} {error.validator_value}"

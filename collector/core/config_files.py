"""Configuration files people write by hand (the alerting file, the deployment thresholds):
YAML read into a pydantic model, with every mistake reported as ``file:line: key: what``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class ConfigFileError(ValueError):
    """Every mistake in a configuration file, each as ``file:line: key: what is wrong``."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def load_model(
    path: Path, model: type[M], expected: str, error: type[ConfigFileError] = ConfigFileError
) -> tuple[M, yaml.Node | None]:
    """The file as ``model``, and its YAML node tree for locating later checks' findings."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as problem:
        raise error([f"{path}: cannot read: {problem.strerror}"]) from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        document = yaml.safe_load(text)
    except yaml.MarkedYAMLError as problem:
        line = problem.problem_mark.line + 1 if problem.problem_mark else 0
        raise error([f"{path}:{line}: not valid YAML: {problem.problem}"]) from None
    except RecursionError:
        raise error([f"{path}:1: nested too deeply to read"]) from None
    except ValueError as problem:  # a scalar YAML takes for a date that is none: 2026-13-01
        line = _unreadable_line(yaml.compose(text, Loader=yaml.SafeLoader))
        raise error([f"{path}:{line}: not a valid value: {problem}"]) from None
    if not isinstance(document, dict):
        raise error([f"{path}:1: expected {expected}"])
    try:
        return model.model_validate(document), root
    except ValidationError as problem:
        raise error(
            [
                located(path, root, tuple(detail["loc"]), detail["msg"])
                for detail in problem.errors(include_url=False)
            ]
        ) from None


def located(path: Path, root: yaml.Node | None, loc: tuple[Any, ...], message: str) -> str:
    """``file:line: key: message``, the line being the key's own or its nearest parent's."""
    return f"{path}:{line_of(root, loc)}: {key_path(loc)}: {message}"


def key_path(loc: tuple[Any, ...]) -> str:
    """A pydantic error's location as a key path: ``thresholds[2].window``."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


def line_of(root: yaml.Node | None, loc: tuple[Any, ...]) -> int:
    """The line of a key in a YAML node tree, or of its nearest parent if it is absent."""
    node, line = root, 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = next((v for k, v in node.value if k.value == part), None)
            if found is None:
                break
            node = found
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
        else:
            break
        line = node.start_mark.line + 1
    return line


def _unreadable_line(node: yaml.Node | None) -> int:
    """The line of the first scalar that SafeLoader cannot turn into a value."""
    stack = [node] if node is not None else []
    while stack:
        current = stack.pop(0)
        if isinstance(current, yaml.ScalarNode):
            try:
                yaml.SafeLoader("").construct_object(current)
            except ValueError:
                return current.start_mark.line + 1
        elif isinstance(current, yaml.MappingNode):
            stack[:0] = [part for pair in current.value for part in pair]
        elif isinstance(current, yaml.SequenceNode):
            stack[:0] = list(current.value)
    return 1

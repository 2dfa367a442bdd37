"""Alertmanager label matchers: ``name="value"``, ``name!="value"``, ``name=~"regex"`` and
``name!~"regex"``, with the value quoted or bare. A regex must match the whole label value,
as in Alertmanager; a label that is absent matches as the empty string.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, cast

Operator = Literal["=", "!=", "=~", "!~"]
_SYNTAX = re.compile(
    r'^\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*(?P<value>"(?:[^"\\]|\\.)*"|[^"]*?)\s*$'
)


class MatcherError(ValueError):
    """A matcher that cannot be parsed; the message says what is wrong with it."""


@dataclass(frozen=True)
class Matcher:
    name: str
    operator: Operator
    value: str
    pattern: re.Pattern[str] | None = None

    @classmethod
    def parse(cls, text: str) -> Matcher:
        found = _SYNTAX.match(text)
        if found is None:
            raise MatcherError(f'{text!r} is not a matcher; write label="value" (or !=, =~, !~)')
        value = found["value"]
        if value.startswith('"'):
            value = value[1:-1].encode().decode("unicode_escape")
        operator = cast(Operator, found["op"])
        pattern = None
        if operator in ("=~", "!~"):
            try:
                pattern = re.compile(f"(?:{value})")
            except re.error as error:
                raise MatcherError(f"{text}: bad regular expression: {error}") from None
        return cls(found["name"], operator, value, pattern)

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.pattern is not None:
            found = self.pattern.fullmatch(actual) is not None
            return found if self.operator == "=~" else not found
        return (actual == self.value) == (self.operator == "=")

    def __str__(self) -> str:
        return f'{self.name}{self.operator}"{self.value}"'


def all_match(matchers: Sequence[Matcher], labels: Mapping[str, str]) -> bool:
    return all(matcher.matches(labels) for matcher in matchers)

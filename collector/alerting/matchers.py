"""Alertmanager label matchers: ``name="value"``, ``name!="value"``, ``name=~"regex"`` and
``name!~"regex"``, with the value quoted or bare. A regex must match the whole label value,
as in Alertmanager; a label that is absent matches as the empty string.

A quoted value is a Go string literal, as Alertmanager's matcher parser reads it: ``\\"``,
``\\\\``, ``\\n``, ``\\t``, ``\\xHH``, ``\\uHHHH`` and the rest of Go's escapes (a line break
is taken as itself too). A bare value is taken as written. A matcher is written as Go's
``strconv.Quote`` writes, on one printable line, so the text a silence stores reads back as the
same matcher whatever the value.

Regexes are RE2's, the syntax of Alertmanager's (Go's) regexp: matching takes time linear in
the label value whatever the pattern, so no silence or route can freeze the process that
matches it. RE2 has no backreferences and no lookarounds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, cast

import re2

Operator = Literal["=", "!=", "=~", "!~"]
# The name, the operator and the spaces around it; the value is the rest. No two parts can
# take the same character, so no text makes these backtrack.
_HEAD = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*")
_PIECE = re.compile(
    r'(?P<text>[^\\"]+)|(?P<quote>")'
    r'|(?P<char>\\[abfnrtv\\"])|(?P<byte>\\x[0-9A-Fa-f]{2}|\\[0-7]{3})'
    r"|(?P<rune>\\u[0-9A-Fa-f]{4}|\\U[0-9A-Fa-f]{8})|(?P<bad>\\.?)",
    re.DOTALL,
)
_UNESCAPED = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_ESCAPED = {c: f"\\{letter}" for letter, c in _UNESCAPED.items()} | {'"': '\\"', "\\": "\\\\"}
_RE2 = re2.Options()
_RE2.never_capture = True  # whether it matches, never where: RE2's DFA alone answers
_RE2.log_errors = False  # the MatcherError says what is wrong, rather than RE2 on stderr


class MatcherError(ValueError):
    """A matcher that cannot be parsed; the message says what is wrong with it."""


@dataclass(frozen=True)
class Matcher:
    """Compared by name, operator and value; a regex is compiled when the matcher is made."""

    name: str
    operator: Operator
    value: str
    # The compiled regex's full match, for =~ and !~ (a callable: pydantic, which takes
    # matchers in the alerting file, can name its type)
    _fullmatch: Callable[[bytes], object] | None = field(
        init=False, default=None, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        if self.operator in ("=~", "!~"):
            # As bytes: RE2 then refuses a lone surrogate as invalid UTF-8, rather than Python
            # raising UnicodeEncodeError.
            pattern = b"(?:" + self.value.encode("utf-8", "surrogatepass") + b")"
            try:
                regex = re2.compile(pattern, _RE2)
            except re2.error as error:
                raise MatcherError(
                    f"{self}: bad regular expression (RE2 syntax, no backreferences or "
                    f"lookarounds): {_reason(error)}"
                ) from None
            object.__setattr__(self, "_fullmatch", regex.fullmatch)

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """Raise MatcherError naming the matcher and what is wrong with it."""
        stripped = text.strip()
        head = _HEAD.match(stripped)
        if head is None:
            raise MatcherError(f'{text!r} is not a matcher; write label="value" (or !=, =~, !~)')
        rest = stripped[head.end() :]
        try:
            value = (_unquoted(rest[1:]) if rest.startswith('"') else _bare(rest)).decode()
        except UnicodeDecodeError:  # as Alertmanager, which refuses what is not UTF-8
            raise MatcherError(f"{text!r}: the value is not UTF-8") from None
        except ValueError as error:
            raise MatcherError(f"{text!r}: {error}") from None
        return cls(head[1], cast(Operator, head[2]), value)

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self._fullmatch is None:
            return (actual == self.value) == (self.operator == "=")
        # RE2 reads UTF-8; a lone surrogate (which UTF-8 cannot hold) is let through, not raised.
        found = self._fullmatch(actual.encode("utf-8", "surrogatepass")) is not None
        return found == (self.operator == "=~")

    def __str__(self) -> str:
        return f"{self.name}{self.operator}{_quoted(self.value)}"


def all_match(matchers: Sequence[Matcher], labels: Mapping[str, str]) -> bool:
    return all(matcher.matches(labels) for matcher in matchers)


def _bare(value: str) -> bytes:
    if '"' in value:
        raise ValueError('unescaped double quote in a bare value; quote it: "say \\"hi\\""')
    return value.encode("utf-8", "surrogatepass")


def _unquoted(body: str) -> bytes:
    """The UTF-8 of the value a quoted one stands for, read as Go's ``strconv.Unquote`` reads a
    string literal; ``body`` is what follows the opening quote."""
    value = bytearray()  # \x and octal escapes are bytes, which together must be UTF-8
    closed = False
    for piece in _PIECE.finditer(body):
        kind, found = piece.lastgroup, piece[0]
        if closed:
            raise ValueError('unescaped double quote in the value; write \\" for one')
        if kind == "text":
            value += found.encode("utf-8", "surrogatepass")
        elif kind == "quote":
            closed = True
        elif kind == "char":
            value += _UNESCAPED.get(found[1], found[1]).encode()
        elif kind == "byte":
            code = int(found[2:], 16) if found[1] == "x" else int(found[1:], 8)
            if code > 0xFF:
                raise ValueError(f"{found} is not a byte: octal escapes go up to \\377")
            value.append(code)
        elif kind == "rune":
            code = int(found[2:], 16)
            if 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
                raise ValueError(f"{found} is not a character")
            value += chr(code).encode()
        elif found == "\\":
            break  # the text ends in a backslash, so no closing quote follows
        else:
            raise ValueError(f"{found} is not an escape; a backslash is written \\\\")
    if not closed:
        raise ValueError("the quoted value has no closing quote")
    return bytes(value)


def _reason(error: re2.error) -> str:
    reason = error.args[0]  # RE2 gives its reason as bytes
    return reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)


def _quoted(value: str) -> str:
    """``value`` quoted as Go's ``strconv.Quote`` quotes it, which ``_unquoted`` reads back."""
    return '"' + "".join(_escaped(char) for char in value) + '"'


def _escaped(char: str) -> str:
    if char in _ESCAPED:
        return _ESCAPED[char]
    if char.isprintable():
        return char
    code = ord(char)
    if code < 0x80:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"

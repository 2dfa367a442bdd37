"""Prometheus-style durations (``30s``, ``5m``, ``1h30m``, ``500ms``, ``1d``, ``1w``), as written in
the alerting and thresholds files and on the command line."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

# ASCII digits only (``\d`` alone would take an Arabic-Indic "7d"), the whole text (``$`` alone
# would take a trailing newline).
_DURATION = re.compile(r"((\d+)w)?((\d+)d)?((\d+)h)?((\d+)m)?((\d+)s)?((\d+)ms)?", re.ASCII)
# Each unit in milliseconds: whole numbers, so that no sum loses a millisecond to a float.
_UNITS = {"w": 604_800_000, "d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1_000, "ms": 1}
_MILLISECOND = timedelta(milliseconds=1)


def parse_duration(value: object) -> timedelta:
    """A Prometheus duration: ``30s``, ``5m``, ``1h30m``, ``500ms``, ``1d``, ``1w``."""
    if isinstance(value, timedelta):
        return value
    text = str(value)
    found = _DURATION.fullmatch(text)
    if not text or found is None:
        raise ValueError(f"{text!r} is not a duration; write e.g. 30s, 5m, 1h30m, 500ms")
    amounts = found.groups()[1::2]
    try:
        # int() refuses more than 4,300 digits (ValueError); timedelta, over 999,999,999 days
        milliseconds = sum(int(a) * _UNITS[u] for a, u in zip(amounts, _UNITS, strict=True) if a)
        return timedelta(milliseconds=milliseconds)
    except (OverflowError, ValueError):
        raise ValueError(f"{text[:40]!r} is longer than any duration can be") from None


def format_duration(value: timedelta) -> str:
    """A duration as ``parse_duration`` reads it back: ``1d12h``, ``500ms``. To the whole
    millisecond below (so that even ``timedelta.max`` reads back), exactly (a float would lose
    milliseconds past about 285 years); none, or less than none: ``0s``."""
    left = value // _MILLISECOND
    if left <= 0:
        return "0s"
    parts = []
    for unit, milliseconds in _UNITS.items():
        amount, left = divmod(left, milliseconds)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts)


# Written back as it was read (``7d``, not ISO 8601's ``P7D``), so that a file's settings dumped
# to JSON, as an agreement of thresholds keeps them, read again as the same.
Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]

"""Prometheus-style durations (``30s``, ``5m``, ``1h30m``, ``500ms``, ``1d``, ``1w``), as written in
the alerting and thresholds files and on the command line."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator

_DURATION = re.compile(r"^((\d+)w)?((\d+)d)?((\d+)h)?((\d+)m)?((\d+)s)?((\d+)ms)?$")
_UNITS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1, "ms": 0.001}


def parse_duration(value: object) -> timedelta:
    """A Prometheus duration: ``30s``, ``5m``, ``1h30m``, ``500ms``, ``1d``, ``1w``."""
    if isinstance(value, timedelta):
        return value
    text = str(value)
    found = _DURATION.match(text)
    if not text or found is None:
        raise ValueError(f"{text!r} is not a duration; write e.g. 30s, 5m, 1h30m, 500ms")
    units = ("w", "d", "h", "m", "s", "ms")
    amounts = found.groups()[1::2]
    try:
        return timedelta(
            seconds=sum(int(a) * _UNITS[u] for a, u in zip(amounts, units, strict=True) if a)
        )
    except OverflowError:
        raise ValueError(f"{text!r} is longer than any duration can be") from None


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]

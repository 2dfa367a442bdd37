"""Synthetic versions: a load test's or an incident drill's decisions are recorded under a
version of their own, ``<version>~load-<time>`` or ``<version>~drill-<time>``, so that they
run through the whole pipeline yet never count in the real version's figures, searches or
exports (unless asked for)."""

from datetime import datetime

MARK = "~"


def synthetic_version(version: str, kind: str, at: datetime) -> str:
    return f"{version}{MARK}{kind}-{at:%Y%m%dT%H%M%S}"


def is_synthetic(version: str) -> bool:
    return MARK in version

"""The detector worker's own metrics, served at its probe port's ``/metrics``: the checks it
ran and how long they took, and the verdicts it recorded."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

CHECKS = Counter(
    "driftline_detector_checks_total", "Window checks run (each over every feature of a version)."
)
CHECK_SECONDS = Histogram(
    "driftline_detector_check_seconds",
    "Time of one window check of a version.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
VERDICTS = Counter(
    "driftline_detector_verdicts_total",
    "Verdicts recorded (drift_detected, drift_resolved events the agent took), by state.",
    ["state"],
)
for state in ("detected", "resolved"):
    VERDICTS.labels(state)

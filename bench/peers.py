"""Driftline's peers on the arrays of ``bench.scenarios``: Evidently's data-drift preset,
alibi-detect's KS and chi-square detectors and River's ADWIN, each at its defaults, and
alibi-detect's KS also at Driftline's false-alarm rate (1% per check).

Not a dependency of the project: ``bench.detectors`` installs these in an environment of their
own (``.bench/peers``) and runs this script there. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from alibi_detect.cd import ChiSquareDrift, KSDrift
from evidently import Report
from evidently.presets import DataDriftPreset
from river.drift import ADWIN

from bench import scenarios
from bench.scenarios import (
    CARDINALITIES,
    SHIFTS,
    STREAM_BASELINE,
    STREAM_SHIFT_AT,
    STREAM_SHIFTS,
    WINDOWS,
    Array,
    stream_figures,
)


def alibi_ks(p_val: float) -> Callable[[Array, Array], Array]:
    def flags(reference: Array, current: Array) -> Array:
        data = KSDrift(reference, p_val=p_val).predict(current)["data"]
        return np.asarray(data["p_val"] < data["threshold"])

    return flags


def alibi_chi2(p_val: float) -> Callable[[Array, Array], Array]:
    def flags(reference: Array, current: Array) -> Array:
        detector = ChiSquareDrift(reference.astype(int), p_val=p_val)
        data = detector.predict(current.astype(int))["data"]
        return np.asarray(data["p_val"] < data["threshold"])

    return flags


def evidently(reference: Array, current: Array) -> Array:
    """Per feature, whether the preset called it drifted (its test and threshold per size)."""
    names = [f"f{i}" for i in range(reference.shape[1])]
    snapshot = Report([DataDriftPreset()]).run(
        current_data=pd.DataFrame(current, columns=names),
        reference_data=pd.DataFrame(reference, columns=names),
    )
    flags = []
    for metric in snapshot.dict()["metrics"]:
        name = str(metric["metric_name"])
        if not name.startswith("ValueDrift("):
            continue
        threshold = float(name.rsplit("threshold=", 1)[1].rstrip(")"))
        value = float(metric["value"])
        flags.append(value < threshold if "p_value" in name else value >= threshold)
    return np.array(flags)


def no_drift(detector: Callable[[Array, Array], Array], checks: int) -> dict[str, float]:
    alarms = features = 0
    for seed in range(checks):
        flags = detector(*scenarios.no_drift(seed))
        alarms += bool(flags.any())
        features += int(flags.sum())
    return {
        "checks": checks,
        "false_alarm_rate_per_check": alarms / checks,
        "false_alarm_share_of_features": features / (checks * scenarios.FEATURES),
    }


def detection(detector: Callable[[Array, Array], Array], trials: int) -> dict[str, float]:
    rates = {}
    for shift in SHIFTS:
        for window in WINDOWS:
            hits = sum(
                bool(detector(*scenarios.shifted(seed, shift, window))[0]) for seed in range(trials)
            )
            rates[f"{shift}sd@{window}"] = hits / trials
    return rates


def seconds(detector: Callable[[Array, Array], Array], features: int, runs: int) -> float:
    reference, current = scenarios.wide(features)
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        detector(reference, current)
        timings.append(time.perf_counter() - started)
    return float(np.median(timings))


def adwin_delay(shift_sd: float, seeds: int) -> dict[str, Any]:
    """ADWIN updated per decision on ``scenarios.stream``: its median delay to the shift, and
    its alarms in the unshifted stretch after its first ``STREAM_BASELINE`` decisions."""
    delays, false_alarms = [], 0
    for seed in range(seeds):
        detector = ADWIN()
        for index, value in enumerate(scenarios.stream(shift_sd, seed)):
            detector.update(float(value))
            if not detector.drift_detected:
                continue
            if index >= STREAM_SHIFT_AT:
                delays.append(index - STREAM_SHIFT_AT + 1)
                break
            false_alarms += index >= STREAM_BASELINE
    return stream_figures(delays, false_alarms, seeds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checks", type=int, default=1_000)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--evidently-checks", type=int, default=100)
    parser.add_argument("--evidently-trials", type=int, default=10)
    parser.add_argument("--splits", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=20)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    figures: dict[str, Any] = {"checksum": scenarios.checksum(scenarios.no_drift(0))}
    figures["alibi_ks"] = {
        "seconds_50x10k": seconds(alibi_ks(0.05), 50, 5),
        "seconds_100x10k": seconds(alibi_ks(0.05), 100, 5),
        "no_drift_default": no_drift(alibi_ks(0.05), args.checks),
        "no_drift_at_1pct": no_drift(alibi_ks(0.01), args.checks),
        "detection_at_1pct": detection(alibi_ks(0.01), args.trials),
    }
    print("alibi-detect KS done", flush=True)
    figures["alibi_chi2"] = {
        "no_drift_default": _categorical_no_drift(alibi_chi2(0.05), args.checks),
        "no_drift_at_1pct": _categorical_no_drift(alibi_chi2(0.01), args.checks),
        "detection_at_1pct": _categorical_detection(alibi_chi2(0.01), args.trials),
    }
    print("alibi-detect chi-square done", flush=True)
    figures["evidently"] = {
        "seconds_50x10k": seconds(evidently, 50, 1),
        "no_drift_default": no_drift(evidently, args.evidently_checks),
        "detection_default": detection(evidently, args.evidently_trials),
    }
    print("Evidently done", flush=True)
    figures["alibi_chi2"]["cardinality_at_1pct"] = _cardinality(alibi_chi2(0.01), args.splits)
    print("alibi-detect chi-square cardinality sweep done", flush=True)
    figures["adwin"] = {f"{shift}sd": adwin_delay(shift, args.seeds) for shift in STREAM_SHIFTS}
    print(json.dumps(figures))


def _categorical_no_drift(
    detector: Callable[[Array, Array], Array], checks: int
) -> dict[str, float]:
    alarms = sum(
        bool(detector(*scenarios.categorical(seed, 0.0, 1_000)).any()) for seed in range(checks)
    )
    return {"checks": checks, "false_alarm_rate_per_check": alarms / checks}


def _cardinality(detector: Callable[[Array, Array], Array], splits: int) -> dict[str, float]:
    """False alarms on random splits of one categorical feature, per cardinality and shape."""
    return {
        f"{shape}@{categories}": sum(
            bool(detector(*scenarios.cardinality(seed, categories, shape)).any())
            for seed in range(splits)
        )
        / splits
        for categories in CARDINALITIES
        for shape in ("uniform", "zipf")
    }


def _categorical_detection(
    detector: Callable[[Array, Array], Array], trials: int
) -> dict[str, float]:
    return {
        f"moved0.03@{window}": sum(
            bool(detector(*scenarios.categorical(seed, 0.03, window))[0]) for seed in range(trials)
        )
        / trials
        for window in WINDOWS
    }


if __name__ == "__main__":
    main()

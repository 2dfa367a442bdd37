"""What Driftline's detectors cost and how well they judge, against their peers on the same
arrays (``bench.scenarios``), in one run:

- the time for one full check of 100 (and 50) features with 10,000-row windows, against the
  plain sort of the window that any exact test must do;
- the false-alarm rate over 1,000 no-drift checks of 10 features of different shapes, at the
  default ``min_effect`` and with significance alone (what the configured rate is about);
- the detection rate for shifts of 0.05, 0.1 and 0.2 sd at windows of 1k, 5k and 20k, at the
  default ``min_effect`` and with significance alone;
- categorical features: false alarms, and detection when 3% of a category's mass moves;
- on a stream of 10,000 unshifted then 10,000 shifted decisions, checked as the worker does
  (a window of the last 2,000 decisions every 100), the delay until the alarm for shifts of
  0.1 and 0.5 sd;
- the same figures for Evidently's data-drift preset, alibi-detect's KS and chi-square
  detectors, and River's ADWIN, installed in ``.bench/peers`` (made on first use; not project
  dependencies) and run by ``bench.peers``.

    .venv/bin/python -m bench.detectors [--checks 1000] [--trials 50] [--no-peers]

The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from bench import scenarios
from bench.scenarios import SHIFTS, WINDOWS, Array
from driftline.detectors.baseline import Baseline, BaselineBuilder
from driftline.detectors.hysteresis import Hysteresis
from driftline.detectors.verdict import FeatureVerdict, check_window

PEERS = Path(__file__).resolve().parent.parent / ".bench" / "peers"
PEER_PACKAGES = ["evidently==0.7.23", "alibi-detect==0.13.0", "river==0.23.0"]
SIGNIFICANCE_ONLY = {"wasserstein_sd": 0.0, "js_distance": 0.0, "rate_difference": 0.0}


def names(count: int) -> tuple[str, ...]:
    return tuple(f"f{i}" for i in range(count))


def fit(reference: Array, categorical: bool = False) -> Baseline:
    columns = names(reference.shape[1])
    builder = BaselineBuilder(
        continuous=() if categorical else columns,
        categorical=columns if categorical else (),
        reservoir=len(reference),
    )
    builder.add(_window(reference, categorical))
    return builder.build()


def _window(rows: Array, categorical: bool = False) -> dict[str, Any]:
    if categorical:
        return {n: [str(int(v)) for v in rows[:, i]] for i, n in enumerate(names(rows.shape[1]))}
    return {n: rows[:, i] for i, n in enumerate(names(rows.shape[1]))}


def driftline(
    min_effect: Mapping[str, float] | None = None, categorical: bool = False
) -> Callable[[Array, Array], Array]:
    """Per feature, whether a full check called it drifted (any of its checks)."""

    def flags(reference: Array, current: Array) -> Array:
        verdicts = check_window(
            fit(reference, categorical), _window(current, categorical), min_effect=min_effect
        )
        drifted = {v.feature for v in verdicts if isinstance(v, FeatureVerdict) and v.drifted}
        return np.array([n in drifted for n in names(reference.shape[1])] + [bool(drifted)])

    return flags


def median_ms(call: Callable[[], object], runs: int = 7) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        timings.append(time.perf_counter() - started)
    return float(np.median(timings)) * 1_000


def speed(features: int) -> dict[str, float]:
    reference, current = scenarios.wide(features)
    baseline = fit(reference)
    window = _window(current)
    check = median_ms(lambda: check_window(baseline, window))
    plain = median_ms(lambda: np.sort(current, axis=0))
    return {"check_ms": check, "sort_window_ms": plain, "ratio_to_sort": check / plain}


def no_drift(checks: int, min_effect: Mapping[str, float] | None = None) -> dict[str, float]:
    detector = driftline(min_effect)
    alarms = features = 0
    for seed in range(checks):
        flags = detector(*scenarios.no_drift(seed))
        alarms += bool(flags[-1])  # any check of the full check, the joint one included
        features += int(flags[:-1].sum())
    return {
        "checks": checks,
        "false_alarm_rate_per_check": alarms / checks,
        "false_alarm_share_of_features": features / (checks * scenarios.FEATURES),
    }


def detection(min_effect: Mapping[str, float] | None, trials: int) -> dict[str, float]:
    detector = driftline(min_effect)
    return {
        f"{shift}sd@{window}": sum(
            bool(detector(*scenarios.shifted(seed, shift, window))[0]) for seed in range(trials)
        )
        / trials
        for shift in SHIFTS
        for window in WINDOWS
    }


def categorical(
    checks: int, trials: int, min_effect: Mapping[str, float] | None = None
) -> dict[str, Any]:
    detector = driftline(min_effect, categorical=True)
    alarms = sum(
        bool(detector(*scenarios.categorical(seed, 0.0, 1_000))[-1]) for seed in range(checks)
    )
    return {
        "no_drift": {"checks": checks, "false_alarm_rate_per_check": alarms / checks},
        "detection": {
            f"moved0.03@{window}": sum(
                bool(detector(*scenarios.categorical(seed, 0.03, window))[0])
                for seed in range(trials)
            )
            / trials
            for window in WINDOWS
        },
    }


def stream_delay(shift_sd: float, window: int = 2_000, every: int = 100) -> dict[str, Any]:
    """The worker's way: a baseline of the first 5,000 decisions, then a check of the last
    ``window`` decisions every ``every`` decisions, through the worker's hysteresis."""
    values = scenarios.stream(shift_sd)
    builder = BaselineBuilder(continuous=("x",), reservoir=5_000)
    builder.add({"x": values[:5_000]})
    baseline = builder.build()
    hysteresis = Hysteresis()
    false_alarms = 0
    for end in range(5_000 + window, len(values) + 1, every):
        verdicts = check_window(baseline, {"x": values[end - window : end]})
        if any(t.state == "detected" for t in hysteresis.update(verdicts)):
            if end <= 10_000:
                false_alarms += 1
                hysteresis = Hysteresis()
            else:
                return {"delay_decisions": end - 10_000, "false_alarms_before_shift": false_alarms}
    return {"delay_decisions": None, "false_alarms_before_shift": false_alarms}


def peers(checks: int, trials: int) -> dict[str, Any]:
    python = PEERS / "bin" / "python"
    if not python.exists():
        print(f"installing {', '.join(PEER_PACKAGES)} into {PEERS} (once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(PEERS)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *PEER_PACKAGES], check=True)
    result = subprocess.run(
        [str(python), "-m", "bench.peers", "--checks", str(checks), "--trials", str(trials)],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        check=True,
    )
    figures: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checks", type=int, default=1_000, help="no-drift checks")
    parser.add_argument("--trials", type=int, default=50, help="trials per shift and window")
    parser.add_argument("--no-peers", action="store_true", help="Driftline's figures only")
    args = parser.parse_args()
    figures: dict[str, Any] = {"checksum": scenarios.checksum(scenarios.no_drift(0))}
    figures["speed_100x10k"] = speed(100)
    figures["speed_50x10k"] = speed(50)
    print(f"full check, 100 features x 10k rows: {figures['speed_100x10k']}", flush=True)
    figures["no_drift"] = no_drift(args.checks)
    figures["no_drift_significance_only"] = no_drift(args.checks, SIGNIFICANCE_ONLY)
    print(f"no drift: {figures['no_drift']}", flush=True)
    figures["detection_default"] = detection(None, args.trials)
    figures["detection_significance_only"] = detection(SIGNIFICANCE_ONLY, args.trials)
    print(f"detection: {figures['detection_default']}", flush=True)
    figures["categorical"] = categorical(args.checks, args.trials)
    figures["categorical_significance_only"] = categorical(
        args.checks, args.trials, SIGNIFICANCE_ONLY
    )
    figures["stream"] = {f"{shift}sd": stream_delay(shift) for shift in (0.1, 0.5)}
    print(f"stream: {figures['stream']}", flush=True)
    if not args.no_peers:
        figures["peers"] = peers(args.checks, args.trials)
        if not np.isclose(figures["peers"]["checksum"], figures["checksum"], rtol=1e-12):
            raise SystemExit("the peers were given different arrays: numpy versions disagree")
        figures["speedup_vs_alibi_ks_50"] = (
            figures["peers"]["alibi_ks"]["seconds_50x10k"] * 1_000
            / figures["speed_50x10k"]["check_ms"]
        )  # fmt: skip
        figures["speedup_vs_evidently_50"] = (
            figures["peers"]["evidently"]["seconds_50x10k"] * 1_000
            / figures["speed_50x10k"]["check_ms"]
        )  # fmt: skip
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

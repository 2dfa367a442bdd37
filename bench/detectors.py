"""What Driftline's detectors cost and how well they judge, against their peers on the same
arrays (``bench.scenarios``), in one run:

- the time for one full check of 100 (and 50) features with 10,000-row windows, against the
  plain sort of the window that any exact test must do;
- the false-alarm rate over 1,000 no-drift checks of 10 features of different shapes, at the
  default ``min_effect`` and with significance alone (what the configured rate is about);
- the detection rate for shifts of 0.05, 0.1 and 0.2 sd at windows of 1k, 5k and 20k, at the
  default ``min_effect`` and with significance alone;
- categorical features: false alarms, and detection when 3% of a category's mass moves;
- the cardinality sweep: false alarms on random splits of one categorical feature of 10, 100,
  1,000 and 5,000 categories, equally likely or Zipf-like (5,000 is above the identifier cap);
- streams of 5,000 baseline, 10,000 unshifted, then 10,000 decisions shifted by 0.1, 0.5 and
  1.0 sd: the median delay to the alarm of the sequential check (per decision) and of the
  window check as the worker makes it (the last 2,000 decisions every 100), and every alarm
  before the shift;
- real data: the airports that ship inside vega_datasets (3,376 rows; a city column of about
  2,700 values), false alarms on random halves and detection on a geographic split;
- the same figures for Evidently's data-drift preset, alibi-detect's KS and chi-square
  detectors, and River's ADWIN (per decision, on the same streams), installed in
  ``.bench/peers`` (made on first use; not project dependencies) and run by ``bench.peers``.

    .venv/bin/python -m bench.detectors [--checks 1000] [--trials 50] [--splits 200]
        [--seeds 20] [--no-peers]

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
from driftline.detectors.baseline import Baseline, BaselineBuilder, fit_baseline
from driftline.detectors.hysteresis import Hysteresis
from driftline.detectors.sequential import StreamCheck
from driftline.detectors.verdict import FeatureVerdict, check_window

PEERS = Path(__file__).resolve().parent.parent / ".bench" / "peers"
PEER_PACKAGES = ["evidently==0.7.23", "alibi-detect==0.13.0", "river==0.23.0"]
SIGNIFICANCE_ONLY = {"wasserstein_sd": 0.0, "cohens_w": 0.0, "rate_difference": 0.0}


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


def cardinality(splits: int) -> dict[str, float]:
    """False alarms per check on random splits, by cardinality and shape, significance only
    (what the configured 1% is about)."""
    detector = driftline(SIGNIFICANCE_ONLY, categorical=True)
    return {
        f"{shape}@{categories}": sum(
            bool(detector(*scenarios.cardinality(seed, categories, shape))[-1])
            for seed in range(splits)
        )
        / splits
        for categories in CARDINALITIES
        for shape in ("uniform", "zipf")
    }


def sequential_delay(shift_sd: float, seeds: int) -> dict[str, Any]:
    """The sequential check, per decision, on ``scenarios.stream``."""
    delays, false_alarms = [], 0
    for seed in range(seeds):
        values = scenarios.stream(shift_sd, seed)
        check = StreamCheck(fit_baseline({"x": values[:STREAM_BASELINE]}))
        for index in range(STREAM_BASELINE, len(values)):
            if not check.update({"x": values[index : index + 1]})[0].drifted:
                continue
            if index >= STREAM_SHIFT_AT:
                delays.append(index - STREAM_SHIFT_AT + 1)
                break
            false_alarms += 1
            check = StreamCheck(check.baseline)  # raised: start again, as after an alert
    return stream_figures(delays, false_alarms, seeds)


def window_delay(
    shift_sd: float, seeds: int, window: int = 2_000, every: int = 100
) -> dict[str, Any]:
    """The worker's window check: the last ``window`` decisions every ``every`` decisions,
    through the worker's hysteresis."""
    delays, false_alarms = [], 0
    for seed in range(seeds):
        values = scenarios.stream(shift_sd, seed)
        baseline = fit_baseline({"x": values[:STREAM_BASELINE]})
        hysteresis = Hysteresis()
        for end in range(STREAM_BASELINE + window, len(values) + 1, every):
            verdicts = check_window(baseline, {"x": values[end - window : end]})
            if not any(t.state == "detected" for t in hysteresis.update(verdicts)):
                continue
            if end > STREAM_SHIFT_AT:
                delays.append(end - STREAM_SHIFT_AT)
                break
            false_alarms += 1
            hysteresis = Hysteresis()
    return stream_figures(delays, false_alarms, seeds)


def real_data(splits: int) -> dict[str, Any]:
    """The airports of vega_datasets: every column checked, on random halves (any drifted
    feature is a false alarm) and on airports west of 95 W against those east of it."""
    from vega_datasets import data  # the bench's, not the detectors': a dev dependency

    airports = data.airports().drop(columns=["iata", "name"])  # unique per row: no signal
    rng = np.random.default_rng(0)
    alarms = 0
    for _ in range(splits):
        order = rng.permutation(len(airports))
        half = len(order) // 2
        baseline = fit_baseline(airports.iloc[order[:half]])
        verdicts = check_window(baseline, airports.iloc[order[half:]])
        alarms += any(isinstance(v, FeatureVerdict) and v.drifted for v in verdicts)
    west = airports["longitude"] < -95
    baseline = fit_baseline(airports[~west])
    verdicts = check_window(baseline, airports[west])
    return {
        "rows": len(airports),
        "kinds": baseline.features(),
        "random_halves": {"splits": splits, "false_alarm_rate_per_check": alarms / splits},
        "west_against_east": sorted(
            f"{v.feature} ({v.test})"
            for v in verdicts
            if isinstance(v, FeatureVerdict) and v.drifted
        ),
    }


def peers(checks: int, trials: int, splits: int, seeds: int) -> dict[str, Any]:
    python = PEERS / "bin" / "python"
    if not python.exists():
        print(f"installing {', '.join(PEER_PACKAGES)} into {PEERS} (once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(PEERS)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *PEER_PACKAGES], check=True)
    counts = {"checks": checks, "trials": trials, "splits": splits, "seeds": seeds}
    return run_in_peers("bench.peers", [f"--{name}={value}" for name, value in counts.items()])


def run_in_peers(module: str, arguments: list[str]) -> dict[str, Any]:
    """Run a peers' script in their environment; its figures, from its last line."""
    result = subprocess.run(
        [str(PEERS / "bin" / "python"), "-m", module, *arguments],
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
    parser.add_argument("--splits", type=int, default=200, help="splits per cardinality")
    parser.add_argument("--seeds", type=int, default=20, help="streams per shift")
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
    figures["cardinality"] = cardinality(args.splits)
    print(f"cardinality: {figures['cardinality']}", flush=True)
    figures["stream"] = {
        f"{shift}sd": {
            "sequential": sequential_delay(shift, args.seeds),
            "window": window_delay(shift, args.seeds),
        }
        for shift in STREAM_SHIFTS
    }
    print(f"stream: {figures['stream']}", flush=True)
    figures["real_data"] = real_data(args.splits)
    print(f"real data: {figures['real_data']}", flush=True)
    if not args.no_peers:
        figures["peers"] = peers(args.checks, args.trials, args.splits, args.seeds)
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

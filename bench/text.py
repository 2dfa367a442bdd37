"""Text drift on real text: Driftline's text check and text descriptors beside Evidently's text
drift (its domain classifier), on the same splits of the same sentences, in one run.

The corpus ships with Python: the sentences of the standard library's docstrings (library
prose: "Return the number of items in a container.") and of the language reference's help
topics in ``pydoc_data`` (reference prose: "The for statement is used to iterate over the
elements of a sequence."), at least 21 characters each.

- **False alarms:** random splits of the library sentences into a baseline and a window
  (200/200, 1,000/1,000, 2,000/2,000), each check at a 1% rate. Goal: within 1 ± 0.5%.
- **Detection:** against 2,000 library sentences, windows of 200, 1,000 and 5,000 library
  sentences, both drawn with replacement, in which 0% (the control), 10% or 30% are reference
  sentences (a change of topic), or in which every text is three sentences joined (a change of
  length).
- **Time per check** at 1,000 and 10,000 texts a side (goal: 10,000 in 2 s or less), and the
  descriptors' time per 1,000 texts.

    .venv/bin/python -m bench.text [--checks 400] [--descriptor-checks 100] [--trials 20]
        [--peer-checks 100] [--no-peers]

Evidently runs in the peers' environment (``bench.detectors`` makes it) on the very splits,
handed over in a file. The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pydoc_data.topics import topics
from typing import Any

import numpy as np
from scipy.stats import binom

from bench.detectors import PEERS, run_in_peers
from driftline.detectors.baseline import fit_baseline
from driftline.detectors.descriptors import describe, kinds
from driftline.detectors.text import TextDrift, check_text
from driftline.detectors.verdict import FeatureVerdict, check_window

RATE = 0.01
NULL_SIZES = [(200, 200), (1_000, 1_000), (2_000, 2_000)]
BASELINE = 2_000
WINDOWS = [200, 1_000, 5_000]
TOPIC_SHARES = [0.0, 0.1, 0.3]
JOINED = 3  # sentences a text in the longer window
SPEED_SIZES = [1_000, 10_000]
SKIPPED_MODULES = {"antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo"}

Split = tuple[list[str], list[str]]


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.strip()) > 20]


def library_sentences() -> list[str]:
    """The distinct sentences of the public functions' and classes' docstrings of the standard
    library, in a fixed order."""
    found: set[str] = set()
    for name in sorted(sys.stdlib_module_names):
        if name.startswith("_") or name in SKIPPED_MODULES:
            continue
        try:
            module = importlib.import_module(name)
        except Exception:  # a module this platform lacks or cannot load is left out
            continue
        for attribute, value in vars(module).items():
            public = not attribute.startswith("_")
            if public and (inspect.isfunction(value) or inspect.isclass(value)):
                found.update(_sentences(inspect.getdoc(value) or ""))
    return sorted(found)


def reference_sentences() -> list[str]:
    return sorted({s for body in topics.values() for s in _sentences(body)})


def null_splits(library: list[str], checks: int) -> dict[str, list[Split]]:
    rng = np.random.default_rng(0)
    splits = {}
    for baseline_size, window_size in NULL_SIZES:
        runs = []
        for _ in range(checks):
            drawn = rng.choice(len(library), baseline_size + window_size, replace=False)
            texts = [library[i] for i in drawn]
            runs.append((texts[:baseline_size], texts[baseline_size:]))
        splits[f"{baseline_size}/{window_size}"] = runs
    return splits


def shifted_splits(library: list[str], reference: list[str], trials: int) -> dict[str, list[Split]]:
    """Baseline and window both drawn with replacement from the library sentences (so that
    repeats are alike on both sides), then a share of the window swapped for reference
    sentences; a share of 0% is the control, which must not alarm more than the rate."""
    rng = np.random.default_rng(1)
    splits: dict[str, list[Split]] = {}
    for _ in range(trials):
        baseline = list(rng.choice(library, BASELINE))
        for window in WINDOWS:
            for share in TOPIC_SHARES:
                topical = int(window * share)
                texts = list(rng.choice(library, window - topical)) + list(
                    rng.choice(reference, topical)
                )
                splits.setdefault(f"topic {share:.0%}@{window}", []).append((baseline, texts))
            longer = [" ".join(rng.choice(library, JOINED)) for _ in range(window)]
            splits.setdefault(f"length x{JOINED}@{window}", []).append((baseline, longer))
    return splits


def text_alarm(baseline: list[str], window: list[str], seed: int = 0) -> bool:
    result = check_text(baseline, window, seed=seed)
    return isinstance(result, TextDrift) and result.p_value < RATE


def descriptor_alarm(baseline: list[str], window: list[str]) -> bool:
    columns = describe("prompt", baseline)
    fitted = fit_baseline(columns, kinds("prompt", columns))
    verdicts = check_window(fitted, describe("prompt", window), rate=RATE)
    return any(isinstance(v, FeatureVerdict) and v.drifted for v in verdicts)


def alarm_rates(
    splits: dict[str, list[Split]], alarm: Callable[[list[str], list[str]], bool]
) -> dict[str, float]:
    return {name: float(np.mean([alarm(b, w) for b, w in runs])) for name, runs in splits.items()}


def calibration(rates: dict[str, float], checks: int) -> dict[str, Any]:
    """The pooled false-alarm rate with its 95% binomial interval under the stated rate."""
    total = checks * len(rates)
    alarms = round(sum(rates.values()) * checks)
    low, high = np.asarray(binom.ppf([0.025, 0.975], total, RATE)) / total
    return {"checks": total, "rate": alarms / total, "expected_interval": [float(low), float(high)]}


def speed_splits(library: list[str]) -> dict[str, list[Split]]:
    """One split a size, of texts drawn with replacement (the corpus has fewer than 10,000)."""
    rng = np.random.default_rng(2)
    return {
        str(size): [(list(rng.choice(library, size)), list(rng.choice(library, size)))]
        for size in SPEED_SIZES
    }


def seconds_per_check(library: list[str], speed: dict[str, list[Split]]) -> dict[str, float]:
    figures = {}
    for size, [(baseline, window)] in speed.items():
        started = time.perf_counter()
        check_text(baseline, window)
        figures[f"text_check_{size}"] = time.perf_counter() - started
    describe("prompt", library[:1])  # loads the language model (about a second), once
    started = time.perf_counter()
    describe("prompt", library[:1_000])
    figures["descriptors_per_1000_texts"] = time.perf_counter() - started
    return figures


def peers(handed_over: dict[str, dict[str, list[Split]]]) -> dict[str, Any]:
    if not (PEERS / "bin" / "python").exists():
        return {"skipped": f"no peers' environment at {PEERS}: run bench.detectors first"}
    with tempfile.NamedTemporaryFile("w", suffix=".json") as handed:
        json.dump(handed_over, handed)
        handed.flush()
        return run_in_peers("bench.peers_text", [handed.name])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checks", type=int, default=400, help="null splits per size")
    parser.add_argument("--trials", type=int, default=20, help="trials per shifted window")
    parser.add_argument(
        "--descriptor-checks", type=int, default=100, help="null splits per size, descriptors"
    )
    parser.add_argument("--peer-checks", type=int, default=100, help="null splits per size")
    parser.add_argument("--no-peers", action="store_true", help="Driftline's figures only")
    options = parser.parse_args()
    library, reference = library_sentences(), reference_sentences()
    figures: dict[str, Any] = {
        "library_sentences": len(library),
        "reference_sentences": len(reference),
    }
    speed = speed_splits(library)
    figures["seconds"] = seconds_per_check(library, speed)
    print(f"seconds: {figures['seconds']}", flush=True)
    null = null_splits(library, options.checks)
    text_null = alarm_rates(null, text_alarm)
    figures["text_false_alarms"] = text_null | {"pooled": calibration(text_null, options.checks)}
    fewer = {name: runs[: options.descriptor_checks] for name, runs in null.items()}
    descriptor_null = alarm_rates(fewer, descriptor_alarm)
    figures["descriptor_false_alarms"] = descriptor_null | {
        "pooled": calibration(descriptor_null, len(next(iter(fewer.values()))))
    }
    print(f"false alarms: {figures['text_false_alarms']}", flush=True)
    shifted = shifted_splits(library, reference, options.trials)
    figures["text_detection"] = alarm_rates(shifted, text_alarm)
    figures["descriptor_detection"] = alarm_rates(shifted, descriptor_alarm)
    print(f"detection: {figures['text_detection']}", flush=True)
    if not options.no_peers:
        few = {name: runs[: options.peer_checks] for name, runs in null.items()}
        figures["evidently"] = peers({"null": few, "shifted": shifted, "speed": speed})
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

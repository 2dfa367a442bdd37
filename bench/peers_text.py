"""Evidently's text drift on the splits ``bench.text`` hands over in a JSON file: its domain
classifier (TF-IDF and a linear model on half the texts, the ROC AUC on the other half), as its
data-drift defaults choose it for a text column. With at most 1,000 reference texts the AUC is
compared with the 95th percentile of a random classifier's (``perc_text_content_drift``), else
with 0.55 (``abs_text_content_drift``). The percentile test also runs at 1% (the 99th), to set it
beside Driftline's rate.

Runs in the peers' environment (``.bench/peers``), as ``bench.peers``. The last line printed is
one JSON object.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd

try:  # Evidently 0.7 keeps its earlier API under evidently.legacy
    from evidently.legacy.utils.data_drift_utils import calculate_text_drift_score
except ImportError:
    from evidently.utils.data_drift_utils import calculate_text_drift_score

PERCENTILE_UP_TO = 1_000  # reference texts, as Evidently's default choice of test


def drifted(baseline: list[str], window: list[str], p_value: float = 0.05) -> bool:
    bootstrap = len(baseline) <= PERCENTILE_UP_TO
    _auc, alarm = calculate_text_drift_score(
        pd.Series(baseline), pd.Series(window), bootstrap=bootstrap, p_value=p_value
    )
    return bool(alarm)


def rates(splits: dict[str, list[Any]], p_value: float) -> dict[str, float]:
    return {
        name: float(np.mean([drifted(b, w, p_value) for b, w in runs]))
        for name, runs in splits.items()
    }


def main() -> None:
    warnings.filterwarnings("ignore")
    with open(sys.argv[1]) as handed:
        splits = json.load(handed)
    figures: dict[str, Any] = {
        "false_alarms_default": rates(splits["null"], 0.05),
        "false_alarms_at_1pct": rates(splits["null"], 0.01),
        "detection_default": rates(splits["shifted"], 0.05),
    }
    seconds = {}
    for size, [(baseline, window)] in splits["speed"].items():
        started = time.perf_counter()
        drifted(baseline, window)
        seconds[f"text_check_{size}"] = time.perf_counter() - started
    figures["seconds_per_check"] = seconds
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

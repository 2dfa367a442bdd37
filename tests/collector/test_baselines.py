"""Baselines from reference files (CSV, JSON Lines, Parquet) and from first decisions: kinds
judged from the data, bad files named with the reason, and records that fit in one event."""

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from driftline.agent.contract import (
    MAX_EVENT_BYTES,
    ModelRef,
    baseline_digest,
    component_event,
    wire_bytes,
)
from driftline.collector.drift.baselines import (
    MAX_RECORD_BYTES,
    baseline_payload,
    fit_reference,
    fit_rows,
    for_one_event,
)
from driftline.collector.drift.features import VIOLATIONS, flatten
from driftline.collector.drift.reference import ReferenceFileError, read_reference

ROWS = [
    {"income": 40_000 + 100 * n, "region": ["north", "south"][n % 2], "confidence": 0.5 + n / 400}
    for n in range(200)
]


def write(path: Path, rows: list[dict[str, object]]) -> Path:
    if path.suffix == ".csv":
        with path.open("w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_every_format_gives_the_same_baseline(tmp_path: Path, suffix: str) -> None:
    fitted = fit_reference(write(tmp_path / f"golden{suffix}", ROWS), review_threshold=0.7)
    baseline = fitted.baseline
    assert baseline.features() == {
        "confidence": "continuous",
        "income": "continuous",
        "region": "categorical",
    }
    assert baseline.size == 200
    assert baseline.categorical["region"] == {"north": 100, "south": 100}
    assert baseline.sorted_columns["income"][0] == 40_000
    assert baseline.review_threshold == 0.7
    assert fitted.baseline_id == baseline_digest(fitted.record)
    assert fitted.source == f"reference file golden{suffix}"


def test_a_csv_with_empty_cells_counts_them_missing(tmp_path: Path) -> None:
    path = tmp_path / "gaps.csv"
    path.write_text("income,region\n1,north\n,south\n3,\n")
    baseline = fit_reference(path).baseline
    assert baseline.missing == {"income": 1, "region": 1}


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("missing.csv", None, "no such file"),
        ("notes.txt", "hello", "unknown format '.txt'"),
        ("bad.jsonl", '{"a": 1}\n{"a": \n', "line 2 is not JSON"),
        ("list.jsonl", "[1, 2]\n", "line 1 is not a JSON object"),
        ("fake.parquet", "not parquet", "not a Parquet file"),
    ],
)
def test_a_bad_reference_file_is_named_with_the_reason(
    tmp_path: Path, name: str, content: str | None, reason: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(ReferenceFileError, match=reason):
        list(read_reference(path))


def test_reading_is_in_chunks_whatever_the_file_size(tmp_path: Path) -> None:
    path = write(tmp_path / "big.jsonl", ROWS)
    assert [len(chunk) for chunk in read_reference(path, chunk_rows=64)] == [64, 64, 64, 8]


def test_nested_inputs_become_dotted_features_and_lists_are_left_out() -> None:
    assert flatten({"a": {"b": 1, "c": {"d": "x"}}, "tags": [1, 2], "e": None}) == {
        "a.b": 1,
        "a.c.d": "x",
        "e": None,
    }


def test_a_record_too_large_for_one_event_is_sampled_down_uniformly() -> None:
    rng = np.random.default_rng(1)
    rows = [{f"f{i}": float(v) for i, v in enumerate(row)} for row in rng.normal(size=(5_000, 40))]
    baseline = fit_rows([rows], reservoir=5_000)
    fitted = for_one_event(baseline, "test")
    assert fitted.reservoir_rows < 5_000
    assert len(json.dumps(fitted.record, separators=(",", ":"))) <= MAX_RECORD_BYTES
    assert fitted.baseline.size == 5_000  # still summarises every decision
    # A uniform sample keeps the distribution: the median stays near 0.
    assert abs(np.median(fitted.baseline.sorted_columns["f0"])) < 0.1


def test_contract_violations_are_a_flag_counted_per_decision() -> None:
    rows = [{"x": float(n), VIOLATIONS: n % 4 == 0} for n in range(100)]
    baseline = fit_rows([rows], flags=(VIOLATIONS,))
    assert baseline.flags == {VIOLATIONS: 25}
    assert baseline.features()[VIOLATIONS] == "flag"


@pytest.mark.parametrize("features", [20, 40])
def test_the_baseline_set_event_of_a_wide_baseline_fits_in_one_event(features: int) -> None:
    """The record is sampled down to what the event's bound leaves room for: a record within
    an older, larger bound (900 kB) made an event the agent refused, so the baseline was never
    set and was fitted again every round."""
    rng = np.random.default_rng(2)
    rows = [
        {f"f{i}": float(v) * 1e3 for i, v in enumerate(r)}
        for r in rng.normal(size=(10_000, features))
    ]
    fitted = for_one_event(fit_rows([rows]), "test")
    model = ModelRef(name="wide", version="1")
    payload = baseline_payload(fitted, version="1", set_by="test")
    event = component_event("baseline_set", payload, service="driftline-detector", model=model)
    assert len(wire_bytes(event)) <= MAX_EVENT_BYTES
    assert fitted.reservoir_rows > 1_000  # and not sampled down further than it needs

"""Reading a reference data set (the golden data a team agreed on) in chunks of rows.

CSV, JSON Lines and Parquet are read a chunk at a time, so a reference of any size fits in
memory. Each row is a flat mapping of feature names to values; CSV cells that read as numbers
become numbers and empty cells missing values.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from driftline.collector.drift.features import flatten

CHUNK_ROWS = 10_000
SUFFIXES = (".csv", ".jsonl", ".ndjson", ".parquet")


class ReferenceFileError(ValueError):
    """A reference file that cannot be read; the message says where and why."""


def read_reference(path: Path, chunk_rows: int = CHUNK_ROWS) -> Iterator[list[dict[str, Any]]]:
    if not path.is_file():
        raise ReferenceFileError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        rows = _csv_rows(path)
    elif suffix in (".jsonl", ".ndjson"):
        rows = _json_lines(path)
    elif suffix == ".parquet":
        rows = _parquet_rows(path)
    else:
        known = ", ".join(SUFFIXES)
        raise ReferenceFileError(f"{path}: unknown format {suffix!r}; use one of {known}")
    while chunk := list(islice(rows, chunk_rows)):
        yield chunk


def _csv_rows(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(newline="", encoding="utf-8") as file:
        for row in csv.DictReader(file):
            yield {name: _cell(value) for name, value in row.items() if name is not None}


def _cell(text: str | None) -> float | str | None:
    if text is None or text.strip() == "":
        return None
    try:
        return float(text)
    except ValueError:
        return text


def _json_lines(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as error:
                raise ReferenceFileError(f"{path}: line {number} is not JSON: {error}") from None
            if not isinstance(row, dict):
                raise ReferenceFileError(f"{path}: line {number} is not a JSON object")
            yield flatten(row)


def _parquet_rows(path: Path) -> Iterator[dict[str, Any]]:
    try:
        parquet = pq.ParquetFile(path)
    except Exception as error:  # pyarrow raises several types for files that are not Parquet
        raise ReferenceFileError(f"{path}: not a Parquet file: {error}") from None
    for batch in parquet.iter_batches(batch_size=CHUNK_ROWS):
        for row in batch.to_pylist():
            yield flatten(row)

"""``make reliability``: run the fault scenarios and print one table.

    .venv/bin/python -m tests.faults [--small] [--only broker_cut,malformed,...]

At full scale the run takes about 25 minutes; ``--small`` is the test suite's scale. The last
line is one JSON object with every row.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tests.faults.harness import Row
from tests.faults.scenarios import FULL, SCENARIOS, SMALL

console = Console(stderr=True, width=220)


def table(rows: list[Row]) -> Table:
    shown = Table(title="Driftline under faults")
    for heading in ("scenario", "load", "fault", "sent", "lost", "stored twice", "ledger", "note"):
        shown.add_column(heading, justify="right" if heading in ("sent", "lost") else "left")
    for row in rows:
        shown.add_row(
            row.scenario, row.load, row.fault, f"{row.sent:,}", f"{row.lost:,}",
            f"{row.duplicated:,}", "verifies" if row.intact else "BROKEN", row.note,
        )  # fmt: skip
    return shown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="the test suite's scale")
    parser.add_argument("--only", help="comma-separated scenario names", default="")
    options = parser.parse_args()
    scale = SMALL if options.small else FULL
    names = [name for name in options.only.split(",") if name] or list(SCENARIOS)
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    rows = []
    for name in names:
        with tempfile.TemporaryDirectory(prefix=f"driftline-{name}-") as workdir:
            console.print(f"[bold]{name}[/]: {scale[name]}")
            row = SCENARIOS[name](Path(workdir), **scale[name])
            console.print(f"  {asdict(row) | {'lost': row.lost, 'duplicated': row.duplicated}}")
            rows.append(row)
    console.print(table(rows))
    print(
        json.dumps(
            {
                "scale": "small" if options.small else "full",
                "all_clean": all(row.clean for row in rows),
                "rows": [
                    asdict(row) | {"lost": row.lost, "duplicated": row.duplicated} for row in rows
                ],
            }
        )
    )


if __name__ == "__main__":
    main()

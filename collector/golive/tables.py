"""The go-live gate's evaluation as a table, as the command and the demo print it."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from driftline.collector.golive.gate import Evaluation

STYLES = {"pass": "green", "fail": "red", "not enough data": "yellow"}


def readiness_table(evaluation: Evaluation) -> Table:
    """Every criterion with its threshold, figure, sample and result; names are not markup."""
    table = Table(
        title=escape(
            f"{evaluation.model} {evaluation.version}: {evaluation.window_start:%Y-%m-%d %H:%M} "
            f"to {evaluation.window_end:%Y-%m-%d %H:%M} UTC"
        )
    )
    for column in ("area", "criterion", "threshold", "measured", "sample", "result"):
        table.add_column(column, overflow="fold")  # names are never cut
    for c in evaluation.criteria:
        sample = "" if c.sample is None else f"{c.sample:,}"
        result = f"[{STYLES[c.status]}]{c.status}[/]"
        cells = (c.area, c.name, c.threshold, c.measured or "—")
        table.add_row(*(escape(cell) for cell in cells), sample, result)
    return table


def verdict_line(evaluation: Evaluation) -> str:
    """``verdict: go; day 41 of 90 (decision due 2027-03-01)`` as rich text."""
    style = {"go": "green", "no-go": "red"}.get(evaluation.verdict, "yellow")
    clock = f"; {escape(evaluation.clock)}" if evaluation.clock else ""
    return f"verdict: [bold {style}]{evaluation.verdict}[/]{clock}"

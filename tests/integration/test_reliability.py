"""The reliability table's fault scenarios at a small scale, so that a regression fails CI:
for each, nothing lost, nothing stored twice, and the ledger verifies. ``make reliability``
runs them at full scale (``tests.faults``)."""

from pathlib import Path

import pytest

from tests.faults.scenarios import SCENARIOS, SMALL


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_nothing_lost_or_stored_twice_under(name: str, tmp_path: Path) -> None:
    row = SCENARIOS[name](tmp_path, **SMALL[name])
    assert row.sent > 0, row
    assert (row.lost, row.duplicated, row.intact) == (0, 0, True), row

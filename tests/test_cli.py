"""The ``driftline`` command: the README's demo, ledger verification, and bad settings."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path


def driftline(
    *args: str, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "collector", *args],
        env=os.environ | (env or {}),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_demo_prints_a_decision_with_its_review_and_feedback(tmp_path: Path) -> None:
    database = tmp_path / "demo.db"
    result = driftline(
        "demo",
        "--decisions",
        "300",
        env={"DRIFTLINE_DATABASE_URL": f"sqlite:///{database}", "DRIFTLINE_API_PORT": "0"},
    )

    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "agent delivered" in out
    assert "intact" in out
    assert '"reviews": [' in out and '"reviewer":' in out
    assert '"feedback": [' in out and '"reporter":' in out
    assert "API docs: http://127.0.0.1:" in out

    verified = driftline("verify", env={"DRIFTLINE_DATABASE_URL": f"sqlite:///{database}"})
    assert verified.returncode == 0, verified.stdout
    assert "intact" in verified.stdout

    with sqlite3.connect(database) as connection:
        connection.execute(
            "UPDATE ledger_entries SET event_bytes = CAST(replace(CAST(event_bytes AS TEXT),"
            " 'loan-desk', 'loan-desq') AS BLOB) WHERE seq = 3 AND partition = 0"
        )
    tampered = driftline("verify", env={"DRIFTLINE_DATABASE_URL": f"sqlite:///{database}"})
    assert tampered.returncode == 1
    assert "entry 3" in tampered.stdout and "BROKEN" in tampered.stdout


def test_a_bad_setting_is_named_and_nothing_starts() -> None:
    result = driftline("migrate", env={"DRIFTLINE_DATABASE_URL": "mysql://root@localhost/x"})
    assert result.returncode == 2
    assert "database_url" in result.stderr
    assert "only sqlite:// and postgresql://" in result.stderr


def test_collect_without_a_broker_says_what_to_set(tmp_path: Path) -> None:
    result = driftline(
        "collect",
        env={
            "DRIFTLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
            "DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS": "",
        },
    )
    assert result.returncode == 2
    assert "DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS" in result.stderr

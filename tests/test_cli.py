"""The ``driftline`` command: the README's demo, ledger verification, bad and missing
settings, read-only commands that leave the database alone, and help that fits."""

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import pytest
import typer
from sqlalchemy import Engine, inspect
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from driftline.collector.cli.main import app
from driftline.collector.runtime.broker import EmbeddedBroker
from driftline.collector.store.database import make_engine
from tests.waiting import wait_for


def driftline(
    *args: str, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "driftline", *args],
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
    assert "signed 3 checkpoints" in out and "served rows, intact" in out
    assert "hash to the signed checkpoint, checked offline" in out
    assert '"reviews": [' in out and '"reviewer":' in out
    assert '"feedback": [' in out and '"reporter":' in out
    assert "API docs: http://127.0.0.1:" in out
    assert "detector set baseline" in out and "first 300 decisions" in out
    assert "drift detected debt_ratio (ks)" in out
    assert "drift detected confidence (ks)" in out
    for unshifted in ("income", "age", "employment_years", "region"):
        assert f"drift detected {unshifted} " not in out
    # The chat service: its tokens and cost, then its users' topic and length drift.
    assert "simulated chat service help-desk recorded 1000 answers" in out
    assert "USD per thousand answers" in out
    assert "drift detected question (domain-classifier)" in out
    assert "drift detected question.characters (ks)" in out
    assert "% of the baseline, " in out  # the words that moved

    verified = driftline("audit", "verify", env={"DRIFTLINE_DATABASE_URL": f"sqlite:///{database}"})
    assert verified.returncode == 0, verified.stdout
    assert "intact" in verified.stdout

    with sqlite3.connect(database) as connection:
        connection.execute(
            "UPDATE ledger_entries SET event_bytes = CAST(replace(CAST(event_bytes AS TEXT),"
            " 'loan-desk', 'loan-desq') AS BLOB) WHERE seq = 3 AND partition = 0"
        )
    tampered = driftline("audit", "verify", env={"DRIFTLINE_DATABASE_URL": f"sqlite:///{database}"})
    assert tampered.returncode == 1
    assert "entry 3" in tampered.stdout and "BROKEN" in tampered.stdout


def test_a_bad_setting_is_named_and_nothing_starts() -> None:
    result = driftline("migrate", env={"DRIFTLINE_DATABASE_URL": "mysql://root@localhost/x"})
    assert result.returncode == 2
    assert "database_url" in result.stderr
    assert "only sqlite:// and postgresql://" in result.stderr


NEEDS_KAFKA = {
    "collect": [],
    "detect": [],
    "route": [],
    "baseline fit": ["--model", "m", "--version", "1", "--reference", "golden.csv"],
    "drill": ["--model", "m", "--version", "1"],
    "readiness": ["--model", "m", "--version", "1"],  # it records its evaluation
}


@pytest.mark.parametrize("command", NEEDS_KAFKA)
def test_a_command_that_needs_kafka_and_has_none_says_what_to_set(
    command: str, tmp_path: Path
) -> None:
    """One policy: exit 2 naming the setting, before anything is opened (detect, route and
    baseline fit used to try 127.0.0.1:9092; readiness skipped recording)."""
    database = tmp_path / "x.db"
    result = driftline(
        *command.split(), *NEEDS_KAFKA[command],
        env={"DRIFTLINE_DATABASE_URL": f"sqlite:///{database}",
             "DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS": ""},
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert "DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS (--kafka-bootstrap-servers) is not set" in (
        result.stderr
    )
    assert not database.exists()


READ_ONLY = {
    "audit verify": [],
    "audit checkpoints": ["--out", "{tmp}/cp.json"],
    "audit prove": ["0190a1d2-0000-7000-8000-000000000000", "--out", "{tmp}/proof.json"],
    "readiness": ["--model", "m", "--version", "1", "--no-record", "--thresholds", "{tmp}/t.yaml"],
    "baseline list": [],
    "silence list": [],
    "token list": [],
    "audit holds": [],
}


@pytest.mark.parametrize("command", READ_ONLY)
def test_a_read_only_command_on_a_missing_database_names_it_and_creates_nothing(
    command: str, tmp_path: Path
) -> None:
    database = tmp_path / "missing.db"
    (tmp_path / "t.yaml").write_text("thresholds:\n  - model: m\n")
    public = tmp_path / "signing-key.pub.pem"  # the verifiers' key is there; the store is not
    assert driftline("audit", "keygen", "--out", str(tmp_path / "signing-key.pem")).returncode == 0
    result = driftline(
        *command.split(), *(arg.format(tmp=tmp_path) for arg in READ_ONLY[command]),
        env={"DRIFTLINE_DATABASE_URL": f"sqlite:///{database}",
             "DRIFTLINE_SIGNING_PUBLIC_KEY_FILE": str(public)},
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"no database at sqlite:///{database}" in result.stderr
    assert not database.exists()


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_a_read_only_command_on_an_unmigrated_database_names_it_and_leaves_it_so(
    database_url: str,
) -> None:
    # The server trusts local connections, so the password is taken and never needed.
    url = make_url(database_url).set(password=PASSWORD)
    if url.get_backend_name() == "sqlite":
        sqlite3.connect(str(url.database)).close()  # an empty file: a database, no schema
    result = driftline(
        "baseline", "list", env={"DRIFTLINE_DATABASE_URL": url.render_as_string(False)}
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "not a Driftline store (no schema)" in result.stderr
    assert "run `driftline migrate`" in result.stderr
    assert PASSWORD not in result.stderr
    shown = url.render_as_string(hide_password=True)
    assert shown.split("://")[1] in result.stderr  # named, its password as ***
    assert inspect(make_engine(database_url)).get_table_names() == []


def test_help_groups_commands_in_panels_and_every_line_fits_80_columns() -> None:
    """Every command and option says what it is for, and at 80 columns no help is cut off."""
    root = typer.main.get_command(app)
    runner = CliRunner()

    def commands(
        command: click.Command, path: tuple[str, ...] = ()
    ) -> Iterator[tuple[tuple[str, ...], click.Command]]:
        yield path, command
        for name, sub in getattr(command, "commands", {}).items():
            yield from commands(sub, (*path, name))

    for path, command in commands(root):
        assert command.help, f"driftline {' '.join(path)} has no help"
        for param in command.params:
            assert getattr(param, "help", None), f"driftline {' '.join(path)}: {param.name}"
        shown = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "80"}).output
        for line in shown.splitlines():
            assert "…" not in line and len(line) <= 80, f"driftline {' '.join(path)}: {line}"
    top = runner.invoke(app, ["--help"], env={"COLUMNS": "80"}).output
    panels = [line.split("─ ")[1].split(" ─")[0] for line in top.splitlines() if "╭─ " in line]
    assert panels == ["Options", "Run", "Audit", "Go-live", "Configure"]


def test_baseline_fit_sets_it_through_kafka_and_show_and_list_find_it(
    tmp_path: Path,
    broker: EmbeddedBroker,
    topic: str,
    engine: Engine,
    run_collector: Callable[[], None],
) -> None:
    run_collector()
    reference = tmp_path / "golden.csv"
    reference.write_text(
        "income,region,confidence\n"
        + "".join(f"{40_000 + n},{'north' if n % 2 else 'south'},0.9\n" for n in range(500))
    )
    env = {
        "DRIFTLINE_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "DRIFTLINE_TOPIC": topic,
        "COLUMNS": "200",  # rich fits tables to the terminal; keep whole cells to read
    }
    model = ("--model", "credit-risk", "--version", "3.1.0")
    fitted = driftline(
        "baseline", "fit", *model, "--reference", str(reference), "--set-by", "a.kim", env=env
    )
    assert fitted.returncode == 0, fitted.stdout + fitted.stderr
    assert "set for credit-risk 3.1.0 (reference file golden.csv, 500 decisions)" in fitted.stdout

    def shown() -> subprocess.CompletedProcess[str]:
        return driftline("baseline", "show", *model, env=env)

    result = wait_for(shown, lambda r: r.returncode == 0, what="the baseline in the store")
    assert "by a.kim, from reference file golden.csv, summarising 500 decisions" in result.stdout
    assert "region" in result.stdout and "categorical" in result.stdout

    listed = driftline("baseline", "list", env=env)
    assert "credit-risk" in listed.stdout and "a.kim" in listed.stdout

    unknown = driftline("baseline", "show", "--model", "credit-risk", "--version", "9", env=env)
    assert unknown.returncode == 2
    assert "no baseline set for credit-risk 9" in unknown.stderr


def test_baseline_fit_needs_exactly_one_source(tmp_path: Path) -> None:
    result = driftline("baseline", "fit", "--model", "m", "--version", "1")
    assert result.returncode == 2
    assert "give exactly one of --reference FILE and --first N" in result.stderr
    missing = driftline(
        "baseline", "fit", "--model", "m", "--version", "1", "--reference", str(tmp_path / "x.csv"),
        env={"DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"},  # never reached
    )  # fmt: skip
    assert missing.returncode == 2
    assert "x.csv: no such file" in missing.stderr


PASSWORD = "hunter2-not-for-print"
SASL_PASSWORD = "sasl-not-for-print"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_up_demo_and_migrate_show_the_database_url_with_its_password_masked(
    database_url: str, tmp_path: Path
) -> None:
    # The server trusts local connections, so the password is taken and never needed.
    url = make_url(database_url).set(password=PASSWORD).render_as_string(hide_password=False)
    env = os.environ | {
        "DRIFTLINE_DATABASE_URL": url,
        "DRIFTLINE_API_PORT": "0",
        "DRIFTLINE_EMBEDDED_BROKER_PORT": "0",
        "DRIFTLINE_KAFKA_SASL_USERNAME": "collector",
        "DRIFTLINE_KAFKA_SASL_PASSWORD": SASL_PASSWORD,
    }
    migrated = driftline("migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    demo = driftline("demo", "--decisions", "200", "--shifted", "0", env=env)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    log = tmp_path / "up.log"
    with log.open("w") as out:
        up = subprocess.Popen(
            [sys.executable, "-m", "driftline", "up"],
            env=env | {"DRIFTLINE_DETECT_ENABLED": "false"},
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_for(log.read_text, lambda text: "Ctrl-C stops everything" in text, 120, what="up")
        finally:
            up.send_signal(signal.SIGINT)  # as Ctrl-C: the stack stops its broker
            up.wait(timeout=60)
    masked = (
        make_url(url)
        .render_as_string(hide_password=True)
        .replace("postgresql://", "postgresql+psycopg://")
    )
    for output in (migrated.stdout, demo.stdout + demo.stderr, log.read_text()):
        assert PASSWORD not in output and SASL_PASSWORD not in output
        assert masked in output  # the URL is still shown, password as ***


def test_a_bad_database_url_is_refused_without_printing_its_password() -> None:
    for url in (f"mysql://root:{PASSWORD}@localhost/x", f"postgresql+nodriver://a:{PASSWORD}@h/x"):
        result = driftline("migrate", env={"DRIFTLINE_DATABASE_URL": url})
        assert result.returncode == 2, result.stderr
        assert "database_url" in result.stderr and PASSWORD not in result.stderr
        assert "***" in result.stderr
    pasted = driftline("migrate", env={"DRIFTLINE_DATABASE_URL": PASSWORD})  # a slip of the paste
    assert pasted.returncode == 2 and PASSWORD not in pasted.stderr
    assert "not a database URL" in pasted.stderr


def test_an_unknown_driftline_variable_stops_every_command_naming_the_closest_setting(
    tmp_path: Path,
) -> None:
    """A misspelt name is refused before anything runs (the store it would have named is not
    opened), for the sidecar too; the test suite's DRIFTLINE_TEST_* are left alone."""
    env = {"DRIFTLINE_DATABSE_URL": f"sqlite:///{tmp_path}/x.db", "DRIFTLINE_TEST_ANYTHING": "1"}
    for command in (("audit", "verify"), ("agent", "--help"), ("--help",)):
        result = driftline(*command, env=env)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert (
            "DRIFTLINE_DATABSE_URL is not a Driftline setting; did you mean "
            "DRIFTLINE_DATABASE_URL?" in result.stderr
        )
        assert "DRIFTLINE_TEST_ANYTHING" not in result.stderr
    # What Kubernetes sets in every pod for the chart's driftline-api Service is no mistake.
    links = {
        "DRIFTLINE_API_SERVICE_HOST": "10.0.0.7",
        "DRIFTLINE_API_SERVICE_PORT_HTTP": "8000",
        "DRIFTLINE_API_PORT_8000_TCP_ADDR": "10.0.0.7",
        "DRIFTLINE_COLLECTOR_PORT": "tcp://10.0.0.8:8081",
    }
    assert driftline("agent", "--help", env=links).returncode == 0
    far = driftline("--help", env={"DRIFTLINE_ZZZ": "1"})
    assert far.returncode == 2 and "DRIFTLINE_ZZZ is not a Driftline setting (see" in far.stderr
    assert not (tmp_path / "x.db").exists()


def test_a_database_that_refuses_for_good_is_not_waited_for(database_url: str) -> None:
    """A server that answers "no such database" (or role) says so at once, exit 2; only one
    that does not answer is waited for."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has no server to refuse")
    absent = database_url.rsplit("/", 1)[0] + "/driftline_no_such_database"
    started = time.monotonic()
    result = driftline("audit", "verify", env={"DRIFTLINE_DATABASE_URL": absent})
    assert result.returncode == 2, result.stderr
    assert "refuses the connection" in result.stderr and "does not exist" in result.stderr
    assert time.monotonic() - started < 30  # not the minute of waiting


def test_a_short_command_without_a_broker_says_what_went_wrong_in_a_few_lines(
    tmp_path: Path,
) -> None:
    """librdkafka's retries are debug lines: not shown at the default level."""
    reference = tmp_path / "reference.csv"
    reference.write_text("x\n1\n2\n3\n")
    assert driftline("audit", "keygen", "--out", str(tmp_path / "key.pem")).returncode == 0
    result = driftline(
        "baseline", "fit", "--model", "m", "--version", "1", "--reference", str(reference),
        env={"DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
             "DRIFTLINE_DATABASE_URL": f"sqlite:///{tmp_path}/d.db",
             "DRIFTLINE_PRODUCER_KEY_FILE": str(tmp_path / "key.pem"),
             "HOME": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "baseline_set was not delivered to Kafka" in result.stderr
    lines = (result.stdout + result.stderr).splitlines()
    assert len(lines) <= 5 and not any("librdkafka" in line for line in lines), lines


def test_sigterm_stops_up_as_ctrl_c_does_its_embedded_broker_included(tmp_path: Path) -> None:
    """A supervisor's SIGTERM left the embedded broker running, holding its port."""
    log = tmp_path / "up.log"
    env = os.environ | {
        "DRIFTLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'd.db'}",
        "DRIFTLINE_API_PORT": "0", "DRIFTLINE_EMBEDDED_BROKER_PORT": "0",
        "DRIFTLINE_DETECT_ENABLED": "false", "HOME": str(tmp_path),
    }  # fmt: skip
    with log.open("w") as out:
        up = subprocess.Popen(
            [sys.executable, "-m", "driftline", "up"], env=env, stdout=out,
            stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            text = wait_for(log.read_text, lambda t: "Ctrl-C stops everything" in t, 120, what="up")
        finally:
            up.send_signal(signal.SIGTERM)
            assert up.wait(timeout=60) == 0, log.read_text()
    found = re.search(r"embedded broker \(Tansu, memory storage\) on 127\.0\.0\.1:(\d+)", text)
    assert found, text
    with pytest.raises(ConnectionRefusedError):  # nothing holds the broker's port
        socket.create_connection(("127.0.0.1", int(found[1])), timeout=5).close()


def test_nothing_to_check_is_exit_2_not_a_failed_check(tmp_path: Path) -> None:
    missing = driftline("check-config", str(tmp_path / "none.yaml"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    (tmp_path / "p.json").write_text("{}")
    empty = driftline("audit", "check-proof", str(tmp_path / "p.json"))
    assert empty.returncode == 2 and "not a proof" in empty.stderr

"""A process whose database does not answer at start waits for it a while, then stops with the
setting named, instead of a traceback."""

import threading

import pytest
import typer
from sqlalchemy import text

from driftline.collector.cli import common as cli_common
from driftline.collector.core.settings import CollectorSettings
from driftline.collector.runtime.broker import free_port
from tests.faults.private_postgres import PrivatePostgres


def test_a_database_that_comes_back_within_the_wait_is_used() -> None:
    with PrivatePostgres() as postgres:
        postgres.stop()
        threading.Timer(2.0, postgres.start).start()
        engine = cli_common.open_store(CollectorSettings(database_url=postgres.url))
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM ledger_entries")).scalar() == 0
        engine.dispose()


def test_a_database_that_never_answers_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli_common, "STORE_WAIT_S", 1.0)
    settings = CollectorSettings(database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/x")
    with pytest.raises(typer.Exit):
        cli_common.open_store(settings)
    assert "(DRIFTLINE_DATABASE_URL) does not answer" in capsys.readouterr().err

"""The alembic migrations create exactly the tables the models describe, on both databases, and
carry a ledger written before 0006 over to its new digests (or refuse one that is broken)."""

import hashlib
from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Engine, insert, update
from sqlmodel import Session, SQLModel

from agent.contract import Event, encode
from collector import ledger
from collector.database import MIGRATIONS, make_engine, migrate
from collector.models import LedgerEntry
from tests import events


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        differences = compare_metadata(
            MigrationContext.configure(connection, opts={"compare_type": True}),
            SQLModel.metadata,
        )
    assert differences == []


def test_migrating_twice_changes_nothing(engine: Engine) -> None:
    migrate(engine)
    with engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == "0009"


def _upgrade(engine: Engine, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def _old_rule_chain(engine: Engine, batch: list[Event]) -> None:
    """Entries as the collector wrote them before 0006: the digest of the bytes themselves."""
    previous = ledger.GENESIS
    with engine.begin() as connection:
        for seq, event in enumerate(batch):
            event_bytes = encode(event)
            digest = hashlib.sha256(event_bytes).digest()
            previous = ledger.link(previous, digest)
            connection.execute(
                insert(LedgerEntry.__table__).values(  # type: ignore[attr-defined]
                    topic="events", partition=0, seq=seq, event_id=event.event_id,
                    event_type=event.type, kafka_offset=seq, event_bytes=event_bytes,
                    event_digest=digest, chain_hash=previous, recorded_at=datetime.now(UTC),
                )
            )  # fmt: skip


def test_a_ledger_written_before_0006_is_redigested_and_verifies(database_url: str) -> None:
    engine = make_engine(database_url)
    _upgrade(engine, "0005")
    _old_rule_chain(engine, [events.decision(), events.deployment(), events.decision()])
    migrate(engine)
    with Session(engine) as session:
        result = ledger.verify(session)
    engine.dispose()
    assert result.intact and result.entries == 3


def test_a_broken_ledger_from_before_0006_stops_the_migration(database_url: str) -> None:
    engine = make_engine(database_url)
    _upgrade(engine, "0005")
    _old_rule_chain(engine, [events.decision(), events.decision()])
    with engine.begin() as connection:
        connection.execute(
            update(LedgerEntry.__table__)  # type: ignore[attr-defined]
            .where(LedgerEntry.__table__.c.seq == 0)  # type: ignore[attr-defined]
            .values(event_bytes=b'{"forged":true}')
        )
    with pytest.raises(RuntimeError, match=r"breaks at entry 0 under the rule before 0006"):
        migrate(engine)
    with engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == "0005"
    engine.dispose()

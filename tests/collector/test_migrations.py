"""The alembic migrations create exactly the tables the models describe, on both databases, and
carry a ledger written before 0006 over to its new digests (or refuse one that is broken)."""

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, insert, update
from sqlmodel import Session, SQLModel, select

from agent.contract import Event, encode
from collector import ledger
from collector.database import MIGRATIONS, make_engine, migrate
from collector.matchers import Matcher
from collector.models import LedgerEntry, Silence
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
    newest = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert newest is not None and newest >= "0010"
    with engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == newest


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


# As the matcher writer before 0011 stored them (the value unescaped), and what each meant.
OLD_SILENCE_MATCHERS = {
    'model=~"debt\\d+"': ("model", "=~", "debt\\d+"),
    'model="café"': ("model", "=", "café"),
    'model="a\\nb"': ("model", "=", "a\nb"),
    "model=credit-risk": ("model", "=", "credit-risk"),
}


def test_silences_stored_before_0011_keep_their_meaning(database_url: str) -> None:
    """Matchers the old code stored are rewritten in the new quoting: each reads back as the
    matcher it was meant to be, and one the old code could not read is left as it was."""
    engine = make_engine(database_url)
    _upgrade(engine, "0010")
    unreadable = 'model="say "hi""'
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            insert(Silence.__table__).values(  # type: ignore[attr-defined]
                id=uuid.uuid4(), matchers=[*OLD_SILENCE_MATCHERS, unreadable],
                starts_at=now, ends_at=now + timedelta(hours=1), created_by="ops",
                comment="deploy", created_at=now,
            )
        )  # fmt: skip
    migrate(engine)
    with Session(engine) as session:
        (silence,) = session.exec(select(Silence)).all()
    engine.dispose()
    *rewritten, untouched = silence.matchers
    read = [Matcher.parse(text) for text in rewritten]
    assert [(m.name, m.operator, m.value) for m in read] == list(OLD_SILENCE_MATCHERS.values())
    assert untouched == unreadable

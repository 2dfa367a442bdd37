"""The alembic migrations create exactly the tables the models describe, on both databases, and
carry a ledger written before 0006 over to its new digests (or refuse one that is broken)."""

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, insert, text, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, select

from driftline.agent.contract import Event, encode
from driftline.collector.alerting.matchers import Matcher
from driftline.collector.audit import integrity
from driftline.collector.audit.integrity import KeyRing
from driftline.collector.consume.ingest import RawMessage, write_batch
from driftline.collector.store import ledger
from driftline.collector.store.database import MIGRATIONS, make_engine, migrate
from driftline.collector.store.models import ApiToken, LedgerEntry, Silence
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


def _format_1_chain(engine: Engine, batch: list[Event], erase_first: bool) -> None:
    """Entries as the collector wrote them from 0006 to 0011: plain input hashes, links over
    the digest alone, and (``erase_first``) an unsigned tombstone as erasure then wrote it."""
    previous = ledger.GENESIS
    with engine.begin() as connection:
        for seq, event in enumerate(batch):
            document = event.model_dump(mode="json", by_alias=True)
            digest = ledger.digest_of(json.loads(ledger.canonical(document)))
            erased = erase_first and seq == 0
            if erased:
                hashed = ledger.inputs_hash(document["payload"]["inputs"], None)
                mark = {**hashed, "erased_at": "2026-01-01T00:00:00+00:00", "reason": "GDPR"}
                document["payload"]["inputs"] = {ledger.TOMBSTONE: mark}
            previous = ledger.link(previous, digest)
            connection.execute(
                text(
                    "INSERT INTO ledger_entries (topic, partition, seq, event_id, event_type,"
                    " kafka_offset, event_bytes, event_digest, chain_hash, recorded_at, erased_at)"
                    " VALUES (:topic, :partition, :seq, :event_id, :event_type, :offset,"
                    " :event_bytes, :digest, :chain_hash, :recorded_at, :erased_at)"
                ),
                {
                    "topic": "events", "partition": 0, "seq": seq,
                    "event_id": event.event_id.hex if engine.dialect.name == "sqlite"
                    else event.event_id, "event_type": event.type, "offset": seq,
                    "event_bytes": ledger.canonical(document), "digest": digest,
                    "chain_hash": previous, "recorded_at": datetime.now(UTC),
                    "erased_at": datetime(2026, 1, 1, tzinfo=UTC) if erased else None,
                },
            )  # fmt: skip


def test_a_ledger_written_before_0012_still_verifies_and_new_entries_follow_it(
    database_url: str,
) -> None:
    """Old entries keep format 1 (plain hashes, an unsigned tombstone reported as such, not as a
    break); entries stored after the migration link onto the same chains with format 2."""
    engine = make_engine(database_url)
    _upgrade(engine, "0011")
    _format_1_chain(engine, [events.decision(), events.deployment(), events.decision()], True)
    migrate(engine)
    key = Ed25519PrivateKey.generate()
    with Session(engine) as session:
        write_batch(session, [RawMessage("events", 0, 3, None, encode(events.decision()))])
        session.commit()
        report = integrity.verify(session, KeyRing.of(key).trusted)
        formats = session.exec(select(LedgerEntry.entry_format).order_by(LedgerEntry.seq)).all()
    engine.dispose()
    assert report.breaks == [], report.breaks
    assert report.verification is not None and report.verification.entries == 4
    assert report.marks is not None and report.marks.unsigned == 1
    assert formats == [1, 1, 1, 2]


def test_tokens_that_shared_a_name_before_0013_get_unique_ones_the_oldest_keeps_it(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    _upgrade(engine, "0012")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    long = "x" * 200
    names = ["ann", "ann", "ann-2", "ann", long, long, "bob"]  # in order of creation
    ids = [uuid.uuid4() for _ in names]
    with engine.begin() as connection:
        for n, (token_id, name) in enumerate(zip(ids, names, strict=True)):
            connection.execute(
                insert(ApiToken.__table__).values(  # type: ignore[attr-defined]
                    id=token_id, name=name, role="auditor", secret_sha256=bytes([n]) * 32,
                    created_by="tests", created_at=start + timedelta(days=n),
                )
            )  # fmt: skip
    migrate(engine)
    with Session(engine) as session:
        renamed = {t.id: t.name for t in session.exec(select(ApiToken))}
        twice = ApiToken(
            id=uuid.uuid4(), name="bob", role="admin", secret_sha256=b"\xff" * 32,
            created_by="tests", created_at=start,
        )  # fmt: skip
        session.add(twice)
        with pytest.raises(IntegrityError):
            session.commit()  # the constraint holds against whatever skips the check
    engine.dispose()
    assert [renamed[i] for i in ids] == [
        "ann",
        "ann-3",
        "ann-2",
        "ann-4",
        long,
        "x" * 198 + "-2",
        "bob",
    ]

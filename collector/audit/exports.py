"""Exports of a decision search as JSONL or CSV, streamed, with a manifest that makes the file
checkable later: the query, the row count, the ledger head of every chain when the export
was read (every exported decision's event is in the ledger at or before those positions) and
the SHA-256 of the bytes.

Each row names its ledger entry (``ledger``: topic, partition, seq) and is checked against it
as it is written; a row that differs is exported as stored and named in the manifest's
``tampered``. The manifest is signed with the key that signs checkpoints, so that
``check_file`` catches an edited file even when its hash was recomputed, with the public key
alone.

Rows and heads are read in one transaction (REPEATABLE READ on PostgreSQL, SQLite's snapshot
otherwise), so the file is one consistent view however many events arrive meanwhile.
"""

from __future__ import annotations

import base64
import codecs
import csv
import hashlib
import io
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Engine
from sqlmodel import Session, col

from driftline.collector.audit.checkpoints import key_id
from driftline.collector.audit.row_verification import row_problems
from driftline.collector.store import ledger
from driftline.collector.store.models import Decision, DecisionBase, ExportManifest, LedgerEntry
from driftline.collector.store.prices import PriceTable
from driftline.collector.store.search import DecisionFilter, matching

ExportFormat = Literal["jsonl", "csv"]
MEDIA_TYPES: dict[ExportFormat, str] = {"jsonl": "application/x-ndjson", "csv": "text/csv"}
# A decision's columns, its cost by the price table (empty without one) and its ledger entry.
COLUMNS = [*DecisionBase.model_fields, "cost", "currency", "ledger"]


def ledger_heads(session: Session) -> list[dict[str, Any]]:
    return [
        {"topic": e.topic, "partition": e.partition, "seq": e.seq, "chain_hash": e.chain_hash.hex()}
        for e in ledger.heads(session)
    ]


class Export:
    """One export: ``chunks()`` yields the file, then ``manifest`` is complete."""

    def __init__(
        self,
        engine: Engine,
        where: DecisionFilter,
        fmt: ExportFormat,
        created_by: str,
        key: Ed25519PrivateKey,
        prices: PriceTable | None = None,
    ) -> None:
        """PricesMissing when ``where`` asks a cost range and there is no price table."""
        where.conditions(prices)  # refused here, before a byte is streamed
        self._prices = prices
        self._engine = engine
        self._where = where
        self._format = fmt
        self._key = key
        self.manifest = ExportManifest(
            id=uuid.uuid4(),
            created_at=datetime.now(UTC),
            created_by=created_by,
            format=fmt,
            query=where.query_string(),
            ledger_heads=[],
        )

    def chunks(self, rows_per_chunk: int = 500) -> Iterator[bytes]:
        sha256 = hashlib.sha256()
        rows = 0
        with Session(self._engine) as session:
            if self._engine.dialect.name == "postgresql":
                session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            self.manifest.ledger_heads = ledger_heads(session)
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, COLUMNS) if self._format == "csv" else None
            if writer is not None:
                writer.writeheader()
            with_entries = (
                matching(self._where, prices=self._prices)
                .join(
                    LedgerEntry, col(LedgerEntry.event_id) == col(Decision.event_id), isouter=True
                )
                .add_columns(LedgerEntry)
                .execution_options(yield_per=rows_per_chunk)
            )
            tampered: list[str] = []
            for decision, entry in session.execute(with_entries):
                document = DecisionBase.model_validate(decision).model_dump(mode="json")
                cost = self._prices.cost(decision) if self._prices else None
                document["cost"] = cost
                document["currency"] = None if cost is None else self._prices.currency  # type: ignore[union-attr]
                document["ledger"] = _position(entry)
                tampered.extend(str(problem) for problem in row_problems(decision, entry))
                if writer is None:
                    buffer.write(json.dumps(document, ensure_ascii=False, sort_keys=True) + "\n")
                else:
                    writer.writerow(_flat(document))
                rows += 1
                if rows % rows_per_chunk == 0:
                    yield _drain(buffer, sha256)
            yield _drain(buffer, sha256)
        self.manifest.rows = rows
        self.manifest.sha256 = sha256.hexdigest()
        self.manifest.completed_at = datetime.now(UTC)
        self.manifest.tampered = tampered
        self.manifest.key_id = key_id(self._key.public_key())
        self.manifest.signature = self._key.sign(statement(manifest_document(self.manifest)))


def _position(entry: LedgerEntry | None) -> dict[str, Any] | None:
    if entry is None:
        return None
    return {"topic": entry.topic, "partition": entry.partition, "seq": entry.seq}


def _flat(document: dict[str, Any]) -> dict[str, Any]:
    """A row's cells: an object or array as JSON (inputs, scores, the ledger position, an
    output that is one), a boolean as ``true`` or ``false``, anything else as it is (a text
    output as its text, not a JSON string in quotes), a missing value empty."""
    return {name: _cell(value) for name, value in document.items()}


def _cell(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return value


def _drain(buffer: io.StringIO, sha256: Any) -> bytes:
    data = buffer.getvalue().encode()
    buffer.seek(0)
    buffer.truncate()
    sha256.update(data)
    return data


def manifest_document(manifest: ExportManifest) -> dict[str, Any]:
    return {
        "id": str(manifest.id),
        "created_at": manifest.created_at.isoformat(),
        "created_by": manifest.created_by,
        "format": manifest.format,
        "query": manifest.query,
        "ledger_heads": manifest.ledger_heads,
        "rows": manifest.rows,
        "sha256": manifest.sha256,
        "completed_at": manifest.completed_at.isoformat() if manifest.completed_at else None,
        "tampered": manifest.tampered,
        "key_id": manifest.key_id,
        "signature": base64.b64encode(manifest.signature).decode() if manifest.signature else None,
    }


SIGNED_FIELDS = (
    "id", "created_at", "created_by", "format", "query", "ledger_heads", "rows", "sha256",
    "completed_at", "tampered", "key_id",
)  # fmt: skip


def statement(document: dict[str, Any]) -> bytes:
    """The bytes a manifest's signature covers: every field but the signature, its times in
    one form whichever way a JSON encoder wrote them. KeyError or ValueError for a document
    that is not a manifest."""
    signed = {name: document[name] for name in SIGNED_FIELDS}
    for name in ("created_at", "completed_at"):
        at = datetime.fromisoformat(signed[name])
        if at.tzinfo is None:  # read in the checker's own zone, it would mean another instant
            raise ValueError(f"{name} has no time zone")
        signed[name] = at.astimezone(UTC).isoformat()
    return ledger.canonical(signed)


def check_file(
    data: Iterator[bytes],
    manifest: dict[str, Any],
    fmt: ExportFormat,
    trusted: dict[str, Ed25519PublicKey],
) -> list[str]:
    """What differs between an export file's bytes and its manifest, and what is wrong with the
    manifest's signature checked against ``trusted`` public keys; empty when all holds."""
    sha256 = hashlib.sha256()
    lines = _lines(data, sha256)
    # A CSV cell may hold a newline (quoted): count records, not lines.
    rows = sum(1 for _ in csv.reader(lines)) - 1 if fmt == "csv" else sum(1 for _ in lines)
    problems = []
    signature = _signature_problem(manifest, trusted)
    if signature is not None:
        problems.append(signature)
    if sha256.hexdigest() != manifest.get("sha256"):
        problems.append(f"SHA-256 {sha256.hexdigest()} differs from the manifest's")
    if rows != manifest.get("rows"):
        problems.append(f"{rows} rows where the manifest says {manifest.get('rows')}")
    tampered = manifest.get("tampered")
    if not isinstance(tampered, list):
        problems.append("the manifest's tampered is not a list")
    else:
        problems += [f"exported a row that differs from its ledger entry: {t}" for t in tampered]
    return problems


def _lines(data: Iterator[bytes], sha256: Any) -> Iterator[str]:
    """The file's lines as text, each with its newline, hashing the bytes as they pass."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    for chunk in data:
        sha256.update(chunk)
        *complete, pending = (pending + decoder.decode(chunk)).split("\n")
        yield from (line + "\n" for line in complete)
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending


def _signature_problem(
    manifest: dict[str, Any], trusted: dict[str, Ed25519PublicKey]
) -> str | None:
    public_key = trusted.get(str(manifest.get("key_id")))
    if public_key is None:
        return f"the manifest is not signed by a trusted key (key {manifest.get('key_id')})"
    try:
        public_key.verify(
            base64.b64decode(manifest["signature"], validate=True), statement(manifest)
        )
    except (InvalidSignature, KeyError, TypeError, ValueError):
        return "the manifest's signature does not hold (the manifest was altered or forged)"
    return None

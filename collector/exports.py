"""Exports of a decision search as JSONL or CSV, streamed, with a manifest that makes the file
checkable later: the query, the row count, the ledger head of every chain when the export
was read (every exported decision's event is in the ledger at or before those positions) and
the SHA-256 of the bytes.

Rows and heads are read in one transaction (REPEATABLE READ on PostgreSQL, SQLite's snapshot
otherwise), so the file is one consistent view however many events arrive meanwhile.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Engine
from sqlmodel import Session

from collector import ledger
from collector.decision_search import DecisionFilter, matching
from collector.models import DecisionBase, ExportManifest

ExportFormat = Literal["jsonl", "csv"]
MEDIA_TYPES: dict[ExportFormat, str] = {"jsonl": "application/x-ndjson", "csv": "text/csv"}
COLUMNS = list(DecisionBase.model_fields)
JSON_COLUMNS = {"inputs", "output", "class_scores", "contract_violations"}


def ledger_heads(session: Session) -> list[dict[str, Any]]:
    return [
        {"topic": e.topic, "partition": e.partition, "seq": e.seq, "chain_hash": e.chain_hash.hex()}
        for e in ledger.heads(session)
    ]


class Export:
    """One export: ``chunks()`` yields the file, then ``manifest`` is complete."""

    def __init__(
        self, engine: Engine, where: DecisionFilter, fmt: ExportFormat, created_by: str
    ) -> None:
        self._engine = engine
        self._where = where
        self._format = fmt
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
            statement = matching(self._where).execution_options(yield_per=rows_per_chunk)
            for decision in session.exec(statement):
                document = DecisionBase.model_validate(decision).model_dump(mode="json")
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


def _flat(document: dict[str, Any]) -> dict[str, Any]:
    return {
        name: json.dumps(value, ensure_ascii=False, sort_keys=True)
        if name in JSON_COLUMNS
        else value
        for name, value in document.items()
    }


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
    }


def check_file(data: Iterator[bytes], manifest: dict[str, Any], fmt: ExportFormat) -> list[str]:
    """What differs between an export file's bytes and its manifest; empty when they agree."""
    sha256 = hashlib.sha256()
    lines = 0
    for chunk in data:
        sha256.update(chunk)
        lines += chunk.count(b"\n")
    rows = lines - (1 if fmt == "csv" else 0)
    problems = []
    if sha256.hexdigest() != manifest.get("sha256"):
        problems.append(f"SHA-256 {sha256.hexdigest()} differs from the manifest's")
    if rows != manifest.get("rows"):
        problems.append(f"{rows} rows where the manifest says {manifest.get('rows')}")
    return problems

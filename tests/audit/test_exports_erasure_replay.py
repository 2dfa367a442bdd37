"""Exports that can be checked later; erasure that keeps the chain whole and yields to legal
holds; retention; and replay, which rebuilds read models equal to the live ones."""

import csv
import hashlib
import io
import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from driftline.agent.contract import DecisionPayload, Event
from driftline.collector.audit import checkpoints
from driftline.collector.audit.erasure import apply_retention
from driftline.collector.audit.exports import check_file, manifest_document
from driftline.collector.audit.integrity import KeyRing
from driftline.collector.core.settings import CollectorSettings
from driftline.collector.store.models import Decision, ExportManifest, LedgerEntry
from driftline.collector.store.replay import READ_MODELS, rebuild
from tests import events
from tests.api_client import api_client
from tests.audit.test_search_and_lineage import corpus, store
from tests.test_cli import driftline

NOW = datetime.now(UTC)


def about(subject: str, days_ago: float = 0, model: str = "credit-risk") -> Event:
    return events.decision(
        model=events.ModelRef(name=model, version="3"),
        occurred_at=NOW - timedelta(days=days_ago),
        payload=DecisionPayload(
            inputs={"email": f"{subject}@example.org", "income": 10},
            output="approve",
            confidence=0.8,
            latency_ms=2.0,
            automated=True,
            subject_ref=subject,
        ),
    )


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_an_export_streams_the_search_and_its_manifest_checks_the_file(
    engine: Engine, fmt: str
) -> None:
    batch, rows = corpus()
    store(engine, batch)
    keys = KeyRing.of(Ed25519PrivateKey.generate())
    api = api_client(engine, role="auditor", keys=keys)
    params = {"model": "credit-risk", "format": fmt}
    response = api.get("/decisions/export", params=params)
    assert response.status_code == 200
    manifest = api.get(f"/exports/{response.headers['X-Driftline-Export-Id']}").json()

    if fmt == "jsonl":
        exported = [json.loads(line) for line in response.text.splitlines()]
    else:
        exported = list(csv.DictReader(io.StringIO(response.text)))
        assert all(set(json.loads(e["inputs"])) == {"income"} for e in exported)  # JSON cells
        # A text output is its text, a boolean true or false, as a spreadsheet reads them.
        assert {e["output"] for e in exported} == {"approve"}, exported[0]
        assert {e["automated"] for e in exported} == {"true", "false"}
    wanted = sorted((r for r in rows if r["model"] == "credit-risk"), key=lambda r: r["at"])
    assert [e["decision_id"] for e in exported] == [r["id"] for r in wanted]
    assert manifest["rows"] == len(wanted) and manifest["query"] == {"model": "credit-risk"}
    assert manifest["created_by"] == "test-auditor"
    (head,) = manifest["ledger_heads"]
    assert (head["topic"], head["partition"], head["seq"]) == ("events", 0, len(batch) - 1)
    assert all(e["ledger"] for e in exported) and manifest["tampered"] == []
    assert check_file(iter([response.content]), manifest, fmt, keys.trusted) == []
    altered = response.content.replace(b"credit-risk", b"credit-rusk", 1)
    assert check_file(iter([altered]), manifest, fmt, keys.trusted) != []


def _signed_export(engine: Engine, keys: KeyRing) -> tuple[bytes, dict[str, Any]]:
    api = api_client(engine, role="auditor", keys=keys)
    response = api.get("/decisions/export", params={"format": "jsonl"})
    return response.content, api.get(f"/exports/{response.headers['X-Driftline-Export-Id']}").json()


def test_an_edited_export_with_its_hash_recomputed_is_refused_offline(
    engine: Engine, tmp_path: Path
) -> None:
    """The old manifest was unsigned: edit the file, put its new SHA-256 and row count in the
    manifest, and the check passed. Now the signature covers them, checked with the public
    key alone (the CLI given only a PEM file, no database, no private key)."""
    store(engine, corpus()[0])
    key = Ed25519PrivateKey.generate()
    content, manifest = _signed_export(engine, KeyRing.of(key))
    edited = content.replace(b'"approve"', b'"decline"', 1)
    forged = manifest | {"sha256": hashlib.sha256(edited).hexdigest()}
    (tmp_path / "export.jsonl").write_bytes(edited)
    (tmp_path / "manifest.json").write_text(json.dumps(forged))
    (tmp_path / "public.pem").write_text(checkpoints.public_pem(key.public_key()))
    (tmp_path / "genuine.jsonl").write_bytes(content)
    (tmp_path / "genuine.json").write_text(json.dumps(manifest))

    def check(file: str, manifest_file: str) -> tuple[int, str]:
        result = driftline(
            "audit", "check-export", str(tmp_path / file), str(tmp_path / manifest_file),
            "--public-key", str(tmp_path / "public.pem"),
            env={"DRIFTLINE_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"},
        )  # fmt: skip
        return result.returncode, result.stdout + result.stderr

    assert check("genuine.jsonl", "genuine.json") == (0, ANY), check(
        "genuine.jsonl", "genuine.json"
    )
    code, output = check("export.jsonl", "manifest.json")
    assert code == 1 and "signature does not hold" in output, output
    stranger = KeyRing.of(Ed25519PrivateKey.generate()).trusted
    assert (
        "not signed by a trusted key" in check_file(iter([content]), manifest, "jsonl", stranger)[0]
    )


def test_an_export_names_each_row_that_differs_from_its_ledger_entry(engine: Engine) -> None:
    batch, _ = corpus()
    store(engine, batch)
    with Session(engine) as session:
        session.execute(update(Decision).where(col(Decision.decision_id) == batch[0].decision_id)  # type: ignore[attr-defined]
                        .values(confidence=0.01))  # fmt: skip
        session.commit()
    keys = KeyRing.of(Ed25519PrivateKey.generate())
    content, manifest = _signed_export(engine, keys)
    (tampered,) = manifest["tampered"]
    assert str(batch[0].decision_id) in tampered and "confidence" in tampered  # type: ignore[attr-defined]
    (problem,) = check_file(iter([content]), manifest, "jsonl", keys.trusted)
    assert "differs from its ledger entry" in problem


def test_erasure_tombstones_inputs_keeps_the_chain_and_yields_to_a_legal_hold(
    engine: Engine,
) -> None:
    first, second, other = about("s-1"), about("s-1", model="fraud"), about("s-2")
    store(engine, [first, second, other])
    admin = api_client(engine, role="admin")
    held = admin.post("/holds", json={"model": "fraud", "reason": "case 17"}).json()

    erased = admin.post("/subjects/s-1/erasure", json={"reason": "GDPR art. 17"})
    assert erased.status_code == 201, erased.text
    assert (erased.json()["decisions"], erased.json()["held"]) == (1, 1)
    gone = admin.get(f"/decisions/{first.decision_id}").json()
    assert gone["decision"]["inputs"]["$erased"]["reason"] == "GDPR art. 17"
    assert "s-1@example.org" not in json.dumps(gone) and gone["ledger"]["erased"] is True
    kept = admin.get(f"/decisions/{second.decision_id}").json()
    assert kept["decision"]["inputs"]["email"] == "s-1@example.org"  # under the hold
    assert admin.get(f"/decisions/{other.decision_id}").json()["decision"]["inputs"]["income"] == 10

    assert admin.delete(f"/holds/{held['id']}").status_code == 200
    again = admin.post("/subjects/s-1/erasure", json={"reason": "GDPR art. 17"}).json()
    assert (again["decisions"], again["held"]) == (1, 0)
    report = admin.get("/integrity/verify").json()
    assert report["intact"] and report["erased"] == 2
    assert [e["decisions"] for e in admin.get("/erasures").json()] == [1, 1]


def recorded_days_ago(engine: Engine, batch: list[Event], days: float) -> None:
    """As if the collector had stored these events ``days`` ago."""
    with Session(engine) as session:
        session.execute(
            update(LedgerEntry)
            .where(col(LedgerEntry.event_id).in_([event.event_id for event in batch]))
            .values(recorded_at=NOW - timedelta(days=days))
        )
        session.commit()


def test_retention_erases_what_was_recorded_too_long_ago_except_under_a_hold(
    engine: Engine,
) -> None:
    """By the time the collector recorded a decision, not the time its caller claims: one dated
    500 days back but recorded today keeps its inputs, one dated 900 years ahead loses them."""
    old, old_held, recent = about("a"), about("b", model="fraud"), about("c")
    backdated, future_dated = about("d", days_ago=500), about("e", days_ago=-900 * 365)
    store(engine, [old, old_held, recent, backdated, future_dated])
    recorded_days_ago(engine, [old, old_held, future_dated], 500)
    recorded_days_ago(engine, [recent], 10)
    admin = api_client(engine, role="admin")
    admin.post("/holds", json={"model": "fraud", "reason": "regulator inquiry"})
    with Session(engine) as session:
        key = Ed25519PrivateKey.generate()
        outcome = apply_retention(session, retention_days=400, now=NOW, key=key)
        session.commit()
    assert (outcome.erased, outcome.held) == (2, 1)
    erased = {
        d.decision_id
        for d in (old, old_held, recent, backdated, future_dated)
        if "$erased" in admin.get(f"/decisions/{d.decision_id}").json()["decision"]["inputs"]
    }
    assert erased == {old.decision_id, future_dated.decision_id}


def test_retention_below_six_months_is_refused() -> None:
    with pytest.raises(ValidationError, match="retention_days"):
        CollectorSettings(retention_days=100)


def _tables(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    with Session(engine) as session:
        return {
            table.__tablename__: sorted(  # type: ignore[attr-defined]
                (row.model_dump(mode="json") for row in session.exec(select(table))),
                key=json.dumps,
            )
            for table in READ_MODELS
        }


def test_replay_rebuilds_read_models_equal_to_the_live_ones(engine: Engine) -> None:
    batch, _ = corpus()
    others = [events.deployment(), *events.evaluations(), about("s-9")]
    store(engine, [*batch, *others])
    api_client(engine, role="admin").post("/subjects/s-9/erasure", json={"reason": "request"})
    live = _tables(engine)
    assert sum(map(len, live.values())) > len(batch)
    with Session(engine) as session:
        projected = rebuild(session)
        session.commit()
    assert projected == len(batch) + len(others)
    assert _tables(engine) == live


def test_the_audit_commands_prove_export_and_check_from_the_shell(
    tmp_path: Path, engine: Engine, database_url: str
) -> None:
    engine_url = {"DRIFTLINE_DATABASE_URL": database_url}
    decision = about("s-5")
    store(engine, [decision, events.review(decision.decision_id)])

    refused = driftline("audit", "checkpoint", env=engine_url)
    assert refused.returncode == 2 and "no signing key" in refused.stderr
    key_file = Path(os.environ["DRIFTLINE_SIGNING_KEY_FILE"])
    made = driftline("audit", "keygen", "--out", str(key_file))
    assert made.returncode == 0 and "BEGIN PUBLIC KEY" in made.stdout
    assert driftline("audit", "checkpoint", env=engine_url).returncode == 0
    proof, public = tmp_path / "proof.json", tmp_path / "collector.pub"
    proven = driftline(
        "audit", "prove", str(decision.decision_id), "--out", str(proof), env=engine_url
    )
    assert proven.returncode == 0, proven.stderr
    public.write_text(json.loads(proof.read_text())["public_key"])
    checked = driftline("audit", "check-proof", str(proof), "--public-key", str(public))
    assert checked.returncode == 0 and "is in the chain" in checked.stdout

    out = tmp_path / "decisions.csv"
    exported = driftline(
        "audit", "export", "--out", str(out), "--format", "csv", "--subject", "s-5", env=engine_url
    )
    assert exported.returncode == 0, exported.stderr
    manifest = tmp_path / "decisions.csv.manifest.json"
    assert json.loads(manifest.read_text())["rows"] == 1
    with Session(engine) as session:  # kept in the store, as an export through the API is
        kept = session.get(ExportManifest, uuid.UUID(json.loads(manifest.read_text())["id"]))
    assert kept is not None and manifest_document(kept) == json.loads(manifest.read_text())
    assert driftline("audit", "check-export", str(out), str(manifest)).returncode == 0
    out.write_bytes(out.read_bytes().replace(b"s-5", b"s-6"))
    refused = driftline("audit", "check-export", str(out), str(manifest))
    assert refused.returncode == 1 and "SHA-256" in refused.stdout

    verified = driftline("audit", "verify", env=engine_url)
    assert verified.returncode == 0 and "intact" in verified.stdout
    replayed = driftline("replay", env=engine_url)
    assert replayed.returncode == 0 and "from 2 ledger entries" in replayed.stdout


def test_a_csv_cell_with_a_newline_counts_as_one_row(engine: Engine) -> None:
    """A newline in a quoted cell used to count as a second row: a false "rows" mismatch."""
    store(engine, [events.decision(service="loan\ndesk")])
    keys = KeyRing.of(Ed25519PrivateKey.generate())
    api = api_client(engine, role="auditor", keys=keys)
    response = api.get("/decisions/export", params={"format": "csv"})
    manifest = api.get(f"/exports/{response.headers['X-Driftline-Export-Id']}").json()
    assert manifest["rows"] == 1
    assert check_file(iter([response.content]), manifest, "csv", keys.trusted) == []

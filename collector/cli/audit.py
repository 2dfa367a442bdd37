"""``driftline audit ...``, ``driftline token ...`` and ``driftline replay``: the auditor's and
the administrator's commands, run against the store directly."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, BinaryIO

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import Engine
from sqlmodel import Session

from agent.provenance import ProducerKeyError
from collector.audit import checkpoints, integrity
from collector.audit.access import (
    ROLES,
    Role,
    TokenNameTaken,
    create_token,
    list_tokens,
    revoke_token,
)
from collector.audit.erasure import apply_retention, erase_subject
from collector.audit.exports import Export, ExportFormat, check_file, manifest_document
from collector.audit.holds import HoldError, active_holds, place_hold, release_hold
from collector.audit.integrity import KeyRing
from collector.audit.proofs import ProofUnavailable, check_proof, prove_decision
from collector.cli.common import DatabaseOption, console, fail, load_settings, open_store
from collector.core.durations import parse_duration
from collector.core.producer_keys import trusted_producers
from collector.core.settings import CollectorSettings
from collector.store import queries
from collector.store.models import LedgerCheckpoint
from collector.store.replay import rebuild
from collector.store.search import DecisionFilter, count

audit_app = typer.Typer(
    help="Audit: verify the ledger, prove and export decisions, erase, hold.",
    no_args_is_help=True,
)
token_app = typer.Typer(help="API tokens: who may call the API, and as what.", no_args_is_help=True)

SubjectOption = Annotated[str | None, typer.Option(help="The decision's subject reference.")]


def _store(database_url: str | None) -> tuple[CollectorSettings, Engine]:
    settings = load_settings(database_url=database_url)
    return settings, open_store(settings)


def _keys(settings: CollectorSettings) -> KeyRing:
    try:
        return KeyRing.from_settings(settings)
    except checkpoints.SigningKeyError as error:
        fail(str(error))


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Option(help="Who or what uses it.")],
    role: Annotated[str, typer.Option(help="auditor, operator or admin")],
    expires_in: Annotated[str | None, typer.Option(help="e.g. 90d, 12h; none: no expiry")] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Create a token and print it, once: only its hash is kept."""
    if role not in ROLES:
        fail(f"--role must be one of {', '.join(ROLES)}, not {role!r}")
    now = datetime.now(UTC)
    try:
        expires_at = now + parse_duration(expires_in) if expires_in else None
    except ValueError as error:
        fail(f"--expires-in: {error}")
    _, engine = _store(database_url)
    with Session(engine) as session:
        try:
            issued = create_token(
                session,
                name=name,
                role=_role(role),
                created_by="driftline token create",
                now=now,
                expires_at=expires_at,
            )
        except TokenNameTaken as taken:
            fail(str(taken))
        session.commit()
        console.print(f"[green]✓[/] {role} token {issued.record.id} for {name}:")
    print(issued.token)


def _role(role: str) -> Role:
    return next(r for r in ROLES if r == role)


@token_app.command("list")
def token_list(database_url: DatabaseOption = None) -> None:
    _, engine = _store(database_url)
    table = Table("id", "name", "role", "created", "expires", "revoked")
    with Session(engine) as session:
        for t in list_tokens(session):
            table.add_row(
                str(t.id), t.name, t.role, f"{t.created_at:%Y-%m-%d %H:%M}",
                f"{t.expires_at:%Y-%m-%d %H:%M}" if t.expires_at else "never",
                f"{t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "",
            )  # fmt: skip
    console.print(table)


@token_app.command("revoke")
def token_revoke(token_id: uuid.UUID, database_url: DatabaseOption = None) -> None:
    _, engine = _store(database_url)
    with Session(engine) as session:
        if revoke_token(session, token_id, datetime.now(UTC)) is None:
            fail(f"no token {token_id}")
        session.commit()
    console.print(f"[green]✓[/] token {token_id} revoked")


@audit_app.command("keygen")
def audit_keygen(
    out: Annotated[Path, typer.Option(help="Where the private key goes (mode 600).")],
) -> None:
    """Make an Ed25519 signing key for checkpoints; print its public key to hand to auditors."""
    if out.exists():
        fail(f"{out} exists; a new key would orphan the checkpoints the old one signed")
    key = checkpoints.load_signing_key(out, create=True)
    console.print(
        f"[green]✓[/] signing key {checkpoints.key_id(key.public_key())} written to {out}"
    )
    print(checkpoints.public_pem(key.public_key()), end="")


@audit_app.command("verify")
def audit_verify(
    checkpoint_file: Annotated[
        Path | None,
        typer.Option("--checkpoints", help="Checkpoints copied out earlier (JSON), also checked."),
    ] = None,
    sample: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Check this many rows of each read model at random, each with its ledger entry,"
            " instead of everything (for big stores).",
        ),
    ] = None,
    seconds: Annotated[
        float, typer.Option(min=0.1, help="With --sample: stop after this long.")
    ] = 60.0,
    database_url: DatabaseOption = None,
) -> None:
    """Walk every chain against the signed checkpoints, check every erasure mark, and check
    every served row against its ledger entry; exit 1 at any break or tampering."""
    settings, engine = _store(database_url)
    keys = _keys(settings)
    copies = _read_checkpoints(checkpoint_file) if checkpoint_file else []
    plan = integrity.Sample(sample, seconds) if sample is not None else None
    try:
        producers = trusted_producers(settings)
    except ProducerKeyError as error:
        fail(str(error))
    with Session(engine) as session:
        report = integrity.verify(session, keys.trusted, copies, plan, producers)
    for found in report.breaks:
        console.print(f"[red]{found.topic}[{found.partition}] entry {found.seq}: {found.problem}")
    for tampering in report.rows.tampering:
        console.print(f"[red]tampered: {tampering}", highlight=False)
    rows = f"{report.rows.rows} served rows" + ("" if report.rows.complete else " (out of time)")
    if report.verification is None:
        summary = f"sample of {rows} with their entries, {report.checkpoints} checkpoints"
    else:
        v, marks = report.verification, report.marks
        unsigned = (
            f", {marks.unsigned} unsigned from before 0012" if marks and marks.unsigned else ""
        )
        summary = (
            f"{v.chains} chains, {v.entries} entries ({v.erased} erased{unsigned}), "
            f"{report.checkpoints} checkpoints, {rows}"
        )
    tampered = bool(report.breaks or report.rows.tampering)
    verdict = "intact" if report.intact else "BROKEN" if tampered else "INCOMPLETE (out of time)"
    console.print(f"{summary}: {verdict}")
    if not report.intact:
        raise typer.Exit(1)


def _read_checkpoints(path: Path) -> list[LedgerCheckpoint]:
    try:
        document = json.loads(path.read_text())
        return [checkpoints.from_document(c) for c in document["checkpoints"]]
    except (OSError, ValueError, KeyError, TypeError) as error:
        fail(f"{path}: not a checkpoints file from `driftline audit checkpoints` ({error})")


@audit_app.command("checkpoint")
def audit_checkpoint(database_url: DatabaseOption = None) -> None:
    """Sign the head of every chain that grew since its last checkpoint, now."""
    settings, engine = _store(database_url)
    keys = _keys(settings)
    with Session(engine) as session:
        signed = checkpoints.sign_heads(session, keys.signing, datetime.now(UTC))
        session.commit()
        for c in signed:
            console.print(f"[green]✓[/] {c.topic}[{c.partition}] entry {c.seq} signed ({c.key_id})")
    if not signed:
        console.print("every chain's head is already signed")


@audit_app.command("checkpoints")
def audit_checkpoints(
    out: Annotated[Path, typer.Option(help="Where to copy them (JSON).")],
    database_url: DatabaseOption = None,
) -> None:
    """Copy every checkpoint and the public keys out of the database."""
    settings, engine = _store(database_url)
    keys = _keys(settings)
    with Session(engine) as session:
        stored = [checkpoints.to_document(c) for c in checkpoints.all_checkpoints(session)]
    document = {
        "public_keys": {k: checkpoints.public_pem(key) for k, key in keys.trusted.items()},
        "checkpoints": stored,
    }
    out.write_text(json.dumps(document, indent=2))
    console.print(f"[green]✓[/] {len(stored)} checkpoints written to {out}")


@audit_app.command("prove")
def audit_prove(
    decision_id: uuid.UUID,
    out: Annotated[Path, typer.Option(help="Where to write the proof (JSON).")],
    database_url: DatabaseOption = None,
) -> None:
    """Write the proof of one decision's event against the first checkpoint after it."""
    settings, engine = _store(database_url)
    keys = _keys(settings)
    with Session(engine) as session:
        try:
            proof = prove_decision(session, decision_id, keys.trusted)
        except ProofUnavailable as missing:
            fail(str(missing))
    out.write_text(json.dumps(proof, indent=2))
    console.print(f"[green]✓[/] proof written to {out}")


@audit_app.command("check-proof")
def audit_check_proof(
    proof_file: Path,
    public_key: Annotated[Path, typer.Option(help="The collector's public key (PEM), got apart.")],
) -> None:
    """Check a proof with nothing but the public key: no database, no server."""
    try:
        proof = json.loads(proof_file.read_text())
        key = checkpoints.load_public_key(public_key)
    except (OSError, ValueError) as error:
        fail(str(error))
    problems = check_proof(proof, key)
    for problem in problems:
        console.print(f"[red]✗ {problem}")
    if problems:
        raise typer.Exit(1)
    console.print("[green]✓[/] the event is in the chain the checkpoint signs")


@audit_app.command("export")
def audit_export(
    out: Annotated[Path, typer.Option(help="The file; its manifest goes beside it.")],
    format: Annotated[str, typer.Option(help="jsonl or csv")] = "jsonl",
    service: Annotated[str | None, typer.Option()] = None,
    model: Annotated[str | None, typer.Option()] = None,
    version: Annotated[str | None, typer.Option()] = None,
    since: Annotated[datetime | None, typer.Option(help="inclusive, UTC")] = None,
    until: Annotated[datetime | None, typer.Option(help="exclusive, UTC")] = None,
    subject: SubjectOption = None,
    automated: Annotated[bool | None, typer.Option("--automated/--reviewed-first")] = None,
    review_action: Annotated[str | None, typer.Option(help="approve, override, escalate")] = None,
    reviewer: Annotated[str | None, typer.Option()] = None,
    has_feedback: Annotated[bool | None, typer.Option("--has-feedback/--no-feedback")] = None,
    feedback_wrong: Annotated[bool | None, typer.Option("--feedback-wrong/--not-wrong")] = None,
    min_confidence: Annotated[float | None, typer.Option()] = None,
    max_confidence: Annotated[float | None, typer.Option()] = None,
    has_violations: Annotated[bool | None, typer.Option("--has-violations/--no-violations")] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Export the decisions a search selects, with a manifest to check the file by later."""
    if format not in ("jsonl", "csv"):
        fail(f"--format must be jsonl or csv, not {format!r}")
    fmt: ExportFormat = "csv" if format == "csv" else "jsonl"
    conditions = {
        "service": service,
        "model": model,
        "version": version,
        "since": since.replace(tzinfo=since.tzinfo or UTC) if since else None,
        "until": until.replace(tzinfo=until.tzinfo or UTC) if until else None,
        "subject": subject,
        "automated": automated,
        "review_action": review_action,
        "reviewer": reviewer,
        "has_feedback": has_feedback,
        "feedback_wrong": feedback_wrong,
        "min_confidence": min_confidence,
        "max_confidence": max_confidence,
        "has_violations": has_violations,
    }
    try:
        where = DecisionFilter.model_validate(
            {k: v for k, v in conditions.items() if v is not None}
        )
    except ValueError as error:
        fail(f"bad search: {error}")
    settings, engine = _store(database_url)
    with Session(engine) as session:
        total = count(session, where)
    key = _keys(settings).signing
    export = Export(engine, where, fmt, created_by="driftline audit export", key=key)
    with out.open("wb") as file, _progress() as progress:
        task = progress.add_task("exporting", total=total)
        for chunk in export.chunks():
            file.write(chunk)
            progress.update(task, advance=chunk.count(b"\n"))
    manifest = manifest_document(export.manifest)
    manifest_path = out.with_name(out.name + ".manifest.json")
    manifest_path.write_text(json.dumps(manifest, indent=2))
    console.print(
        f"[green]✓[/] {manifest['rows']} decisions to {out} (SHA-256 {manifest['sha256']}); "
        f"manifest {manifest_path}"
    )


def _progress() -> Progress:
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


@audit_app.command("check-export")
def audit_check_export(
    file: Path,
    manifest: Path,
    public_key: Annotated[
        list[Path] | None,
        typer.Option(
            "--public-key",
            help="A PEM public key whose signature is trusted (repeatable); without one, the"
            " keys this installation trusts.",
        ),
    ] = None,
) -> None:
    """Check an export file against its signed manifest: the signature, the same bytes and
    rows, and no row that differed from its ledger entry. Offline with --public-key."""
    try:
        if public_key:
            keys = [checkpoints.load_public_key(path) for path in public_key]
            trusted = {checkpoints.key_id(key): key for key in keys}
        else:
            trusted = _keys(CollectorSettings()).trusted
        document = json.loads(manifest.read_text())
        if not isinstance(document, dict):
            raise ValueError(f"{manifest}: not a manifest (a JSON object)")
        fmt: ExportFormat = "csv" if document["format"] == "csv" else "jsonl"
        with file.open("rb") as data:
            problems = check_file(_chunks(data), document, fmt, trusted)
    except (OSError, ValueError, KeyError, checkpoints.SigningKeyError) as error:
        fail(str(error))
    for problem in problems:
        console.print(f"[red]✗ {problem}", highlight=False)
    if problems:
        raise typer.Exit(1)
    console.print(f"[green]✓[/] {file} is the export its signed manifest describes")


def _chunks(data: BinaryIO) -> Iterator[bytes]:
    while chunk := data.read(1 << 20):
        yield chunk


@audit_app.command("erase")
def audit_erase(
    subject: Annotated[str, typer.Option(help="The subject reference whose inputs go.")],
    reason: Annotated[str, typer.Option(help="Why, e.g. the request's reference.")],
    by: Annotated[str, typer.Option(help="Who asked.")],
    database_url: DatabaseOption = None,
) -> None:
    """Replace a subject's decision inputs by tombstones; the chains still verify."""
    settings, engine = _store(database_url)
    key = _keys(settings).signing
    with Session(engine) as session:
        outcome = erase_subject(
            session, subject=subject, reason=reason, requested_by=by, now=datetime.now(UTC), key=key
        )
        session.commit()
    console.print(f"[green]✓[/] inputs of {outcome.erased} decisions erased")
    if outcome.held:
        console.print(f"[yellow]{outcome.held} decisions kept: a legal hold covers them")


@audit_app.command("retain")
def audit_retain(database_url: DatabaseOption = None) -> None:
    """Apply the retention period now (the collector also does it periodically)."""
    settings, engine = _store(database_url)
    key = _keys(settings).signing
    with Session(engine) as session:
        outcome = apply_retention(
            session, retention_days=settings.retention_days, now=datetime.now(UTC), key=key
        )
        session.commit()
    console.print(
        f"[green]✓[/] inputs of {outcome.erased} decisions recorded more than "
        f"{settings.retention_days} days ago erased; {outcome.held} kept under legal hold"
    )


@audit_app.command("hold")
def audit_hold(
    reason: Annotated[str, typer.Option()],
    by: Annotated[str, typer.Option(help="Who placed it.")],
    model: Annotated[str | None, typer.Option()] = None,
    subject: SubjectOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Place a legal hold on a model's or a subject's records."""
    _, engine = _store(database_url)
    with Session(engine) as session:
        try:
            hold = place_hold(
                session, model=model, subject=subject, reason=reason, created_by=by,
                now=datetime.now(UTC),
            )  # fmt: skip
        except HoldError as error:
            fail(str(error))
        session.commit()
        console.print(f"[green]✓[/] legal hold {hold.id} placed")


@audit_app.command("holds")
def audit_holds(database_url: DatabaseOption = None) -> None:
    _, engine = _store(database_url)
    table = Table("id", "model", "subject", "reason", "by", "since")
    with Session(engine) as session:
        for h in active_holds(session):
            table.add_row(
                str(h.id), h.model_name or "", h.subject_ref or "", h.reason, h.created_by,
                f"{h.created_at:%Y-%m-%d %H:%M}",
            )  # fmt: skip
    console.print(table)


@audit_app.command("release")
def audit_release(hold_id: uuid.UUID, database_url: DatabaseOption = None) -> None:
    """Release a legal hold."""
    _, engine = _store(database_url)
    with Session(engine) as session:
        try:
            release_hold(session, hold_id, datetime.now(UTC))
        except HoldError as error:
            fail(str(error))
        session.commit()
    console.print(f"[green]✓[/] legal hold {hold_id} released")


def replay(database_url: DatabaseOption = None) -> None:
    """Rebuild every read model from the ledger."""
    _, engine = _store(database_url)
    with Session(engine) as session, _progress() as progress:
        task = progress.add_task("replaying", total=queries.count_ledger_entries(session=session))
        projected = rebuild(session, lambda n: progress.update(task, advance=n))
        session.commit()
    console.print(f"[green]✓[/] read models rebuilt from {projected} ledger entries")

"""``driftline audit ...``, ``driftline token ...`` and ``driftline replay``: the auditor's and
the administrator's commands, run against the store directly.

The commands that verify read public keys only (``--public-key``, else the installation's
public key files) and never create or migrate the database: an auditor runs them with no
access to the signing key. Those that sign (checkpoints, erasure marks, export manifests)
read the private key."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, BinaryIO

import typer
from sqlalchemy import Engine
from sqlmodel import Session

from driftline.agent.provenance import ProducerKey, ProducerKeyError
from driftline.collector.audit import checkpoints, integrity
from driftline.collector.audit.access import (
    ROLES,
    Role,
    TokenNameTaken,
    create_token,
    list_tokens,
    revoke_token,
)
from driftline.collector.audit.erasure import apply_retention, erase_subject
from driftline.collector.audit.exports import Export, ExportFormat, check_file, manifest_document
from driftline.collector.audit.holds import HoldError, active_holds, place_hold, release_hold
from driftline.collector.audit.proofs import ProofUnavailable, check_proof, prove_decision
from driftline.collector.cli.common import (
    EXIT_FAILED,
    EXIT_UNABLE,
    DatabaseOption,
    PublicKeyOption,
    console,
    errors,
    fail,
    id_table,
    load_settings,
    open_store,
    progress_bar,
    read_store,
    signing_keys,
    typer_app,
    verifying_keys,
)
from driftline.collector.core.durations import parse_duration
from driftline.collector.core.producer_keys import trusted_producers
from driftline.collector.core.settings import CollectorSettings, public_half
from driftline.collector.store import queries
from driftline.collector.store.models import LedgerCheckpoint
from driftline.collector.store.prices import PriceFileError, load_prices
from driftline.collector.store.replay import rebuild
from driftline.collector.store.search import DecisionFilter, PricesMissing, count

audit_app = typer_app("Audit: verify the ledger, prove and export decisions, erase, hold.")
token_app = typer_app("API tokens: who may call the API, and as what.")

# The panels of `driftline audit --help`: what each command needs.
VERIFY = "Verify (public keys only)"
SIGN = "Sign (the signing key)"
HOLDS = "Legal holds"

SubjectOption = Annotated[str | None, typer.Option(help="The decision's subject reference.")]


def _store(database_url: str | None) -> tuple[CollectorSettings, Engine]:
    """Settings and the store, for a command that writes to it."""
    settings = load_settings(database_url=database_url)
    return settings, open_store(settings)


def _stored(database_url: str | None) -> tuple[CollectorSettings, Engine]:
    """Settings and the store as it is, for a command that only reads."""
    settings = load_settings(database_url=database_url)
    return settings, read_store(settings)


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
    """Every token: its name, role, expiry and whether it was revoked (never the secret)."""
    _, engine = _stored(database_url)
    table = id_table("name", "role", "created", "expires", "revoked")
    with Session(engine) as session:
        for t in list_tokens(session):
            table.add_row(
                str(t.id), t.name, t.role, f"{t.created_at:%Y-%m-%d %H:%M}",
                f"{t.expires_at:%Y-%m-%d %H:%M}" if t.expires_at else "never",
                f"{t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "",
            )  # fmt: skip
    console.print(table)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[uuid.UUID, typer.Argument(help="The token's id (`token list`).")],
    database_url: DatabaseOption = None,
) -> None:
    """Revoke a token now; the API refuses it from then on."""
    _, engine = _store(database_url)
    with Session(engine) as session:
        if revoke_token(session, token_id, datetime.now(UTC)) is None:
            fail(f"no token {token_id}")
        session.commit()
    console.print(f"[green]✓[/] token {token_id} revoked")


@audit_app.command("verify", rich_help_panel=VERIFY)
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
    public_key: PublicKeyOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Verify the ledger and every served row; exit 1 at any break or tampering, 2 when it
    could not check everything (out of time, or no store).

    Every chain is walked against the signed checkpoints, every erasure mark checked against
    its signature, and every served row against its ledger entry."""
    settings, engine = _stored(database_url)
    keys = verifying_keys(settings, public_key)
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
    if not report.intact:  # broken: it failed; incomplete: it could not check everything
        raise typer.Exit(EXIT_FAILED if tampered else EXIT_UNABLE)


def _read_checkpoints(path: Path) -> list[LedgerCheckpoint]:
    try:
        document = json.loads(path.read_text())
        return [checkpoints.from_document(c) for c in document["checkpoints"]]
    except (OSError, ValueError, KeyError, TypeError) as error:
        fail(f"{path}: not a checkpoints file from `driftline audit checkpoints` ({error})")


@audit_app.command("checkpoint", rich_help_panel=SIGN)
def audit_checkpoint(database_url: DatabaseOption = None) -> None:
    """Sign the head of every chain that grew since its last checkpoint, now."""
    settings, engine = _store(database_url)
    key = signing_keys(settings).signer()
    with Session(engine) as session:
        signed = checkpoints.sign_heads(session, key, datetime.now(UTC))
        session.commit()
        for c in signed:
            console.print(f"[green]✓[/] {c.topic}[{c.partition}] entry {c.seq} signed ({c.key_id})")
    if not signed:
        console.print("every chain's head is already signed")


@audit_app.command("checkpoints", rich_help_panel=VERIFY)
def audit_checkpoints(
    out: Annotated[Path, typer.Option(help="Where to copy them (JSON).")],
    public_key: PublicKeyOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Copy every checkpoint, and the public keys that check them, out of the database."""
    settings, engine = _stored(database_url)
    keys = verifying_keys(settings, public_key)
    with Session(engine) as session:
        stored = [checkpoints.to_document(c) for c in checkpoints.all_checkpoints(session)]
    document = {
        "public_keys": {k: checkpoints.public_pem(key) for k, key in keys.trusted.items()},
        "checkpoints": stored,
    }
    out.write_text(json.dumps(document, indent=2))
    console.print(f"[green]✓[/] {len(stored)} checkpoints written to {out}")


@audit_app.command("prove", rich_help_panel=VERIFY)
def audit_prove(
    decision_id: Annotated[uuid.UUID, typer.Argument(help="The decision's id.")],
    out: Annotated[Path, typer.Option(help="Where to write the proof (JSON).")],
    public_key: PublicKeyOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Write the proof of a decision's event against the first checkpoint after it."""
    settings, engine = _stored(database_url)
    keys = verifying_keys(settings, public_key)
    with Session(engine) as session:
        try:
            proof = prove_decision(session, decision_id, keys.trusted)
        except ProofUnavailable as missing:
            fail(str(missing))
    out.write_text(json.dumps(proof, indent=2))
    console.print(f"[green]✓[/] proof written to {out}")


@audit_app.command("check-proof", rich_help_panel=VERIFY)
def audit_check_proof(
    proof_file: Annotated[Path, typer.Argument(help="The proof (JSON), from `audit prove`.")],
    public_key: PublicKeyOption = None,
) -> None:
    """Check a proof with nothing but a public key: no database, no server."""
    try:
        proof = json.loads(proof_file.read_text())
    except (OSError, ValueError) as error:
        fail(f"{proof_file}: not a proof ({error})")
    if not (isinstance(proof, dict) and isinstance(proof.get("checkpoint"), dict)):
        fail(f"{proof_file}: not a proof (no signed checkpoint in it)")
    trusted = verifying_keys(load_settings(), public_key).trusted
    signer = proof["checkpoint"].get("key_id")
    key = trusted.get(str(signer))
    if key is None:
        fail(
            f"the proof's checkpoint is signed by key {signer}, none of the public keys given",
            EXIT_FAILED,
        )
    problems = check_proof(proof, key)
    for problem in problems:
        console.print(f"[red]✗ {problem}")
    if problems:
        raise typer.Exit(EXIT_FAILED)
    console.print("[green]✓[/] the event is in the chain the checkpoint signs")


@audit_app.command("export", rich_help_panel=SIGN)
def audit_export(
    out: Annotated[Path, typer.Option(help="The file; its manifest goes beside it.")],
    format: Annotated[str, typer.Option(help="jsonl or csv")] = "jsonl",
    service: Annotated[str | None, typer.Option(help="Only this service's decisions.")] = None,
    model: Annotated[str | None, typer.Option(help="Only this model's.")] = None,
    version: Annotated[str | None, typer.Option(help="Only this model version's.")] = None,
    since: Annotated[datetime | None, typer.Option(help="Taken at or after (UTC).")] = None,
    until: Annotated[datetime | None, typer.Option(help="Taken before (UTC).")] = None,
    subject: SubjectOption = None,
    automated: Annotated[
        bool | None,
        typer.Option("--automated/--reviewed-first", help="Automated, or reviewed first."),
    ] = None,
    review_action: Annotated[
        str | None, typer.Option(help="Reviewed so: approve, override, escalate.")
    ] = None,
    reviewer: Annotated[str | None, typer.Option(help="Reviewed by this person.")] = None,
    has_feedback: Annotated[
        bool | None, typer.Option("--has-feedback/--no-feedback", help="With feedback or not.")
    ] = None,
    feedback_wrong: Annotated[
        bool | None,
        typer.Option("--feedback-wrong/--not-wrong", help="Feedback said wrong, or not."),
    ] = None,
    min_confidence: Annotated[float | None, typer.Option(help="Confidence at least.")] = None,
    max_confidence: Annotated[float | None, typer.Option(help="Confidence at most.")] = None,
    has_violations: Annotated[
        bool | None,
        typer.Option("--has-violations/--no-violations", help="Broke the contract, or not."),
    ] = None,
    operation: Annotated[str | None, typer.Option(help="A GenAI operation's, as chat.")] = None,
    provider: Annotated[str | None, typer.Option(help="A GenAI provider's, as openai.")] = None,
    finish_reason: Annotated[str | None, typer.Option(help="Generation stopped so.")] = None,
    score: Annotated[
        str | None, typer.Option(help="Given this named score (within --min/--max-score).")
    ] = None,
    min_score: Annotated[float | None, typer.Option(help="The score at least.")] = None,
    max_score: Annotated[float | None, typer.Option(help="The score at most.")] = None,
    min_cost: Annotated[
        float | None, typer.Option(help="Costing at least (DRIFTLINE_PRICES).")
    ] = None,
    max_cost: Annotated[float | None, typer.Option(help="Costing at most.")] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Export the decisions a search selects, with a signed manifest to check it by."""
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
        "operation": operation,
        "provider": provider,
        "finish_reason": finish_reason,
        "score": score,
        "min_score": min_score,
        "max_score": max_score,
        "min_cost": min_cost,
        "max_cost": max_cost,
    }
    try:
        where = DecisionFilter.model_validate(
            {k: v for k, v in conditions.items() if v is not None}
        )
    except ValueError as error:
        fail(f"bad search: {error}")
    settings, engine = _store(database_url)
    try:
        prices = load_prices(settings.prices) if settings.prices else None
    except PriceFileError as error:
        fail(f"the price table (DRIFTLINE_PRICES) has mistakes:\n{error}", EXIT_UNABLE)
    key = signing_keys(settings).signer()
    try:
        export = Export(
            engine, where, fmt, created_by="driftline audit export", key=key, prices=prices
        )
    except PricesMissing as missing:
        fail(str(missing), EXIT_UNABLE)
    with Session(engine) as session:
        total = count(session, where, prices)
    with out.open("wb") as file, progress_bar() as progress:
        task = progress.add_task("exporting", total=total)
        for chunk in export.chunks():
            file.write(chunk)
            progress.update(task, advance=chunk.count(b"\n"))
    manifest = manifest_document(export.manifest)
    manifest_path = out.with_name(out.name + ".manifest.json")
    manifest_path.write_text(json.dumps(manifest, indent=2))
    with Session(engine) as session:  # kept as the API's are: GET /exports/{id} serves it
        session.add(export.manifest)
        session.commit()
    console.print(
        f"[green]✓[/] {manifest['rows']} decisions to {out} (SHA-256 {manifest['sha256']}); "
        f"manifest {manifest_path}, kept in the store as export {manifest['id']}"
    )


@audit_app.command("check-export", rich_help_panel=VERIFY)
def audit_check_export(
    file: Annotated[Path, typer.Argument(help="The export file.")],
    manifest: Annotated[Path, typer.Argument(help="Its manifest (JSON).")],
    public_key: PublicKeyOption = None,
) -> None:
    """Check an export file against its signed manifest; no database, no server.

    The signature must hold, the bytes and rows be the same, and no row have differed from
    its ledger entry."""
    trusted = verifying_keys(load_settings(), public_key).trusted
    try:
        document = json.loads(manifest.read_text())
        if not isinstance(document, dict):
            raise ValueError(f"{manifest}: not a manifest (a JSON object)")
        fmt: ExportFormat = "csv" if document["format"] == "csv" else "jsonl"
        with file.open("rb") as data:
            problems = check_file(_chunks(data), document, fmt, trusted)
    except (OSError, ValueError, KeyError) as error:
        fail(str(error))
    for problem in problems:
        console.print(f"[red]✗ {problem}", highlight=False)
    if problems:
        raise typer.Exit(EXIT_FAILED)
    console.print(f"[green]✓[/] {file} is the export its signed manifest describes")


def _chunks(data: BinaryIO) -> Iterator[bytes]:
    while chunk := data.read(1 << 20):
        yield chunk


@audit_app.command("erase", rich_help_panel=SIGN)
def audit_erase(
    subject: Annotated[str, typer.Option(help="The subject reference whose inputs go.")],
    reason: Annotated[str, typer.Option(help="Why, e.g. the request's reference.")],
    by: Annotated[str, typer.Option(help="Who asked.")],
    database_url: DatabaseOption = None,
) -> None:
    """Replace a subject's decision inputs by signed tombstones; the chains still verify."""
    settings, engine = _store(database_url)
    key = signing_keys(settings).signer()
    with Session(engine) as session:
        outcome = erase_subject(
            session, subject=subject, reason=reason, requested_by=by, now=datetime.now(UTC), key=key
        )
        session.commit()
    console.print(f"[green]✓[/] inputs of {outcome.erased} decisions erased")
    if outcome.held:
        console.print(f"[yellow]{outcome.held} decisions kept: a legal hold covers them")


@audit_app.command("retain", rich_help_panel=SIGN)
def audit_retain(database_url: DatabaseOption = None) -> None:
    """Apply the retention period now (the housekeeper does it periodically)."""
    settings, engine = _store(database_url)
    key = signing_keys(settings).signer()
    with Session(engine) as session:
        outcome = apply_retention(
            session, retention_days=settings.retention_days, now=datetime.now(UTC), key=key
        )
        session.commit()
    console.print(
        f"[green]✓[/] inputs of {outcome.erased} decisions recorded more than "
        f"{settings.retention_days} days ago erased; {outcome.held} kept under legal hold"
    )


@audit_app.command("keygen", rich_help_panel=SIGN)
def audit_keygen(
    out: Annotated[Path, typer.Option(help="Where the private key goes (mode 600).")],
) -> None:
    """Make an Ed25519 signing key; write and print its public key, for verifiers.

    The public key goes beside it (signing-key.pem: signing-key.pub.pem), where
    DRIFTLINE_SIGNING_PUBLIC_KEY_FILE looks by default."""
    public = public_half(out)
    for path in (out, public):
        if path.exists():
            fail(f"{path} exists; a new key would orphan the checkpoints the old one signed")
    key = checkpoints.load_signing_key(out, create=True)
    checkpoints.write_public_key(public, key.public_key())
    console.print(
        f"[green]✓[/] signing key {checkpoints.key_id(key.public_key())} written to {out}, "
        f"its public key to {public}"
    )
    print(checkpoints.public_pem(key.public_key()), end="")


@audit_app.command("public-key", rich_help_panel=VERIFY)
def audit_public_key(
    producer: Annotated[
        bool,
        typer.Option(
            "--producer",
            help="The producer key's (DRIFTLINE_PRODUCER_KEY_FILE), whose public half the "
            "collector trusts (DRIFTLINE_TRUSTED_PRODUCER_KEYS), instead.",
        ),
    ] = False,
) -> None:
    """Print the public key (PEM) that verifies checkpoints, erasure marks and export
    manifests, to hand to auditors; its key id on stderr.

    From DRIFTLINE_SIGNING_PUBLIC_KEY_FILE (default beside the signing key), else from the
    signing key itself."""
    settings = load_settings()
    if producer:
        try:
            key = ProducerKey.load(settings.producer_key_file).public_key
        except ProducerKeyError as error:
            fail(f"{error} (DRIFTLINE_PRODUCER_KEY_FILE)")
    else:
        public = settings.checkpoint_public_key_file
        try:
            key = (
                checkpoints.load_public_key(public)
                if public.is_file()
                else checkpoints.load_signing_key(settings.signing_key_file).public_key()
            )
        except checkpoints.SigningKeyError as error:
            fail(f"{error} (DRIFTLINE_SIGNING_PUBLIC_KEY_FILE, DRIFTLINE_SIGNING_KEY_FILE)")
    errors.print(f"key id {checkpoints.key_id(key)}", highlight=False)
    print(checkpoints.public_pem(key), end="")


@audit_app.command("hold", rich_help_panel=HOLDS)
def audit_hold(
    reason: Annotated[str, typer.Option(help="Why, e.g. the case's reference.")],
    by: Annotated[str, typer.Option(help="Who placed it.")],
    model: Annotated[str | None, typer.Option(help="Hold this model's records.")] = None,
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


@audit_app.command("holds", rich_help_panel=HOLDS)
def audit_holds(database_url: DatabaseOption = None) -> None:
    """Every legal hold in force."""
    _, engine = _stored(database_url)
    table = id_table("model", "subject", "reason", "by", "since")
    with Session(engine) as session:
        for h in active_holds(session):
            table.add_row(
                str(h.id), h.model_name or "", h.subject_ref or "", h.reason, h.created_by,
                f"{h.created_at:%Y-%m-%d %H:%M}",
            )  # fmt: skip
    console.print(table)


@audit_app.command("release", rich_help_panel=HOLDS)
def audit_release(
    hold_id: Annotated[uuid.UUID, typer.Argument(help="The hold's id (`audit holds`).")],
    database_url: DatabaseOption = None,
) -> None:
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
    with Session(engine) as session, progress_bar() as progress:
        task = progress.add_task("replaying", total=queries.count_ledger_entries(session=session))
        projected = rebuild(session, lambda n: progress.update(task, advance=n))
        session.commit()
    console.print(f"[green]✓[/] read models rebuilt from {projected} ledger entries")

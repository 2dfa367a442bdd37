"""The collector's keys, and verification of the whole store: the ledger against signed
checkpoints, erasure marks against their signatures, and the served rows against the ledger."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlmodel import Session, col, select

from driftline.agent.contract import COMPONENT_EVENT_TYPES
from driftline.agent.provenance import TrustedProducers
from driftline.collector.audit import checkpoints, erasure, row_verification
from driftline.collector.core.settings import CollectorSettings
from driftline.collector.store import ledger
from driftline.collector.store.models import LedgerCheckpoint, LedgerEntry


@dataclass(frozen=True)
class KeyRing:
    """Every public key whose signatures are trusted (checkpoints, erasure marks, export
    manifests), and the private key that signs new ones, in a process that signs: None in
    one that only verifies, which never reads the private key."""

    signing: Ed25519PrivateKey | None
    trusted: dict[str, Ed25519PublicKey] = field(default_factory=dict)

    @classmethod
    def of(cls, signing: Ed25519PrivateKey, *others: Ed25519PublicKey) -> KeyRing:
        keys = [signing.public_key(), *others]
        return cls(signing, {checkpoints.key_id(key): key for key in keys})

    def signer(self) -> Ed25519PrivateKey:
        """The signing key; SigningKeyError in a process that only verifies."""
        if self.signing is None:
            raise checkpoints.SigningKeyError(
                "this process holds public keys only: it signs nothing (an API signs with "
                "DRIFTLINE_API_SIGNS on and DRIFTLINE_SIGNING_KEY_FILE readable)"
            )
        return self.signing

    @classmethod
    def for_signing(cls, settings: CollectorSettings, *, create: bool = False) -> KeyRing:
        """Raise SigningKeyError for a key file that cannot be used; with ``create``, make the
        key when there is none (the collector's first start), and its public half beside it
        for verifiers, never when only checking."""
        signing = checkpoints.load_signing_key(settings.signing_key_file, create=create)
        public_file = settings.checkpoint_public_key_file
        if public_file.exists():
            # A stale public half (the key made again, a file left behind) would have every
            # verifier call each new checkpoint forged: refuse to sign until it is put right.
            if checkpoints.load_public_key(public_file) != signing.public_key():
                raise checkpoints.SigningKeyError(
                    f"{public_file} is not the public half of {settings.signing_key_file}: "
                    "verifiers would refuse every new signature; remove it (it is written "
                    "again) or point DRIFTLINE_SIGNING_PUBLIC_KEY_FILE at this key's"
                )
        elif create:
            checkpoints.write_public_key(public_file, signing.public_key())
        others = [checkpoints.load_public_key(path) for path in settings.trusted_public_keys]
        return cls.of(signing, *others)

    @classmethod
    def for_verifying(
        cls, settings: CollectorSettings, public_keys: Sequence[Path] = ()
    ) -> KeyRing:
        """Public keys only: ``public_keys`` when given (an auditor's own copies), else the
        signing key's public half (when its file exists) and DRIFTLINE_TRUSTED_PUBLIC_KEYS.
        SigningKeyError for a file that cannot be read, or when there is no key at all."""
        own = settings.checkpoint_public_key_file
        paths = list(public_keys) or [
            *([own] if own.exists() else []),
            *settings.trusted_public_keys,
        ]
        if not paths:
            raise checkpoints.SigningKeyError(
                f"no public key to check signatures with: none at {own}; give --public-key "
                "PEM, or set DRIFTLINE_SIGNING_PUBLIC_KEY_FILE or DRIFTLINE_TRUSTED_PUBLIC_KEYS"
            )
        keys = [checkpoints.load_public_key(path) for path in paths]
        return cls(None, {checkpoints.key_id(key): key for key in keys})


@dataclass(frozen=True)
class Sample:
    """Check this many rows of each read model, picked at random, for at most ``seconds``,
    instead of walking everything."""

    per_table: int
    seconds: float


@dataclass(frozen=True)
class IntegrityReport:
    verification: ledger.Verification | None  # None for a sample: no chain was walked whole
    checkpoints: int
    breaks: list[ledger.ChainBreak]  # the first per chain, from chains, checkpoints and marks
    rows: row_verification.RowCheck
    marks: erasure.MarkCheck | None  # None for a sample

    @property
    def intact(self) -> bool:
        """Nothing found, and everything asked for was checked (a sample may run out of time)."""
        return not self.breaks and self.rows.intact and self.rows.complete


def verify(
    session: Session,
    trusted: dict[str, Ed25519PublicKey],
    also: Iterable[LedgerCheckpoint] = (),
    sample: Sample | None = None,
    producers: TrustedProducers | None = None,
) -> IntegrityReport:
    """Walk every chain against the stored checkpoints and ``also`` (copies kept elsewhere),
    check every erasure mark and every served row; or, with ``sample``, a random sample.

    With ``producers``, every component event stored since entries were signed (format 2) must
    still carry a trusted producer's signature: one written into the ledger behind the
    collector's back, past the last checkpoint, is found too."""
    checked = checkpoints.check([*checkpoints.all_checkpoints(session), *also], trusted)
    if sample is not None:
        rows = row_verification.check_sample(session, sample.per_table, sample.seconds, trusted)
        return IntegrityReport(None, checked.count, _first_per_chain(checked.breaks), rows, None)
    verification = ledger.verify(session, checked.anchors)
    marks = erasure.check_marks(session, trusted)
    unproven = _unproven(session, producers) if producers is not None else []
    found = [*verification.breaks, *checked.breaks, *marks.breaks, *unproven]
    breaks = _first_per_chain(found)
    rows = row_verification.check_all(session)
    return IntegrityReport(verification, checked.count, breaks, rows, marks)


def _unproven(session: Session, producers: TrustedProducers) -> list[ledger.ChainBreak]:
    """Component events stored with the provenance check in force (format 2 entries) whose
    signature no trusted producer key makes good."""
    component = (
        select(LedgerEntry)
        .where(col(LedgerEntry.event_type).in_(sorted(COMPONENT_EVENT_TYPES)))
        .where(LedgerEntry.entry_format == ledger.FORMAT)
        .execution_options(yield_per=1_000)
    )
    found = []
    for entry in session.exec(component):
        try:
            problem = producers.unproven(json.loads(entry.event_bytes))
        except (ValueError, AttributeError):
            problem = "its bytes are not an event"
        if problem is not None:
            why = f"{entry.event_type} not signed by a trusted producer key (forged?): {problem}"
            found.append(ledger.ChainBreak(entry.topic, entry.partition, entry.seq, why))
    return found


def _first_per_chain(found: Iterable[ledger.ChainBreak]) -> list[ledger.ChainBreak]:
    first: dict[tuple[str, int], ledger.ChainBreak] = {}
    for each in found:
        key = (each.topic, each.partition)
        if key not in first or each.seq < first[key].seq:
            first[key] = each
    return sorted(first.values(), key=lambda b: (b.topic, b.partition, b.seq))

"""The collector's keys, and verification of the whole ledger against signed checkpoints."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlmodel import Session

from collector import checkpoints, ledger
from collector.models import LedgerCheckpoint
from collector.settings import CollectorSettings


@dataclass(frozen=True)
class KeyRing:
    """The key that signs new checkpoints, and every public key whose checkpoints are trusted."""

    signing: Ed25519PrivateKey
    trusted: dict[str, Ed25519PublicKey] = field(default_factory=dict)

    @classmethod
    def of(cls, signing: Ed25519PrivateKey, *others: Ed25519PublicKey) -> KeyRing:
        keys = [signing.public_key(), *others]
        return cls(signing, {checkpoints.key_id(key): key for key in keys})

    @classmethod
    def from_settings(cls, settings: CollectorSettings, *, create: bool = False) -> KeyRing:
        """Raise SigningKeyError for a key file that cannot be used; with ``create``, make the
        key when there is none (the collector's first start), never when only checking."""
        signing = checkpoints.load_signing_key(settings.signing_key_file, create=create)
        others = [checkpoints.load_public_key(path) for path in settings.trusted_public_keys]
        return cls.of(signing, *others)


@dataclass(frozen=True)
class IntegrityReport:
    verification: ledger.Verification
    checkpoints: int
    breaks: list[ledger.ChainBreak]  # the first per chain, from chains and checkpoints alike

    @property
    def intact(self) -> bool:
        return not self.breaks


def verify(
    session: Session,
    trusted: dict[str, Ed25519PublicKey],
    also: Iterable[LedgerCheckpoint] = (),
) -> IntegrityReport:
    """Walk every chain against the stored checkpoints and ``also`` (copies kept elsewhere)."""
    checked = checkpoints.check([*checkpoints.all_checkpoints(session), *also], trusted)
    verification = ledger.verify(session, checked.anchors)
    first: dict[tuple[str, int], ledger.ChainBreak] = {}
    for found in [*verification.breaks, *checked.breaks]:
        key = (found.topic, found.partition)
        if key not in first or found.seq < first[key].seq:
            first[key] = found
    breaks = sorted(first.values(), key=lambda b: (b.topic, b.partition, b.seq))
    return IntegrityReport(verification, checked.count, breaks)

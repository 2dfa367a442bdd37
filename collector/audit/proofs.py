"""Proof that one stored event is in the ledger as a signed checkpoint saw it.

The proof is the chain segment from the event to the first checkpoint after it: the event's
stored bytes with what the collector recorded of it, the hash of the entry before it and the
leaves of the entries after it. Anyone
holding the collector's public key can check it with ``check_proof`` alone, without trusting
the server: recompute the event's digest, fold the links up to the checkpoint, compare with
the signed hash and check the signature.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlmodel import Session, col, select

from driftline.collector.audit import checkpoints, erasure
from driftline.collector.store import ledger
from driftline.collector.store.models import Decision, LedgerCheckpoint, LedgerEntry

ALGORITHM = (
    "digest = SHA-256(canonical JSON of the event, a decision's inputs replaced by "
    '{"inputs_hmac_sha256": hex HMAC-SHA256 of their canonical JSON keyed with inputs_salt} '
    '(format 1: {"inputs_sha256": hex SHA-256 of it}), or by the hash its tombstone kept; '
    "leaf = SHA-256('driftline-entry-v2' || 0x00 || digest || canonical JSON of "
    "{clock_skew_s, kafka_offset, recorded_at}) (format 1: leaf = digest); "
    "chain_hash[n] = SHA-256(chain_hash[n-1] || leaf[n]); chain_hash[-1] = 32 zero bytes; "
    "the checkpoint signs its canonical JSON statement with Ed25519"
)


class ProofUnavailable(LookupError):
    """Why there is no proof of a decision; ``missing``: there is no such decision at all."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


def prove_decision(
    session: Session, decision_id: uuid.UUID, trusted: Mapping[str, Ed25519PublicKey]
) -> dict[str, Any]:
    """The proof of a decision's event against the first checkpoint after it, signed by one of
    the ``trusted`` keys; raise ProofUnavailable saying what is missing."""
    entry = session.exec(
        select(LedgerEntry)
        .join(Decision, col(Decision.event_id) == col(LedgerEntry.event_id))
        .where(Decision.decision_id == decision_id)
    ).first()
    if entry is None:
        raise ProofUnavailable(f"no decision {decision_id} in the ledger", missing=True)
    checkpoint = checkpoints.covering(session, entry.topic, entry.partition, entry.seq)
    if checkpoint is None:
        raise ProofUnavailable(
            f"no checkpoint covers {entry.topic}[{entry.partition}] entry {entry.seq} yet; "
            "sign one with POST /integrity/checkpoints or `driftline audit checkpoint`"
        )
    signer = trusted.get(checkpoint.key_id)
    if signer is None:
        raise ProofUnavailable(f"the covering checkpoint's key {checkpoint.key_id} is not trusted")
    return build_proof(session, entry, checkpoint, checkpoints.public_pem(signer))


def build_proof(
    session: Session, entry: LedgerEntry, checkpoint: LedgerCheckpoint, public_key_pem: str
) -> dict[str, Any]:
    """The proof for ``entry``; ``checkpoint`` must be of its chain, at or after it."""
    previous = (
        ledger.GENESIS
        if entry.seq == 0
        else session.exec(
            select(LedgerEntry.chain_hash).where(
                LedgerEntry.topic == entry.topic,
                LedgerEntry.partition == entry.partition,
                LedgerEntry.seq == entry.seq - 1,
            )
        ).one()
    )
    following = session.exec(
        select(LedgerEntry)
        .where(
            LedgerEntry.topic == entry.topic,
            LedgerEntry.partition == entry.partition,
            col(LedgerEntry.seq) > entry.seq,
            col(LedgerEntry.seq) <= checkpoint.seq,
        )
        .order_by(col(LedgerEntry.seq))
    ).all()
    return {
        "algorithm": ALGORITHM,
        "entry": {
            "topic": entry.topic,
            "partition": entry.partition,
            "seq": entry.seq,
            "event": entry.event_bytes.decode(),
            "erased": entry.erased_at is not None,
            "erased_at": entry.erased_at.isoformat() if entry.erased_at else None,
            "format": entry.entry_format,
            "inputs_salt": entry.inputs_salt.hex() if entry.inputs_salt else None,
            "kafka_offset": entry.kafka_offset,
            "recorded_at": entry.recorded_at.isoformat(),
            "clock_skew_s": entry.clock_skew_s,
        },
        "previous_hash": previous.hex(),
        "following_leaves": [ledger.entry_leaf(e).hex() for e in following],
        "checkpoint": checkpoints.to_document(checkpoint),
        "public_key": public_key_pem,
    }


def check_proof(proof: dict[str, Any], public_key: Ed25519PublicKey) -> list[str]:
    """What is wrong with ``proof`` checked against ``public_key``; empty when it holds."""
    try:
        entry = proof["entry"]
        checkpoint = checkpoints.from_document(proof["checkpoint"])
        chain_hash = bytes.fromhex(proof["previous_hash"])
        # Proofs made before entry formats name the leaves of format 1 entries digests.
        leaves = proof["following_leaves" if "following_leaves" in proof else "following_digests"]
        following = [bytes.fromhex(leaf) for leaf in leaves]
        salt = bytes.fromhex(entry["inputs_salt"]) if entry.get("inputs_salt") else None
        event_digest = ledger.digest(
            entry["event"].encode(), erased=bool(entry["erased"]), salt=salt
        )
        entry_format = int(entry.get("format", ledger.LEGACY_FORMAT))
        recorded = ledger.Recorded(
            int(entry.get("kafka_offset", 0)),
            datetime.fromisoformat(entry.get("recorded_at", "1970-01-01T00:00:00+00:00")),
            entry.get("clock_skew_s"),
        )
        entry_leaf = ledger.leaf(entry_format, event_digest, recorded)
        same_chain = (entry["topic"], entry["partition"]) == (
            checkpoint.topic,
            checkpoint.partition,
        )
        seq = int(entry["seq"])
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as error:
        return [f"not a proof: {type(error).__name__}: {error}"]
    problems = []
    if not same_chain:
        problems.append("the checkpoint is of another chain")
    if seq + len(following) != checkpoint.seq:
        problems.append(
            f"entry {seq} plus {len(following)} following leaves does not reach the "
            f"checkpoint's entry {checkpoint.seq}"
        )
    chain_hash = ledger.link(chain_hash, entry_leaf)
    for leaf in following:
        chain_hash = ledger.link(chain_hash, leaf)
    if chain_hash != checkpoint.chain_hash:
        problems.append("the event and leaves do not hash to the checkpoint's chain hash")
    trusted = {checkpoints.key_id(public_key): public_key}
    signature = checkpoints.signature_problem(checkpoint, trusted)
    if signature is not None:
        problems.append(signature)
    if entry["erased"]:
        mark = _mark_problem(entry, checkpoint.topic, entry_format, trusted)
        if mark is not None:
            problems.append(f"the erasure: {mark}")
    return problems


@dataclass(frozen=True)
class _ProvenEntry:
    topic: str
    partition: int
    seq: int
    event_id: uuid.UUID
    event_bytes: bytes
    erased_at: datetime | None
    entry_format: int


def _mark_problem(
    entry: dict[str, Any], topic: str, entry_format: int, trusted: dict[str, Ed25519PublicKey]
) -> str | None:
    """The erased event's signed mark, checked as ``audit verify`` checks it."""
    try:
        erased = _ProvenEntry(
            topic=topic,
            partition=int(entry["partition"]),
            seq=int(entry["seq"]),
            event_id=uuid.UUID(json.loads(entry["event"])["event_id"]),
            event_bytes=entry["event"].encode(),
            erased_at=datetime.fromisoformat(entry["erased_at"]),
            entry_format=entry_format,
        )
    except (KeyError, TypeError, ValueError) as error:
        return f"not a proof of an erased entry: {type(error).__name__}: {error}"
    problem = erasure.mark_problem(erased, trusted)
    return None if problem == erasure.UNSIGNED else problem

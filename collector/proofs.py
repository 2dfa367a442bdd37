"""Proof that one stored event is in the ledger as a signed checkpoint saw it.

The proof is the chain segment from the event to the first checkpoint after it: the event's
stored bytes, the hash of the entry before it and the digests of the entries after it. Anyone
holding the collector's public key can check it with ``check_proof`` alone, without trusting
the server: recompute the event's digest, fold the links up to the checkpoint, compare with
the signed hash and check the signature.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlmodel import Session, col, select

from collector import checkpoints, ledger
from collector.models import Decision, LedgerCheckpoint, LedgerEntry

ALGORITHM = (
    "digest = SHA-256(canonical JSON of the event, a decision's inputs replaced by "
    '{"inputs_sha256": hex SHA-256 of their canonical JSON}); '
    "chain_hash[n] = SHA-256(chain_hash[n-1] || digest[n]); chain_hash[-1] = 32 zero bytes; "
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
        select(LedgerEntry.event_digest)
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
        },
        "previous_hash": previous.hex(),
        "following_digests": [digest.hex() for digest in following],
        "checkpoint": checkpoints.to_document(checkpoint),
        "public_key": public_key_pem,
    }


def check_proof(proof: dict[str, Any], public_key: Ed25519PublicKey) -> list[str]:
    """What is wrong with ``proof`` checked against ``public_key``; empty when it holds."""
    try:
        entry = proof["entry"]
        checkpoint = checkpoints.from_document(proof["checkpoint"])
        chain_hash = bytes.fromhex(proof["previous_hash"])
        following = [bytes.fromhex(digest) for digest in proof["following_digests"]]
        event_digest = ledger.digest(entry["event"].encode(), erased=bool(entry["erased"]))
        same_chain = (entry["topic"], entry["partition"]) == (
            checkpoint.topic,
            checkpoint.partition,
        )
        seq = int(entry["seq"])
    except (KeyError, TypeError, ValueError) as error:
        return [f"not a proof: {type(error).__name__}: {error}"]
    problems = []
    if not same_chain:
        problems.append("the checkpoint is of another chain")
    if seq + len(following) != checkpoint.seq:
        problems.append(
            f"entry {seq} plus {len(following)} following digests does not reach the "
            f"checkpoint's entry {checkpoint.seq}"
        )
    chain_hash = ledger.link(chain_hash, event_digest)
    for digest in following:
        chain_hash = ledger.link(chain_hash, digest)
    if chain_hash != checkpoint.chain_hash:
        problems.append("the event and digests do not hash to the checkpoint's chain hash")
    signature = checkpoints.signature_problem(
        checkpoint, {checkpoints.key_id(public_key): public_key}
    )
    if signature is not None:
        problems.append(signature)
    return problems

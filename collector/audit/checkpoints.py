"""Signed checkpoints of the ledger's hash chains (Ed25519).

A checkpoint says "entry ``seq`` of this chain had hash ``chain_hash`` at ``signed_at``", signed
by the collector's key. Kept in the database and copied out of it (``to_document``), checkpoints
make a rewritten or truncated chain detectable by anyone holding the public key.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from sqlalchemy import func
from sqlmodel import Session, col, select

from driftline.agent.provenance import (
    key_id as key_id,  # one id for every Driftline key, re-exported
)
from driftline.collector.store.ledger import Anchors, ChainBreak, canonical, heads
from driftline.collector.store.models import LedgerCheckpoint


class SigningKeyError(ValueError):
    """The configured key file cannot be read as an Ed25519 key."""


def public_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def load_signing_key(path: Path, *, create: bool = False) -> Ed25519PrivateKey:
    """The PKCS#8 PEM key at ``path``; with ``create``, a new one written there if none is."""
    if create and not path.exists():
        key = Ed25519PrivateKey.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(pem)
        return key
    if not path.exists():
        raise SigningKeyError(
            f"no signing key at {path}: `driftline up` makes one on first start, "
            "`driftline audit keygen` makes one anywhere; DRIFTLINE_SIGNING_KEY_FILE says where"
        )
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as error:
        raise SigningKeyError(f"{path}: not a readable PEM private key ({error})") from None
    if not isinstance(loaded, Ed25519PrivateKey):
        raise SigningKeyError(f"{path}: an Ed25519 key is needed, this is {type(loaded).__name__}")
    return loaded


def write_public_key(path: Path, public_key: Ed25519PublicKey) -> None:
    """Write the public key (PEM) for verifiers, unless a file is there already."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(public_pem(public_key))


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        pem = path.read_bytes()
    except OSError as error:
        raise SigningKeyError(f"{path}: cannot be read ({error})") from None
    return public_key_from_pem(pem, str(path))


def public_key_from_pem(pem: bytes, source: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as error:
        raise SigningKeyError(f"{source}: not a PEM public key ({error})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"{source}: an Ed25519 key is needed, this is {type(key).__name__}")
    return key


def statement(
    topic: str, partition: int, seq: int, chain_hash: bytes, signed_at: datetime
) -> bytes:
    """The bytes a checkpoint's signature covers."""
    return canonical(
        {
            "chain_hash": chain_hash.hex(),
            "partition": partition,
            "seq": seq,
            "signed_at": signed_at.isoformat(),
            "topic": topic,
        }
    )


def sign_heads(session: Session, key: Ed25519PrivateKey, now: datetime) -> list[LedgerCheckpoint]:
    """Checkpoint the head of every chain that grew since its last checkpoint."""
    signed = {
        (topic, partition): seq
        for topic, partition, seq in session.exec(
            select(
                LedgerCheckpoint.topic, LedgerCheckpoint.partition, func.max(LedgerCheckpoint.seq)
            ).group_by(col(LedgerCheckpoint.topic), col(LedgerCheckpoint.partition))
        )
    }
    checkpoints = []
    for entry in heads(session):
        topic, partition, seq = entry.topic, entry.partition, entry.seq
        if signed.get((topic, partition), -1) >= seq:
            continue
        checkpoint = LedgerCheckpoint(
            id=uuid.uuid4(),
            topic=topic,
            partition=partition,
            seq=seq,
            chain_hash=entry.chain_hash,
            signed_at=now,
            key_id=key_id(key.public_key()),
            signature=key.sign(statement(topic, partition, seq, entry.chain_hash, now)),
        )
        session.add(checkpoint)
        checkpoints.append(checkpoint)
    return checkpoints


def all_checkpoints(session: Session) -> list[LedgerCheckpoint]:
    return list(
        session.exec(
            select(LedgerCheckpoint).order_by(
                col(LedgerCheckpoint.topic),
                col(LedgerCheckpoint.partition),
                col(LedgerCheckpoint.seq),
            )
        )
    )


def covering(session: Session, topic: str, partition: int, seq: int) -> LedgerCheckpoint | None:
    """The earliest checkpoint at or after entry ``seq`` of a chain."""
    return session.exec(
        select(LedgerCheckpoint)
        .where(
            LedgerCheckpoint.topic == topic,
            LedgerCheckpoint.partition == partition,
            col(LedgerCheckpoint.seq) >= seq,
        )
        .order_by(col(LedgerCheckpoint.seq))
        .limit(1)
    ).first()


def signature_problem(
    checkpoint: LedgerCheckpoint, keys: Mapping[str, Ed25519PublicKey]
) -> str | None:
    public_key = keys.get(checkpoint.key_id)
    if public_key is None:
        return f"checkpoint of entry {checkpoint.seq} is signed by unknown key {checkpoint.key_id}"
    try:
        public_key.verify(
            checkpoint.signature,
            statement(
                checkpoint.topic,
                checkpoint.partition,
                checkpoint.seq,
                checkpoint.chain_hash,
                checkpoint.signed_at,
            ),
        )
    except InvalidSignature:
        return f"checkpoint of entry {checkpoint.seq} has an invalid signature (forged or altered)"
    return None


@dataclass(frozen=True)
class CheckedCheckpoints:
    anchors: Anchors
    breaks: list[ChainBreak]  # checkpoints whose signature does not hold
    count: int


def check(
    checkpoints: Iterable[LedgerCheckpoint], keys: Mapping[str, Ed25519PublicKey]
) -> CheckedCheckpoints:
    """Anchors from the checkpoints whose signatures hold; a break for each that does not."""
    anchors: dict[tuple[str, int], dict[int, bytes]] = {}
    breaks = []
    count = 0
    for checkpoint in checkpoints:
        count += 1
        problem = signature_problem(checkpoint, keys)
        if problem is None:
            anchors.setdefault((checkpoint.topic, checkpoint.partition), {})[checkpoint.seq] = (
                checkpoint.chain_hash
            )
        else:
            breaks.append(
                ChainBreak(checkpoint.topic, checkpoint.partition, checkpoint.seq, problem)
            )
    return CheckedCheckpoints(anchors, breaks, count)


def to_document(checkpoint: LedgerCheckpoint) -> dict[str, Any]:
    """The checkpoint as JSON, to be copied out of the database."""
    return {
        "topic": checkpoint.topic,
        "partition": checkpoint.partition,
        "seq": checkpoint.seq,
        "chain_hash": checkpoint.chain_hash.hex(),
        "signed_at": checkpoint.signed_at.isoformat(),
        "key_id": checkpoint.key_id,
        "signature": base64.b64encode(checkpoint.signature).decode(),
    }


def from_document(document: Mapping[str, Any]) -> LedgerCheckpoint:
    """Raise ValueError (or KeyError) for a document ``to_document`` did not write."""
    return LedgerCheckpoint(
        id=uuid.uuid4(),
        topic=str(document["topic"]),
        partition=int(document["partition"]),
        seq=int(document["seq"]),
        chain_hash=bytes.fromhex(document["chain_hash"]),
        signed_at=datetime.fromisoformat(document["signed_at"]),
        key_id=str(document["key_id"]),
        signature=base64.b64decode(document["signature"], validate=True),
    )

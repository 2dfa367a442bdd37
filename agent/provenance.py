"""Provenance: proof that an event of Driftline's own components was written by one of them.

Only the components (detector worker, alert router, go-live commands, baseline and deployment
recording) may write the event types in ``COMPONENT_EVENT_TYPES``. Each holds a producer key, an
Ed25519 private key in a PKCS#8 PEM file (DRIFTLINE_PRODUCER_KEY_FILE), and its agent signs each
such event on the worker, last, once the event is validated and redacted: the signature covers
the exact document that travels. It rides in the event as ``provenance``:
``{"key_id": <16 hex digits of the public key's SHA-256>, "signature": <base64 Ed25519>}``.

What is signed is ``SIGNED_PREFIX`` followed by the event's canonical JSON without
``provenance``: keys sorted, no whitespace, UTF-8 unescaped, as the ledger stores events. The
collector verifies it against the public keys it trusts; the signature is then stored with the
event, inside the ledger's hash chain, so anyone holding the public key can check it later
from the ledger's bytes alone. The prefix keeps a producer key's signatures from meaning
anything anywhere else (a checkpoint, say), should a key ever be used twice.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from driftline.agent.contract import COMPONENT_EVENT_TYPES, Event, Provenance

PROVENANCE: Final = "provenance"
SIGNED_PREFIX: Final = b"driftline-provenance-v1\x00"
_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


class ProducerKeyError(ValueError):
    """A producer key file that cannot be used; the message names the file and why."""


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def signed_bytes(document: Mapping[str, Any]) -> bytes:
    """What a producer's signature covers: the prefix, then the event's canonical JSON without
    its ``provenance``."""
    unsigned = {name: value for name, value in document.items() if name != PROVENANCE}
    return SIGNED_PREFIX + _CANONICAL.encode(unsigned).encode()


class ProducerKey:
    """A component's private key: signs the events of Driftline's own components."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private_key = private_key
        self.public_key = private_key.public_key()
        self.key_id = key_id(self.public_key)

    @classmethod
    def generate(cls) -> ProducerKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path: Path, *, create: bool = False) -> ProducerKey:
        """The PKCS#8 PEM key at ``path``; with ``create``, a new one written there (mode 600)
        if none is."""
        if create and not path.exists():
            key = Ed25519PrivateKey.generate()
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process made it first: use that one
                return cls.load(path)
            with os.fdopen(descriptor, "wb") as file:
                file.write(pem)
            return cls(key)
        try:
            loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except FileNotFoundError:
            raise ProducerKeyError(
                f"no producer key at {path}: `driftline up` makes one on first start, "
                "`driftline audit keygen --out FILE` makes one anywhere; "
                "DRIFTLINE_PRODUCER_KEY_FILE says where"
            ) from None
        except (OSError, ValueError, TypeError) as error:
            raise ProducerKeyError(f"{path}: not a readable PEM private key ({error})") from None
        if not isinstance(loaded, Ed25519PrivateKey):
            kind = type(loaded).__name__
            raise ProducerKeyError(f"{path}: an Ed25519 key is needed, this is {kind}")
        return cls(loaded)

    def public_pem(self) -> str:
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    def sign(self, document: Mapping[str, Any]) -> dict[str, str]:
        """The ``provenance`` of an event given as its JSON document."""
        signature = self._private_key.sign(signed_bytes(document))
        return {"key_id": self.key_id, "signature": base64.b64encode(signature).decode()}

    def seal(self, event: Event) -> Event:
        """The validated ``event`` carrying its provenance, signed over the document it will
        travel as. ValueError for a type no component writes (no such event is signed)."""
        if event.type not in COMPONENT_EVENT_TYPES:
            raise ValueError(f"{event.type} events are a service's own and are not signed")
        document = event.model_dump(mode="json", by_alias=True)
        provenance = Provenance.model_validate(self.sign(document))
        return event.model_copy(update={PROVENANCE: provenance})


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A PEM public key (SubjectPublicKeyInfo) from ``path``."""
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as error:
        raise ProducerKeyError(f"{path}: not a readable PEM public key ({error})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ProducerKeyError(f"{path}: an Ed25519 key is needed, this is {type(key).__name__}")
    return key


class TrustedProducers:
    """The public keys whose signatures make an event of a component's type believable."""

    def __init__(self, keys: Iterable[Ed25519PublicKey] = ()) -> None:
        self._keys = {key_id(key): key for key in keys}

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def unproven(self, document: Mapping[str, Any]) -> str | None:
        """Why the ``provenance`` of this event document proves nothing, or None if a trusted
        key signed exactly this document."""
        provenance = document.get(PROVENANCE)
        if not isinstance(provenance, Mapping):
            return "it carries no provenance"
        public_key = self._keys.get(str(provenance.get("key_id")))
        if public_key is None:
            return f"key {provenance.get('key_id')!r} is not one the collector trusts"
        try:
            signature = base64.b64decode(str(provenance.get("signature")), validate=True)
            public_key.verify(signature, signed_bytes(document))
        except (InvalidSignature, binascii.Error, ValueError):
            return f"the signature of key {provenance['key_id']} does not match the content"
        return None

    def refusal(self, event: Event) -> str | None:
        """Why this event may not be stored, if it may not: a type only Driftline's own
        components write, without a valid signature from a trusted producer key."""
        if event.type not in COMPONENT_EVENT_TYPES:
            return None  # a decision, review or feedback: the service's own, unsigned
        problem = self.unproven(event.model_dump(mode="json", by_alias=True))
        if problem is None:
            return None
        return f"{event.type}: not signed by a trusted Driftline producer key (forged?); {problem}"

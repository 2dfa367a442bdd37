"""The embeddings a generative service sent with its decisions, as the samples the embedding
check (``driftline.detectors.embeddings``) compares: those of the decisions taken before the
baseline was set against those of the window's.

Embeddings are kept in the ledger only (a read model of vectors would double the store), so
they are read from the decisions' ledger entries. The reference, which cannot change once the
baseline is set, is read once per baseline; a vector of another dimension than the rest, or an
entry that does not parse, is left out. Each side is the feature ``(embedding).input`` or
``(embedding).output``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import numpy as np
from numpy.typing import NDArray
from sqlmodel import Session, col, select

from driftline.collector.store.models import Decision, LedgerEntry

PREFIX = "(embedding)."
SIDES = ("input", "output")
REFERENCE_DECISIONS = 1_000  # the latest before the baseline was set

Floats = NDArray[np.float64]
Vectors = dict[str, Floats]


def reference_vectors(session: Session, model: str, version: str, set_at: datetime) -> Vectors:
    """The vectors of the version's latest decisions taken before its baseline was set."""
    rows = session.exec(
        select(LedgerEntry.event_bytes)
        .join(Decision, col(Decision.event_id) == col(LedgerEntry.event_id))
        .where(
            col(Decision.model_name) == model,
            col(Decision.model_version) == version,
            col(Decision.occurred_at) <= set_at,
        )
        .order_by(col(Decision.occurred_at).desc())
        .limit(REFERENCE_DECISIONS)
    ).all()
    return _vectors(rows)


def window_vectors(session: Session, decisions: Sequence[Decision]) -> Vectors:
    events = [d.event_id for d in decisions]
    rows: list[bytes] = []
    for start in range(0, len(events), 500):  # bounded IN lists
        chunk: list[UUID] = events[start : start + 500]
        rows += session.exec(
            select(LedgerEntry.event_bytes).where(col(LedgerEntry.event_id).in_(chunk))
        ).all()
    return _vectors(rows)


def _vectors(rows: Sequence[bytes]) -> Vectors:
    found: dict[str, list[list[float]]] = {}
    for raw in rows:
        embeddings = _embeddings(raw)
        for side in SIDES:
            vector = embeddings.get(side)
            if isinstance(vector, list) and vector:
                found.setdefault(f"{PREFIX}{side}", []).append(vector)
    return {name: _of_one_dimension(given) for name, given in found.items()}


def _embeddings(raw: bytes) -> dict[str, Any]:
    if b'"embeddings"' not in raw:  # most decisions have none: no parse for them
        return {}
    try:
        embeddings = json.loads(raw)["payload"].get("embeddings")
    except (ValueError, KeyError, TypeError, AttributeError):
        return {}
    return embeddings if isinstance(embeddings, dict) else {}


def _of_one_dimension(given: list[list[float]]) -> NDArray[np.float64]:
    """The vectors of the most common dimension (a change of embedding model is no drift of
    its vectors; the rest are left out)."""
    lengths = [len(v) for v in given]
    common = max(set(lengths), key=lengths.count)
    kept = [v for v in given if len(v) == common]
    return np.array(kept, dtype=float).reshape(len(kept), common)

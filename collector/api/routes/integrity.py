"""Integrity: verify every chain against the signed checkpoints; list, copy and sign them."""

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from collector import checkpoints, integrity
from collector.api.auth import Operator
from collector.api.deps import SessionDep
from collector.integrity import KeyRing

router = APIRouter(prefix="/integrity", tags=["integrity"])


class ChainBreakPublic(BaseModel):
    topic: str
    partition: int
    seq: int
    problem: str


class VerificationPublic(BaseModel):
    intact: bool
    chains: int
    entries: int
    erased: int
    checkpoints: int
    breaks: list[ChainBreakPublic]  # the first per chain


class CheckpointsPublic(BaseModel):
    public_keys: dict[str, str]  # key id: PEM
    checkpoints: list[dict[str, Any]]


@router.get("/verify", response_model=VerificationPublic)
def verify(request: Request, session: SessionDep) -> VerificationPublic:
    """Walk every chain from its start; report the first break of each, if any."""
    keys: KeyRing = request.app.state.keys
    report = integrity.verify(session, keys.trusted)
    return VerificationPublic(
        intact=report.intact,
        chains=report.verification.chains,
        entries=report.verification.entries,
        erased=report.verification.erased,
        checkpoints=report.checkpoints,
        breaks=[ChainBreakPublic(**vars(b)) for b in report.breaks],
    )


@router.get("/checkpoints", response_model=CheckpointsPublic)
def list_checkpoints(request: Request, session: SessionDep) -> CheckpointsPublic:
    """Every signed checkpoint and the public keys that check them: copy them out."""
    keys: KeyRing = request.app.state.keys
    return CheckpointsPublic(
        public_keys={key_id: checkpoints.public_pem(key) for key_id, key in keys.trusted.items()},
        checkpoints=[checkpoints.to_document(c) for c in checkpoints.all_checkpoints(session)],
    )


@router.post("/checkpoints", status_code=201)
def sign_checkpoints(
    request: Request, session: SessionDep, _token: Operator
) -> list[dict[str, Any]]:
    """Sign the head of every chain that grew since its last checkpoint, now."""
    keys: KeyRing = request.app.state.keys
    signed = checkpoints.sign_heads(session, keys.signing, datetime.now(UTC))
    session.commit()
    return [checkpoints.to_document(c) for c in signed]

"""Integrity: verify every chain against the signed checkpoints; list, copy and sign them."""

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from driftline.collector.audit import checkpoints, integrity
from driftline.collector.audit.integrity import KeyRing
from driftline.collector.web.api.auth import Operator
from driftline.collector.web.api.deps import SessionDep, SigningKey

router = APIRouter(prefix="/integrity", tags=["integrity"])


class ChainBreakPublic(BaseModel):
    topic: str
    partition: int
    seq: int
    problem: str


class TamperingPublic(BaseModel):
    table: str
    key: str
    problem: str


class VerificationPublic(BaseModel):
    intact: bool
    sampled: bool  # only a random sample of rows was checked, and no chain walked whole
    chains: int | None
    entries: int | None
    erased: int | None
    unsigned_erasures: int | None  # from before erasure marks were signed
    checkpoints: int
    rows_checked: int
    complete: bool  # False when a sample ran out of time
    breaks: list[ChainBreakPublic]  # the first per chain
    tampering: list[TamperingPublic]  # served rows that are not what their ledger entry says


class CheckpointsPublic(BaseModel):
    public_keys: dict[str, str]  # key id: PEM
    checkpoints: list[dict[str, Any]]


@router.get("/verify", response_model=VerificationPublic)
def verify(
    request: Request,
    session: SessionDep,
    sample: Annotated[int | None, Query(ge=1, le=100_000)] = None,
    seconds: Annotated[float, Query(gt=0, le=600)] = 30.0,
) -> VerificationPublic:
    """Walk every chain from its start, check every erasure mark and every served row against
    its ledger entry; or, with ``sample``, that many random rows of each read model with their
    entries, for at most ``seconds``."""
    keys: KeyRing = request.app.state.keys
    plan = integrity.Sample(sample, seconds) if sample is not None else None
    report = integrity.verify(
        session, keys.trusted, sample=plan, producers=request.app.state.producers
    )
    v, marks = report.verification, report.marks
    return VerificationPublic(
        intact=report.intact,
        sampled=plan is not None,
        chains=v.chains if v else None,
        entries=v.entries if v else None,
        erased=v.erased if v else None,
        unsigned_erasures=marks.unsigned if marks else None,
        checkpoints=report.checkpoints,
        rows_checked=report.rows.rows,
        complete=report.rows.complete,
        breaks=[ChainBreakPublic(**vars(b)) for b in report.breaks],
        tampering=[TamperingPublic(**vars(t)) for t in report.rows.tampering],
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
    session: SessionDep, _token: Operator, key: SigningKey
) -> list[dict[str, Any]]:
    """Sign the head of every chain that grew since its last checkpoint, now (on an API that
    signs; the housekeeper does it every DRIFTLINE_CHECKPOINT_INTERVAL_S anyway)."""
    signed = checkpoints.sign_heads(session, key, datetime.now(UTC))
    session.commit()
    return [checkpoints.to_document(c) for c in signed]

"""Decisions: search with cursor pagination, one decision's lineage and its proof, exports."""

import uuid
from collections.abc import Iterator
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import Field, field_validator
from sqlmodel import Session

from driftline.collector.audit.exports import MEDIA_TYPES, Export, ExportFormat, manifest_document
from driftline.collector.audit.integrity import KeyRing
from driftline.collector.audit.proofs import ProofUnavailable, prove_decision
from driftline.collector.audit.row_verification import check_decision
from driftline.collector.store import queries
from driftline.collector.store.models import ExportManifest
from driftline.collector.store.prices import PriceTable
from driftline.collector.store.search import Cursor, DecisionFilter, PricesMissing, search
from driftline.collector.web.api.auth import Auditor
from driftline.collector.web.api.deps import SessionDep, SigningKey
from driftline.collector.web.api.schemas import (
    AlertPublic,
    BaselinePublic,
    DecisionPage,
    DecisionPublic,
    DeploymentPublic,
    DriftVerdictPublic,
    ExportManifestPublic,
    FeedbackPublic,
    LedgerPosition,
    LineagePublic,
    ReviewPublic,
    RowsVerified,
)

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/decisions", tags=["decisions"])
exports_router = APIRouter(prefix="/exports", tags=["decisions"])


class PageQuery(DecisionFilter):
    cursor: str | None = Field(default=None, max_length=500, description="next_cursor of a page")
    limit: int = Field(default=100, ge=1, le=500)

    @field_validator("cursor")
    @classmethod
    def _handed_out_here(cls, value: str | None) -> str | None:
        if value is not None:
            Cursor.decode(value)  # raises ValueError, which FastAPI answers with 422
        return value


class ExportQuery(DecisionFilter):
    format: ExportFormat = "jsonl"


@router.get("", response_model=DecisionPage)
def search_decisions(
    request: Request, session: SessionDep, query: Annotated[PageQuery, Query()]
) -> DecisionPage:
    """Decisions the filters select, a page at a time; unknown parameters are refused. A cost
    range needs the price table (409 without one)."""
    after = Cursor.decode(query.cursor) if query.cursor else None
    where = DecisionFilter.model_validate(query.model_dump(exclude={"cursor", "limit"}))
    prices: PriceTable | None = request.app.state.prices
    try:
        rows, next_page = search(session, where, after, query.limit, prices)
    except PricesMissing as missing:
        raise HTTPException(status_code=409, detail=str(missing)) from None
    return DecisionPage(
        items=[DecisionPublic.priced(row, prices) for row in rows],
        next_cursor=next_page.encode() if next_page else None,
    )


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The file; its manifest is at /exports/{X-Driftline-Export-Id}",
            "content": {media: {} for media in MEDIA_TYPES.values()},
        }
    },
)
def export_decisions(
    request: Request,
    token: Auditor,
    query: Annotated[ExportQuery, Query()],
    key: SigningKey,
) -> StreamingResponse:
    """Every decision the search selects, streamed; the manifest is stored, signed, when it
    ends (on an API that signs)."""
    engine = request.app.state.engine
    format = query.format
    where = DecisionFilter.model_validate(query.model_dump(exclude={"format"}))
    try:
        export = Export(
            engine, where, format, created_by=token.name, key=key, prices=request.app.state.prices
        )
    except PricesMissing as missing:
        raise HTTPException(status_code=409, detail=str(missing)) from None

    def stream() -> Iterator[bytes]:
        yield from export.chunks()
        with Session(engine) as session:
            session.add(export.manifest)
            session.commit()

    name = f"decisions-{export.manifest.id}.{format}"
    return StreamingResponse(
        stream(),
        media_type=MEDIA_TYPES[format],
        headers={
            "X-Driftline-Export-Id": str(export.manifest.id),
            "Content-Disposition": f'attachment; filename="{name}"',
        },
    )


@router.get("/{decision_id}", response_model=LineagePublic)
def read_decision(request: Request, session: SessionDep, decision_id: uuid.UUID) -> LineagePublic:
    """The decision with its reviews and feedback, and what stood around it when it was taken:
    drift and alerts open for its model version, the baseline in force, the deployment."""
    found = queries.lineage(session=session, decision_id=decision_id)
    if found is None:
        raise HTTPException(status_code=404, detail=f"no decision {decision_id}")
    decision, entry = found.trail.decision, found.ledger_entry
    template: str | None = request.app.state.trace_link_template
    keys: KeyRing = request.app.state.keys
    tampering = [str(t) for t in check_decision(session, decision_id, keys.trusted)]
    if tampering:
        log.error(
            "tampering found serving a decision", decision_id=str(decision_id), found=tampering
        )
    return LineagePublic(
        verified=RowsVerified(intact=not tampering, tampering=tampering),
        decision=DecisionPublic.priced(decision, request.app.state.prices),
        reviews=[ReviewPublic.model_validate(r) for r in found.trail.reviews],
        feedback=[FeedbackPublic.model_validate(f) for f in found.trail.feedback],
        ledger=LedgerPosition(
            topic=entry.topic,
            partition=entry.partition,
            seq=entry.seq,
            erased=entry.erased_at is not None,
        )
        if entry
        else None,
        drifting=[DriftVerdictPublic.model_validate(v) for v in found.drifting],
        alerts=[
            AlertPublic(
                receiver=a.notification.receiver,
                group_key=a.notification.group_key,
                status=a.notification.status,
                notified_at=a.notification.occurred_at,
                labels=a.labels,
            )
            for a in found.alerts
        ],
        baseline=BaselinePublic.of(found.baseline) if found.baseline else None,
        deployment=DeploymentPublic(
            service=found.deployment.service,
            deployed_at=found.deployment.occurred_at,
            owner=found.deployment.owner,
            approved_by=found.deployment.approved_by,
        )
        if found.deployment
        else None,
        trace_url=template.format(trace_id=decision.trace_id)
        if template and decision.trace_id
        else None,
    )


@router.get("/{decision_id}/proof")
def decision_proof(request: Request, session: SessionDep, decision_id: uuid.UUID) -> dict[str, Any]:
    """What an auditor needs to check the decision's event against a signed checkpoint without
    trusting this server: the event, the chain segment up to the checkpoint, the checkpoint."""
    keys: KeyRing = request.app.state.keys
    try:
        return prove_decision(session, decision_id, keys.trusted)
    except ProofUnavailable as missing:
        status = 404 if missing.missing else 409
        raise HTTPException(status_code=status, detail=str(missing)) from None


@exports_router.get("/{export_id}", response_model=ExportManifestPublic)
def export_manifest(session: SessionDep, export_id: uuid.UUID) -> ExportManifestPublic:
    """An export's manifest, once its file has been streamed to the end."""
    manifest = session.get(ExportManifest, export_id)
    if manifest is None:
        raise HTTPException(status_code=404, detail=f"no complete export {export_id}")
    return ExportManifestPublic.model_validate(manifest_document(manifest))

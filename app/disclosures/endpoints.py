"""/v1/disclosures: compelled-disclosure demands, from intake to export and close.

Writes need Steward.Legal; reads also Steward.Auditor (who sees the customer only as public information
allows). Every route returns customers through the do-not-disclose guard.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import FileResponse

from app.auth.dependencies import AUDITOR, LEGAL, Principal, require_roles
from app.db.base import utc_now
from app.deps import SessionDep
from app.disclosures import approvals, export, service, views
from app.disclosures.context import DisclosureContext
from app.disclosures.repository import DemandRepository
from app.disclosures.schemas import (
    ApprovalIn,
    ApprovalResultRead,
    CloseIn,
    DecisionIn,
    DemandIn,
    DemandRead,
    DemandSummary,
    HistoryEntry,
    ObjectionIn,
    ScopeItemRead,
)
from app.models import DisclosureStatus
from app.privacy.dependencies import GuardDep, PolicyDep
from app.privacy.graph import GraphDep

router = APIRouter(prefix="/disclosures", tags=["disclosures"])

legal_access = require_roles(LEGAL)
read_access = require_roles(LEGAL, AUDITOR)
LegalDep = Annotated[Principal, Depends(legal_access)]
ReaderDep = Annotated[Principal, Depends(read_access)]
DemandPath = Annotated[str, Path(min_length=32, max_length=32, pattern=r"^[0-9a-f]{32}$")]


def disclosure_context(request: Request, policy: PolicyDep) -> DisclosureContext:
    clock: Callable[[], datetime] = getattr(request.app.state, "clock", utc_now)
    return DisclosureContext(settings=request.app.state.settings, policy=policy, clock=clock)


ContextDep = Annotated[DisclosureContext, Depends(disclosure_context)]


@router.post("", response_model=DemandRead, status_code=201)
async def receive_demand(
    body: DemandIn, session: SessionDep, ctx: ContextDep, principal: LegalDep, guard: GuardDep
) -> DemandRead:
    """Record a legal demand: its scope is frozen at once and, unless gagged, the customer's notice is queued."""
    scope = body.scope
    intake = service.DemandIntake(
        customer_id=body.customer_id,
        authority=body.authority,
        legal_basis=body.legal_basis,
        reference=body.reference,
        data_description=body.data_description,
        scope=service.ScopeSpec(
            items=tuple((i.kind, i.container_id, i.item_id) for i in scope.items) if scope.items else None,
            date_from=scope.date_from,
            date_to=scope.date_to,
            kinds=tuple(dict.fromkeys(scope.kinds)),
        ),
        deadline=body.deadline,
        objection_deadline=body.objection_deadline,
        gagged=body.gagged,
    )
    demand = await service.receive(session, ctx, intake, actor=principal)
    return await views.detail(session, ctx, demand, guard)


@router.get("", response_model=list[DemandSummary])
async def list_demands(
    session: SessionDep,
    _principal: ReaderDep,
    guard: GuardDep,
    status: DisclosureStatus | None = None,
    customer_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[DemandSummary]:
    """Demands, newest first."""
    demands = await DemandRepository(session).page(status=status, customer_id=customer_id, limit=limit)
    return [await views.summary(session, demand, guard) for demand in demands]


@router.get("/{demand_id}", response_model=DemandRead)
async def read_demand(
    demand_id: DemandPath, session: SessionDep, ctx: ContextDep, _principal: ReaderDep, guard: GuardDep
) -> DemandRead:
    """One demand with its objections, decisions, approvals of the current scope and exports."""
    return await views.detail(session, ctx, await service.get_demand(session, demand_id), guard)


@router.get("/{demand_id}/items", response_model=list[ScopeItemRead])
async def demand_items(
    demand_id: DemandPath,
    session: SessionDep,
    _principal: ReaderDep,
    _guard: GuardDep,
    include_removed: bool = False,
) -> list[ScopeItemRead]:
    """The items the demand froze (metadata only); narrowed-out items with include_removed=true."""
    await service.get_demand(session, demand_id)
    items = await DemandRepository(session).scope_items(demand_id, in_scope_only=not include_removed)
    return [ScopeItemRead.model_validate(item) for item in items]


@router.get("/{demand_id}/history", response_model=list[HistoryEntry])
async def demand_history(
    demand_id: DemandPath, session: SessionDep, _principal: ReaderDep, _guard: GuardDep
) -> list[HistoryEntry]:
    """Every move and decision on the demand, from the audit log."""
    await service.get_demand(session, demand_id)
    return [HistoryEntry.model_validate(record) for record in await DemandRepository(session).history(demand_id)]


@router.post("/{demand_id}/objections", response_model=DemandRead, status_code=201)
async def record_objection(
    demand_id: DemandPath, body: ObjectionIn, session: SessionDep, ctx: ContextDep, principal: LegalDep, guard: GuardDep
) -> DemandRead:
    """Record an objection that reached us by the objection deadline; the demand waits for a decision."""
    await service.record_objection(
        session,
        ctx,
        demand_id,
        objector=body.objector,
        received_at=body.received_at,
        grounds=body.grounds,
        evidence_ref=body.evidence_ref,
        actor=principal,
    )
    return await views.detail(session, ctx, await service.get_demand(session, demand_id), guard)


@router.post("/{demand_id}/decisions", response_model=DemandRead, status_code=201)
async def record_decision(
    demand_id: DemandPath, body: DecisionIn, session: SessionDep, ctx: ContextDep, principal: LegalDep, guard: GuardDep
) -> DemandRead:
    """Record the authority's or court's decision: upheld stays the disclosure, rejected or narrowed releases it."""
    keep = body.keep
    narrowing = (
        service.Narrowing(
            items=tuple((i.kind, i.container_id, i.item_id) for i in keep.items) if keep.items else None,
            date_from=keep.date_from,
            date_to=keep.date_to,
        )
        if keep is not None
        else None
    )
    await service.record_decision(
        session,
        ctx,
        demand_id,
        outcome=body.outcome,
        decided_by=body.decided_by,
        decided_at=body.decided_at,
        reference=body.reference,
        note=body.note,
        narrowing=narrowing,
        actor=principal,
    )
    return await views.detail(session, ctx, await service.get_demand(session, demand_id), guard)


@router.post("/{demand_id}/release", response_model=DemandRead)
async def release_demand(
    demand_id: DemandPath, session: SessionDep, ctx: ContextDep, principal: LegalDep, guard: GuardDep
) -> DemandRead:
    """Release a demand whose objection window ended with no objection (the scheduler does this daily too)."""
    demand = await service.release_after_window(session, ctx, demand_id, actor=principal)
    return await views.detail(session, ctx, demand, guard)


@router.post("/{demand_id}/approvals", response_model=ApprovalResultRead)
async def decide_release(
    demand_id: DemandPath, body: ApprovalIn, session: SessionDep, ctx: ContextDep, principal: LegalDep, _guard: GuardDep
) -> ApprovalResultRead:
    """A legal approver approves or rejects releasing the current scope (two distinct approvers are needed)."""
    result = await approvals.decide_export(
        session, ctx, demand_id, scope_hash=body.scope_hash, approver=principal, approve=body.decision == "approve"
    )
    return ApprovalResultRead.model_validate(result)


@router.post("/{demand_id}/export", response_model=DemandRead, status_code=201)
async def export_demand(
    demand_id: DemandPath,
    session: SessionDep,
    ctx: ContextDep,
    principal: LegalDep,
    guard: GuardDep,
    graph: GraphDep,
) -> DemandRead:
    """Build the package from Graph (released and approved demands only); the approvals are used up."""
    await export.export(session, ctx, demand_id, actor=principal, fetcher=export.GraphItemFetcher(graph))
    return await views.detail(session, ctx, await service.get_demand(session, demand_id), guard)


@router.get("/{demand_id}/exports/{export_id}/package", response_class=FileResponse)
async def download_package(
    demand_id: DemandPath,
    export_id: int,
    session: SessionDep,
    ctx: ContextDep,
    principal: LegalDep,
    _guard: GuardDep,
) -> FileResponse:
    """The package (zip) as exported; refused if the stored file no longer matches its recorded SHA-256."""
    path, record = await export.package_file(session, ctx, demand_id, export_id, actor=principal)
    return FileResponse(
        path,
        media_type="application/zip",
        filename=record.package_name,
        headers={"X-Package-SHA256": record.package_sha256, "Cache-Control": "no-store"},
    )


@router.post("/{demand_id}/close", response_model=DemandRead)
async def close_demand(
    demand_id: DemandPath, body: CloseIn, session: SessionDep, ctx: ContextDep, principal: LegalDep, guard: GuardDep
) -> DemandRead:
    """Close the demand (done, withdrawn or stayed for good): holds are released, the package file removed."""
    demand = await service.close(session, ctx, demand_id, reason=body.reason, actor=principal)
    return await views.detail(session, ctx, demand, guard)

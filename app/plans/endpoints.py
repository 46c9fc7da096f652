"""/v1/deletion-requests and /v1/plans: triggers, manifests, exports and approvals on the web."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sqlalchemy import select

from app.approvals.service import ApprovalRefused, Approver, PlanClosed, StaleManifest, decide, record_refusal
from app.auth.dependencies import ADMIN, APPROVER, AUDITOR, LEGAL, Principal, require_roles
from app.config import Settings
from app.deps import SessionDep
from app.models import Approval, Decision, DeletionPlan
from app.plans.context import DeletionContext, policy_for
from app.plans.schemas import (
    Accepted,
    CompanyDecision,
    CustomerDeletionRequest,
    DecisionIn,
    DecisionOut,
    ExcludeIn,
    PlanOut,
)
from app.plans.service import Requester, exclude_item, export_csv, export_json, get_plan, plan_items, summary
from app.plans.triggers import record_company_decision, record_customer_request

router = APIRouter(tags=["deletion"])

AdminDep = Annotated[Principal, Depends(require_roles(ADMIN))]
ReaderDep = Annotated[Principal, Depends(require_roles(ADMIN, APPROVER, AUDITOR, LEGAL))]
ApproverDep = Annotated[Principal, Depends(require_roles(APPROVER))]
PlanId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="Plan id.")]


def _context(request: Request) -> DeletionContext:
    settings: Settings = request.app.state.settings
    return DeletionContext(settings=settings, policy=policy_for(settings))


def _requester(principal: Principal) -> Requester:
    return Requester(principal.subject, principal.name or principal.subject, principal.is_service)


@router.post("/deletion-requests", status_code=202, response_model=Accepted)
async def create_deletion_request(
    body: CustomerDeletionRequest, principal: AdminDep, session: SessionDep, request: Request
) -> Accepted:
    """A customer asked to delete their data; the plan is built in the background and sent for approval."""
    recorded, spec = await record_customer_request(
        session,
        _context(request),
        customer_id=body.customer_id,
        requester_name=body.requester_name,
        requester_email=body.requester_email,
        identity_check=body.identity_check,
        channel="api",
        received_by=_requester(principal),
    )
    return Accepted(plan_id=str(spec.payload["plan_id"]), task=spec.key, request_id=recorded.id)


@router.post("/plans", status_code=202, response_model=Accepted)
async def create_plan(body: CompanyDecision, principal: AdminDep, session: SessionDep, request: Request) -> Accepted:
    """A company decision (or its dry run) for the named customers."""
    spec = await record_company_decision(
        session,
        _context(request),
        customer_ids=body.customer_ids,
        reason=body.reason,
        include_shared=body.include_shared,
        dry_run=body.dry_run,
        by=_requester(principal),
    )
    return Accepted(plan_id=str(spec.payload["plan_id"]), task=spec.key)


@router.get("/plans")
async def list_plans(
    principal: ReaderDep,
    session: SessionDep,
    status: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[dict[str, object]]:
    query = select(DeletionPlan).order_by(DeletionPlan.created_at.desc()).limit(limit)
    if status:
        query = query.where(DeletionPlan.status == status)
    plans = (await session.execute(query)).scalars().all()
    return [
        {
            "id": plan.id,
            "status": plan.status,
            "trigger": plan.trigger,
            "customer_ids": list(plan.customer_ids),
            "items": plan.item_count,
            "bytes": plan.total_bytes,
            "created_at": plan.created_at.isoformat(),
        }
        for plan in plans
    ]


@router.get("/plans/{plan_id}", response_model=PlanOut)
async def read_plan(plan_id: PlanId, principal: ReaderDep, session: SessionDep) -> PlanOut:
    plan = await get_plan(session, plan_id)
    approvals = (
        await session.execute(select(Approval).where(Approval.plan_id == plan.id).order_by(Approval.decided_at))
    ).scalars()
    return PlanOut(
        plan=summary(plan, await plan_items(session, plan.id)),
        approvals=[
            {
                "approver": approval.approver,
                "name": approval.approver_name,
                "decision": approval.decision,
                "channel": approval.channel,
                "manifest_hash": approval.manifest_hash,
                "decided_at": approval.decided_at.isoformat(),
                "expires_at": approval.expires_at.isoformat(),
                "voided": approval.voided_at is not None,
                "void_reason": approval.void_reason,
            }
            for approval in approvals
        ],
    )


@router.get("/plans/{plan_id}/manifest")
async def export_manifest(
    plan_id: PlanId,
    principal: ReaderDep,
    session: SessionDep,
    format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
) -> Response:
    plan = await get_plan(session, plan_id)
    items = await plan_items(session, plan.id)
    if format == "csv":
        return Response(
            export_csv(items),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="plan-{plan.id}.csv"'},
        )
    return Response(export_json(plan, items), media_type="application/json")


@router.post("/plans/{plan_id}/decisions", response_model=DecisionOut)
async def decide_on_plan(
    plan_id: PlanId, body: DecisionIn, principal: ApproverDep, session: SessionDep, request: Request
) -> DecisionOut:
    """Approve or reject as the signed-in approver (the identity comes from the bearer token only)."""
    approver = Approver(principal.subject, principal.name or principal.subject, principal.is_service)
    try:
        result = await decide(
            session,
            _context(request),
            plan_id=plan_id,
            manifest_hash=body.manifest_hash,
            approver=approver,
            decision=Decision(body.decision),
            channel="web",
        )
    except (ApprovalRefused, StaleManifest, PlanClosed) as refused:
        # Release this request's transaction (and SQLite's write lock) before auditing in a transaction of its own.
        await session.rollback()
        await record_refusal(
            request.app.state.sessionmaker,
            plan_id=plan_id,
            actor=principal.subject,
            action=f"approval.{type(refused).__name__}",
            why=refused.message,
        )
        raise
    return DecisionOut(
        plan_id=result.plan_id,
        status=result.status,
        approvals=result.approvals,
        required=result.required,
        counted=result.counted,
    )


@router.post("/plans/{plan_id}/items/{item_id}/exclude", response_model=DecisionOut)
async def exclude_plan_item(
    plan_id: PlanId,
    item_id: Annotated[int, Path(ge=1)],
    body: ExcludeIn,
    principal: AdminDep,
    session: SessionDep,
    request: Request,
) -> DecisionOut:
    """Take an item out of the plan: the manifest changes, every approval so far is void, a new card goes out."""
    plan = await get_plan(session, plan_id)
    await exclude_item(session, _context(request), plan, item_id, reason=body.reason, by=_requester(principal))
    return DecisionOut(plan_id=plan.id, status=plan.status, approvals=0, required=plan.required_approvals, counted=True)

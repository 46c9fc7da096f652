"""Building deletion plans: from a trigger and the data map to an exact, hashed manifest with its exclusions.

A plan lists every item the customers' data lives in (from a complete enumeration only), each with the action:
delete, or exclude with the reason (a hold, a retention label, a pending disclosure, a customer's request to
keep it, or another customer whose data stays). Shared items are only ever deleted by a plan that says so
explicitly (`include_shared`), which is then its own, separately approved company decision.
"""

import csv
import io
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import audit
from app.exceptions import BadRequest, Conflict, NotFound
from app.models import (
    Approval,
    DeletionPlan,
    ItemAction,
    ItemKind,
    ItemState,
    PlanItem,
    PlanStatus,
    TriggerKind,
)
from app.notifications.outbox import PLAN_CARD, enqueue
from app.plans.context import DeletionContext
from app.plans.holds import SHARED_WITH_OTHER_CUSTOMER, ItemRef, LocalHolds
from app.plans.manifest import ManifestHeader, ManifestLine, manifest_hash

# SharePoint keeps a deleted file in the site and second-stage recycle bins for 93 days in total.
RECYCLE_BIN_DAYS = 93
# Statuses in which a plan still matters for its customers: no second plan is built beside it.
OPEN_STATUSES = frozenset(
    {PlanStatus.pending_approval, PlanStatus.approved, PlanStatus.executing, PlanStatus.awaiting_purge}
)


class PlanNotReady(Conflict):
    """The data map has no complete enumeration for these customers yet (never synced, or resyncing)."""


class TriggerDisabled(BadRequest):
    pass


@dataclass(frozen=True, slots=True)
class Requester:
    subject: str  # Entra object id, or "service:<name>" for automation
    name: str
    is_service: bool = False


@dataclass(frozen=True, slots=True)
class PlanRequest:
    trigger: TriggerKind
    customer_ids: tuple[str, ...]
    requester: Requester
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    include_shared: bool = False


def new_id() -> str:
    return uuid.uuid4().hex


def _check_trigger(ctx: DeletionContext, request: PlanRequest) -> None:
    triggers = ctx.policy.deletion
    enabled = {
        TriggerKind.customer_request: triggers.customer_request.enabled,
        TriggerKind.inactivity: triggers.inactivity.enabled,
        TriggerKind.company_decision: triggers.company_decision.enabled,
    }[request.trigger]
    if not enabled:
        raise TriggerDisabled(f"the policy disables the {request.trigger.value} trigger")
    if not request.customer_ids:
        raise BadRequest("a plan needs at least one customer")
    if request.trigger is TriggerKind.company_decision and triggers.company_decision.require_reason:
        if not request.reason.strip():
            raise BadRequest("a company decision must state its reason")
    if request.include_shared and request.trigger is not TriggerKind.company_decision:
        raise BadRequest("only an explicit company decision may delete items shared with other customers")


def header_of(plan: DeletionPlan) -> ManifestHeader:
    return ManifestHeader(
        plan_id=plan.id,
        tenant_id=plan.tenant_id,
        customer_ids=tuple(plan.customer_ids),
        trigger=plan.trigger,
        reason=plan.reason,
        include_shared=plan.include_shared,
        soft_delete_grace_days=int(plan.trigger_details.get("soft_delete_grace_days", 0)),
    )


def line_of(item: PlanItem) -> ManifestLine:
    return ManifestLine(
        kind=item.kind,
        container_id=item.container_id,
        item_id=item.item_id,
        etag=item.etag,
        size=item.size,
        name_hash=item.name_hash,
        action=item.action,
        exclusion_reason=item.exclusion_reason,
        shared_with=tuple(item.shared_with),
    )


async def plan_items(session: AsyncSession, plan_id: str) -> list[PlanItem]:
    result = await session.execute(select(PlanItem).where(PlanItem.plan_id == plan_id).order_by(PlanItem.ordinal))
    return list(result.scalars().all())


async def compute_hash(session: AsyncSession, plan: DeletionPlan) -> str:
    """The hash of the manifest as it is in the store now (execution compares it with the approved one)."""
    return manifest_hash(header_of(plan), [line_of(item) for item in await plan_items(session, plan.id)])


async def plans_in_last_hour(session: AsyncSession, now: datetime) -> int:
    result = await session.execute(
        select(func.count())
        .select_from(DeletionPlan)
        .where(DeletionPlan.created_at >= now - timedelta(hours=1), DeletionPlan.status != PlanStatus.dry_run)
    )
    return int(result.scalar_one())


def required_approvals(ctx: DeletionContext, trigger: TriggerKind, cap_reasons: Sequence[str]) -> int:
    approvals = ctx.policy.approvals
    required = approvals.quorum
    if cap_reasons:
        required += approvals.extra_approvals_above_cap
    if trigger is TriggerKind.company_decision:
        required += ctx.policy.deletion.company_decision.extra_approvals
    return required


async def build_plan(
    session: AsyncSession, ctx: DeletionContext, request: PlanRequest, *, dry_run: bool, plan_id: str | None = None
) -> DeletionPlan:
    """Build the manifest from the data map, decide every exclusion, hash it, and (unless a dry run) submit it.

    `plan_id` lets a task that builds the plan know, after a crash, whether it already did.
    """
    _check_trigger(ctx, request)
    if ctx.datamap is None or ctx.external_holds is None:
        raise PlanNotReady("planning needs the data map and Microsoft 365's hold state; neither may be skipped")
    customers = tuple(sorted(set(request.customer_ids)))
    coverage = await ctx.datamap.coverage(customers)
    if not coverage.complete:
        shown = ", ".join(coverage.incomplete_containers[:5])
        raise PlanNotReady(f"the data map is incomplete or resyncing for: {shown or 'these customers'}")
    now = ctx.clock()
    external = ctx.external_holds
    await external.refresh()
    local = await LocalHolds.load(session)
    plan = DeletionPlan(
        id=plan_id or new_id(),
        tenant_id=ctx.settings.tenant_id,
        customer_ids=list(customers),
        trigger=request.trigger.value,
        reason=request.reason.strip(),
        trigger_details={**request.details, "soft_delete_grace_days": ctx.policy.disposal.soft_delete_grace_days},
        requested_by=request.requester.subject,
        requested_by_name=request.requester.name,
        requested_by_is_service=request.requester.is_service,
        owner=(ctx.settings.automation_owner or None) if request.requester.is_service else request.requester.subject,
        status=PlanStatus.dry_run if dry_run else PlanStatus.pending_approval,
        include_shared=request.include_shared,
        manifest_hash="",
        manifest_version=1,
        item_count=0,
        total_bytes=0,
        excluded_count=0,
        required_approvals=ctx.policy.approvals.quorum,
        cap_reasons=[],
        created_at=now,
    )
    session.add(plan)
    await session.flush()
    ordinal = 0
    wanted = set(customers)
    async for mapped in ctx.datamap.items_for(customers):
        shared_with = sorted(mapped.customer_ids - wanted)
        ref = ItemRef(mapped.kind, mapped.container_id, mapped.item_id, frozenset(mapped.customer_ids))
        hit = local.check(ref) or await external.check(ref)
        reason, detail = (hit.reason, hit.detail) if hit else (None, None)
        if reason is None and shared_with and not request.include_shared:
            reason, detail = SHARED_WITH_OTHER_CUSTOMER, f"also belongs to {', '.join(shared_with)}"
        ordinal += 1
        session.add(
            PlanItem(
                plan_id=plan.id,
                ordinal=ordinal,
                kind=ItemKind(mapped.kind).value,
                container_id=mapped.container_id,
                item_id=mapped.item_id,
                etag=mapped.etag,
                size=mapped.size,
                name_hash=mapped.name_hash,
                customer_ids=sorted(mapped.customer_ids & wanted),
                shared_with=shared_with,
                action=ItemAction.exclude if reason else ItemAction.delete,
                exclusion_reason=reason,
                exclusion_detail=detail,
                state=ItemState.excluded if reason else ItemState.planned,
                attempts=0,
            )
        )
    await session.flush()
    await _summarise(session, ctx, plan, now)
    await audit.append(
        session,
        actor=request.requester.subject,
        action="plan.dry_run" if dry_run else "plan.created",
        subject=f"plan:{plan.id}",
        payload={
            "trigger": plan.trigger,
            "customers": plan.customer_ids,
            "items": plan.item_count,
            "excluded": plan.excluded_count,
            "bytes": plan.total_bytes,
            "manifest_hash": plan.manifest_hash,
            "required_approvals": plan.required_approvals,
            "cap_reasons": plan.cap_reasons,
        },
    )
    if not dry_run:
        await submit(session, ctx, plan)
    return plan


async def _summarise(session: AsyncSession, ctx: DeletionContext, plan: DeletionPlan, now: datetime) -> None:
    items = await plan_items(session, plan.id)
    to_delete = [item for item in items if item.action == ItemAction.delete]
    plan.item_count = len(to_delete)
    plan.total_bytes = sum(item.size for item in to_delete)
    plan.excluded_count = len(items) - len(to_delete)
    caps: list[str] = []
    approvals = ctx.policy.approvals
    if plan.item_count > approvals.max_items_per_plan:
        caps.append(f"{plan.item_count} items is over the cap of {approvals.max_items_per_plan} per plan")
    if plan.status != PlanStatus.dry_run:
        recent = await plans_in_last_hour(session, now)
        if recent > approvals.max_plans_per_hour:
            caps.append(f"{recent} plans in the last hour is over the cap of {approvals.max_plans_per_hour}")
    plan.cap_reasons = caps
    plan.required_approvals = required_approvals(ctx, TriggerKind(plan.trigger), caps)
    plan.manifest_hash = manifest_hash(header_of(plan), [line_of(item) for item in items])
    await session.flush()


async def submit(session: AsyncSession, ctx: DeletionContext, plan: DeletionPlan) -> None:
    """Open the approval window and queue the card, in the caller's transaction."""
    now = ctx.clock()
    plan.status = PlanStatus.pending_approval
    plan.submitted_at = now
    plan.expires_at = now + timedelta(hours=ctx.policy.approvals.ttl_hours)
    plan.reminded_at = None
    plan.escalated_at = None
    await session.flush()
    await enqueue(
        session,
        kind=PLAN_CARD,
        key=f"plan:{plan.id}:card:v{plan.manifest_version}",
        payload={"plan_id": plan.id, "manifest_version": plan.manifest_version},
    )


async def get_plan(session: AsyncSession, plan_id: str) -> DeletionPlan:
    plan = await session.get(DeletionPlan, plan_id)
    if plan is None:
        raise NotFound(f"no plan {plan_id}")
    return plan


async def void_approvals(session: AsyncSession, plan: DeletionPlan, *, reason: str, now: datetime) -> int:
    result = await session.execute(select(Approval).where(Approval.plan_id == plan.id, Approval.voided_at.is_(None)))
    voided = 0
    for approval in result.scalars().all():
        approval.voided_at = now
        approval.void_reason = reason
        voided += 1
    await session.flush()
    return voided


async def exclude_item(
    session: AsyncSession, ctx: DeletionContext, plan: DeletionPlan, item_id: int, *, reason: str, by: Requester
) -> DeletionPlan:
    """Take one item out of a plan: the manifest changes, so every approval so far is void and a new card goes out."""
    if plan.status not in (PlanStatus.pending_approval, PlanStatus.approved):
        raise Conflict(f"a {plan.status} plan can no longer be changed")
    if not reason.strip():
        raise BadRequest("say why the item is excluded")
    item = await session.get(PlanItem, item_id)
    if item is None or item.plan_id != plan.id:
        raise NotFound(f"no item {item_id} in plan {plan.id}")
    if item.action == ItemAction.exclude:
        return plan
    item.action = ItemAction.exclude
    item.state = ItemState.excluded
    item.exclusion_reason = "excluded_by_staff"
    item.exclusion_detail = reason.strip()
    await manifest_changed(session, ctx, plan, why=f"item {item_id} excluded by {by.name}", actor=by.subject)
    return plan


async def manifest_changed(
    session: AsyncSession, ctx: DeletionContext, plan: DeletionPlan, *, why: str, actor: str
) -> None:
    now = ctx.clock()
    old_hash = plan.manifest_hash
    plan.manifest_version += 1
    plan.decided_at = None
    await _summarise(session, ctx, plan, now)
    voided = await void_approvals(session, plan, reason=f"manifest changed: {why}", now=now)
    await audit.append(
        session,
        actor=actor,
        action="plan.manifest_changed",
        subject=f"plan:{plan.id}",
        payload={"old_hash": old_hash, "new_hash": plan.manifest_hash, "voided_approvals": voided, "why": why},
    )
    await submit(session, ctx, plan)


# Reading and exporting ---------------------------------------------------------------------------------


EXPORT_FIELDS = (
    "ordinal",
    "kind",
    "container_id",
    "item_id",
    "etag",
    "size",
    "name_hash",
    "customer_ids",
    "shared_with",
    "action",
    "exclusion_reason",
    "exclusion_detail",
    "state",
)


def item_row(item: PlanItem) -> dict[str, Any]:
    return {
        "ordinal": item.ordinal,
        "kind": item.kind,
        "container_id": item.container_id,
        "item_id": item.item_id,
        "etag": item.etag,
        "size": item.size,
        "name_hash": item.name_hash,
        "customer_ids": list(item.customer_ids),
        "shared_with": list(item.shared_with),
        "action": item.action,
        "exclusion_reason": item.exclusion_reason,
        "exclusion_detail": item.exclusion_detail,
        "state": item.state,
    }


def timeline(plan: DeletionPlan, *, start: datetime | None = None) -> list[dict[str, Any]]:
    """When data really disappears, stage by stage (relative to the start of execution when it has not begun)."""
    grace = int(plan.trigger_details.get("soft_delete_grace_days", 0))
    origin = start or plan.execution_started_at

    def at(days: int) -> str | None:
        return (origin + timedelta(days=days)).isoformat() if origin else None

    return [
        {
            "stage": "soft_delete",
            "after_days": 0,
            "at": at(0),
            "what": "mail moves to Recoverable Items (Deletions); files move to the site's recycle bin",
            "recoverable": True,
        },
        {
            "stage": "mail_permanent_delete",
            "after_days": grace,
            "at": at(grace),
            "what": "mail is permanently deleted (Purges); kept by Exchange only while its mailbox is on hold",
            "recoverable": False,
        },
        {
            "stage": "file_recycle_bin_expiry",
            "after_days": RECYCLE_BIN_DAYS,
            "at": at(RECYCLE_BIN_DAYS),
            "what": "files leave the second-stage recycle bin and can no longer be restored",
            "recoverable": False,
        },
    ]


def summary(plan: DeletionPlan, items: Sequence[PlanItem]) -> dict[str, Any]:
    excluded: dict[str, int] = {}
    by_kind: dict[str, dict[str, int]] = {}
    for item in items:
        if item.action == ItemAction.exclude:
            key = item.exclusion_reason or "excluded"
            excluded[key] = excluded.get(key, 0) + 1
        else:
            bucket = by_kind.setdefault(item.kind, {"items": 0, "bytes": 0})
            bucket["items"] += 1
            bucket["bytes"] += item.size
    return {
        "id": plan.id,
        "status": plan.status,
        "trigger": plan.trigger,
        "reason": plan.reason,
        "customer_ids": list(plan.customer_ids),
        "requested_by": plan.requested_by,
        "requested_by_name": plan.requested_by_name,
        "manifest_hash": plan.manifest_hash,
        "manifest_version": plan.manifest_version,
        "items": plan.item_count,
        "bytes": plan.total_bytes,
        "by_kind": by_kind,
        "excluded": plan.excluded_count,
        "exclusions": excluded,
        "required_approvals": plan.required_approvals,
        "cap_reasons": list(plan.cap_reasons),
        "created_at": plan.created_at.isoformat(),
        "expires_at": plan.expires_at.isoformat() if plan.expires_at else None,
        "timeline": timeline(plan),
    }


def export_json(plan: DeletionPlan, items: Sequence[PlanItem]) -> str:
    return json.dumps(
        {"plan": summary(plan, items), "items": [item_row(item) for item in items]}, ensure_ascii=False, indent=2
    )


def export_csv(items: Sequence[PlanItem]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(EXPORT_FIELDS), lineterminator="\n")
    writer.writeheader()
    for item in items:
        row = item_row(item)
        row["customer_ids"] = ";".join(row["customer_ids"])
        row["shared_with"] = ";".join(row["shared_with"])
        writer.writerow(row)
    return buffer.getvalue()

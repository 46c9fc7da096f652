"""The three reasons to delete, recorded as they arrive; the plan itself is built by a task (it needs Graph).

Customer request: who asked, how their identity was checked, through which channel, who took it in.
Company decision: which customers, why, and whether items shared with other customers are explicitly included.
Inactivity: found by the scheduler (jobs.work.evaluate_inactivity).
Each is audited and becomes a "plans.build" task in the same transaction.
"""

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import audit
from app.exceptions import BadRequest, NotFound
from app.models import Customer, DeletionRequest, TriggerKind
from app.plans.context import DeletionContext
from app.plans.service import PlanRequest, Requester, TriggerDisabled
from jobs.tasks import TaskSpec, enqueue

BUILD_KIND = "plans.build"


def build_spec(request: PlanRequest, *, unit: str, dry_run: bool = False) -> TaskSpec:
    """The task that builds the plan; its plan id is fixed now, so a re-run can tell it already did."""
    payload: dict[str, Any] = {
        "plan_id": uuid.uuid4().hex,
        "trigger": request.trigger.value,
        "customer_ids": list(request.customer_ids),
        "requester": {
            "subject": request.requester.subject,
            "name": request.requester.name,
            "is_service": request.requester.is_service,
        },
        "reason": request.reason,
        "details": request.details,
        "include_shared": request.include_shared,
        "dry_run": dry_run,
    }
    return TaskSpec(BUILD_KIND, unit, payload)


async def _known_customers(session: AsyncSession, customer_ids: list[str]) -> None:
    found = set((await session.execute(select(Customer.id).where(Customer.id.in_(customer_ids)))).scalars().all())
    missing = sorted(set(customer_ids) - found)
    if missing:
        raise NotFound(f"unknown customer(s): {', '.join(missing)}")


async def record_customer_request(
    session: AsyncSession,
    ctx: DeletionContext,
    *,
    customer_id: str,
    requester_name: str,
    requester_email: str,
    identity_check: str,
    channel: str,
    received_by: Requester,
) -> tuple[DeletionRequest, TaskSpec]:
    if not ctx.policy.deletion.customer_request.enabled:
        raise TriggerDisabled("the policy disables deletion on customer request")
    await _known_customers(session, [customer_id])
    request = DeletionRequest(
        id=uuid.uuid4().hex,
        customer_id=customer_id,
        requester_name=requester_name.strip(),
        requester_email=requester_email.strip(),
        identity_check=identity_check.strip(),
        channel=channel,
        received_by=received_by.subject,
        received_at=ctx.clock(),
    )
    session.add(request)
    await session.flush()
    await audit.append(
        session,
        actor=received_by.subject,
        action="trigger.customer_request",
        subject=f"customer:{customer_id}",
        payload={"request_id": request.id, "channel": channel, "identity_check": request.identity_check},
    )
    plan_request = PlanRequest(
        trigger=TriggerKind.customer_request,
        customer_ids=(customer_id,),
        requester=received_by,
        reason=f"requested by {request.requester_name} via {channel}",
        details={"request_id": request.id, "channel": channel},
    )
    spec = build_spec(plan_request, unit=f"request:{request.id}")
    await enqueue(session, spec)
    return request, spec


async def record_company_decision(
    session: AsyncSession,
    ctx: DeletionContext,
    *,
    customer_ids: list[str],
    reason: str,
    include_shared: bool,
    dry_run: bool,
    by: Requester,
) -> TaskSpec:
    decision = ctx.policy.deletion.company_decision
    if not decision.enabled:
        raise TriggerDisabled("the policy disables deletion by company decision")
    if decision.require_reason and not reason.strip():
        raise BadRequest("a company decision must state its reason")
    await _known_customers(session, customer_ids)
    plan_request = PlanRequest(
        trigger=TriggerKind.company_decision,
        customer_ids=tuple(sorted(set(customer_ids))),
        requester=by,
        reason=reason.strip(),
        include_shared=include_shared,
    )
    spec = build_spec(plan_request, unit=f"decision:{uuid.uuid4().hex}", dry_run=dry_run)
    await enqueue(session, spec)
    await audit.append(
        session,
        actor=by.subject,
        action="trigger.company_decision",
        subject="customers:" + ",".join(plan_request.customer_ids),
        payload={"reason": plan_request.reason, "include_shared": include_shared, "dry_run": dry_run},
    )
    return spec

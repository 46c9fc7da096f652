"""Approval rules for deletion plans: N distinct humans from the approvers group, none of them the requester.

- An approval is bound to (plan, manifest hash, approver) and counts once, however often it is replayed.
- The approver's identity always comes from a verified token (the Bot Framework channel's for a Teams click,
  Entra's for the web), never from card data; the card's only say is which manifest hash was on screen, and a
  decision on an older manifest is refused.
- A reject cancels the plan. Any manifest change voids every approval (see app.plans.service).
- Pending requests expire after the policy's TTL; so do given approvals, counted up to execution start.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.service import audit
from app.exceptions import Conflict, Forbidden
from app.models import Approval, Decision, DeletionPlan, PlanStatus
from app.notifications.outbox import PLAN_CARD_UPDATE, PLAN_REMINDER, enqueue
from app.plans.context import DeletionContext
from app.plans.service import get_plan

log = logging.getLogger(__name__)


class ApprovalRefused(Forbidden):
    """The caller may not decide on this plan (self-approval, not an approver, a service identity)."""


class StaleManifest(Conflict):
    """The decision names a manifest hash the plan no longer has."""


class PlanClosed(Conflict):
    """The plan is not waiting for decisions (rejected, expired, executing, done)."""


@dataclass(frozen=True, slots=True)
class Approver:
    subject: str  # verified Entra object id
    name: str
    is_service: bool = False


@dataclass(frozen=True, slots=True)
class DecisionResult:
    plan_id: str
    status: str
    approvals: int
    required: int
    counted: bool  # False when this decision was a repeat of one already recorded


def is_listed_approver(ctx: DeletionContext, subject: str) -> bool:
    # An empty approvers group means nobody can approve: deletion fails closed.
    return subject.lower() in {approver.lower() for approver in ctx.settings.approvers}


def _excluded_people(plan: DeletionPlan) -> set[str]:
    return {person.lower() for person in (plan.requested_by, plan.owner) if person}


async def record_refusal(
    sessionmaker: async_sessionmaker[AsyncSession], *, plan_id: str, actor: str, action: str, why: str
) -> None:
    """Audit a refused decision in a transaction of its own: the decision's transaction is rolled back."""
    async with sessionmaker() as session, session.begin():
        await audit.append(session, actor=actor, action=action, subject=f"plan:{plan_id}", payload={"reason": why})


async def _locked_plan(session: AsyncSession, plan_id: str) -> DeletionPlan:
    # Serialises deciders on PostgreSQL (SQLite already serialises writers at BEGIN IMMEDIATE): two approvers
    # clicking at once must not both count "1 of 2".
    await get_plan(session, plan_id)
    result = await session.execute(
        select(DeletionPlan)
        .where(DeletionPlan.id == plan_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return result.scalar_one()


async def valid_approvals(
    session: AsyncSession, ctx: DeletionContext, plan: DeletionPlan, now: datetime
) -> list[Approval]:
    """Approvals that count right now: this manifest, not voided, not expired, by distinct eligible people."""
    result = await session.execute(
        select(Approval)
        .where(
            Approval.plan_id == plan.id,
            Approval.manifest_hash == plan.manifest_hash,
            Approval.decision == Decision.approve,
            Approval.voided_at.is_(None),
        )
        .order_by(Approval.decided_at, Approval.id)
    )
    excluded = _excluded_people(plan)
    counted: dict[str, Approval] = {}
    for approval in result.scalars().all():
        subject = approval.approver.lower()
        if approval.expires_at <= now or subject in excluded or not is_listed_approver(ctx, subject):
            continue
        counted.setdefault(subject, approval)
    return list(counted.values())


async def decide(
    session: AsyncSession,
    ctx: DeletionContext,
    *,
    plan_id: str,
    manifest_hash: str,
    approver: Approver,
    decision: Decision,
    channel: str,
) -> DecisionResult:
    now = ctx.clock()
    plan = await _locked_plan(session, plan_id)
    if approver.is_service:
        raise ApprovalRefused("a service identity cannot approve or reject")
    if not is_listed_approver(ctx, approver.subject):
        raise ApprovalRefused("not in the approvers group")
    if approver.subject.lower() in _excluded_people(plan):
        raise ApprovalRefused("self-approval is not allowed: you requested or own this plan")
    if plan.status == PlanStatus.pending_approval and plan.expires_at is not None and plan.expires_at <= now:
        raise PlanClosed("the approval request expired; nothing will be deleted")
    if plan.status not in (PlanStatus.pending_approval, PlanStatus.approved):
        raise PlanClosed(f"the plan is {plan.status}; it takes no more decisions")
    if manifest_hash != plan.manifest_hash:
        raise StaleManifest("the plan changed since this card was sent; review the new manifest")

    existing = (
        await session.execute(
            select(Approval).where(
                Approval.plan_id == plan.id,
                Approval.manifest_hash == manifest_hash,
                Approval.approver == approver.subject.lower(),
            )
        )
    ).scalar_one_or_none()
    counted = existing is None
    if existing is not None and decision is Decision.reject and existing.decision == Decision.approve:
        # A reject is never swallowed: the person withdraws their approval and the plan is cancelled.
        existing.voided_at = now
        existing.void_reason = "withdrawn: the approver rejected the plan"
        counted = True
        await audit.append(
            session,
            actor=approver.subject,
            action="approval.reject",
            subject=f"plan:{plan.id}",
            payload={"manifest_hash": manifest_hash, "channel": channel, "name": approver.name, "withdrawn": True},
        )
    elif existing is None:
        session.add(
            Approval(
                plan_id=plan.id,
                manifest_hash=manifest_hash,
                approver=approver.subject.lower(),
                approver_name=approver.name,
                decision=decision.value,
                channel=channel,
                decided_at=now,
                expires_at=now + timedelta(hours=ctx.policy.approvals.ttl_hours),
            )
        )
        await session.flush()
        await audit.append(
            session,
            actor=approver.subject,
            action=f"approval.{decision.value}",
            subject=f"plan:{plan.id}",
            payload={"manifest_hash": manifest_hash, "channel": channel, "name": approver.name},
        )
    else:
        await audit.append(
            session,
            actor=approver.subject,
            action="approval.repeated",
            subject=f"plan:{plan.id}",
            payload={"manifest_hash": manifest_hash, "channel": channel, "first_decision": existing.decision},
        )

    if counted and decision is Decision.reject:
        plan.status = PlanStatus.rejected
        plan.decided_at = now
        await audit.append(
            session, actor=approver.subject, action="plan.rejected", subject=f"plan:{plan.id}", payload={}
        )
    valid = await valid_approvals(session, ctx, plan, now)
    if plan.status == PlanStatus.pending_approval and len(valid) >= plan.required_approvals:
        plan.status = PlanStatus.approved
        plan.decided_at = now
        await audit.append(
            session,
            actor=approver.subject,
            action="plan.approved",
            subject=f"plan:{plan.id}",
            payload={
                "manifest_hash": plan.manifest_hash,
                "approvers": [approval.approver for approval in valid],
            },
        )
    await session.flush()
    if counted:
        await _card_update(session, plan, reason=f"{decision.value}:{approver.subject.lower()}")
    return DecisionResult(plan.id, plan.status, len(valid), plan.required_approvals, counted)


async def _card_update(session: AsyncSession, plan: DeletionPlan, *, reason: str) -> None:
    await enqueue(
        session,
        kind=PLAN_CARD_UPDATE,
        key=f"plan:{plan.id}:card-update:v{plan.manifest_version}:{reason}",
        payload={"plan_id": plan.id},
    )


async def expire_plan(session: AsyncSession, plan: DeletionPlan, *, now: datetime, why: str) -> None:
    plan.status = PlanStatus.expired
    plan.decided_at = now
    await audit.append(
        session, actor="service:scheduler", action="plan.expired", subject=f"plan:{plan.id}", payload={"why": why}
    )
    await _card_update(session, plan, reason="expired")


async def expire_due(session: AsyncSession, ctx: DeletionContext) -> list[str]:
    """Expire unanswered plans, and approved plans whose approvals lapsed before execution started."""
    now = ctx.clock()
    expired: list[str] = []
    pending = await session.execute(
        select(DeletionPlan.id).where(
            DeletionPlan.status == PlanStatus.pending_approval, DeletionPlan.expires_at <= now
        )
    )
    for plan_id in pending.scalars().all():
        plan = await _locked_plan(session, plan_id)
        if plan.status == PlanStatus.pending_approval:
            await expire_plan(session, plan, now=now, why="nobody decided within the approval TTL")
            expired.append(plan.id)
    approved = await session.execute(select(DeletionPlan.id).where(DeletionPlan.status == PlanStatus.approved))
    for plan_id in approved.scalars().all():
        plan = await _locked_plan(session, plan_id)
        if (
            plan.status == PlanStatus.approved
            and len(await valid_approvals(session, ctx, plan, now)) < plan.required_approvals
        ):
            await expire_plan(session, plan, now=now, why="approvals expired before execution started")
            expired.append(plan.id)
    return expired


async def remind_due(session: AsyncSession, ctx: DeletionContext) -> list[str]:
    """Remind approvers once after `reminder_after_hours`, escalate once after `escalate_after_hours`."""
    now = ctx.clock()
    rules = ctx.policy.approvals
    touched: list[str] = []
    result = await session.execute(
        select(DeletionPlan).where(
            DeletionPlan.status == PlanStatus.pending_approval, DeletionPlan.submitted_at.is_not(None)
        )
    )
    for plan in result.scalars().all():
        assert plan.submitted_at is not None
        waited = now - plan.submitted_at
        stage: str | None = None
        if plan.escalated_at is None and waited >= timedelta(hours=rules.escalate_after_hours):
            plan.escalated_at = now
            plan.reminded_at = plan.reminded_at or now
            stage = "escalation"
        elif plan.reminded_at is None and waited >= timedelta(hours=rules.reminder_after_hours):
            plan.reminded_at = now
            stage = "reminder"
        if stage is None:
            continue
        await enqueue(
            session,
            kind=PLAN_REMINDER,
            key=f"plan:{plan.id}:v{plan.manifest_version}:{stage}",
            payload={"plan_id": plan.id, "stage": stage},
        )
        await audit.append(
            session, actor="service:scheduler", action=f"plan.{stage}", subject=f"plan:{plan.id}", payload={}
        )
        touched.append(plan.id)
    await session.flush()
    return touched

"""Releasing a demand's data needs two legal approvers: the deletion plans' two-person rules, for disclosures.

- Distinct humans, each holding Steward.Legal and listed in STEWARD_LEGAL_APPROVERS; never a service identity and
  never the person who took the demand in. The approver's identity comes only from the verified token.
- An approval is bound to (demand, scope hash, approver) and counts once however often it is repeated; narrowing
  the scope changes the hash, so earlier approvals never count for the new scope.
- Approvals expire after the policy's TTL and are single-use: the export that used them consumes them.
- A reject by any legal approver voids every approval of the current scope: the release starts over.
"""

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import audit
from app.auth.dependencies import LEGAL, Principal
from app.disclosures.context import DisclosureContext
from app.disclosures.machine import TransitionRefused
from app.disclosures.notify import enqueue_legal_update
from app.disclosures.repository import DemandRepository
from app.disclosures.service import get_demand, valid_approvals
from app.exceptions import Conflict, Forbidden
from app.models import DisclosureApproval, DisclosureDemand, DisclosureStatus


class ApprovalRefused(Forbidden):
    """The caller may not decide on this release (self-approval, not a legal approver, a service identity)."""


class StaleScope(Conflict):
    """The decision names a scope hash the demand no longer has."""


@dataclass(frozen=True, slots=True)
class ApprovalResult:
    demand_id: str
    status: str
    approvals: int
    required: int
    counted: bool  # False when this decision repeated one already recorded


def _counts(approval: DisclosureApproval) -> bool:
    return approval.decision == "approve" and approval.voided_at is None and approval.consumed_at is None


async def _refuse(session: AsyncSession, demand: DisclosureDemand, approver: Principal, why: str) -> ApprovalRefused:
    await audit.append(
        session,
        actor=approver.subject,
        action="disclosure.approval_refused",
        subject=f"disclosure:{demand.id}",
        payload={"reason": why, "name": approver.name},
    )
    return ApprovalRefused(why)


async def decide_export(
    session: AsyncSession,
    ctx: DisclosureContext,
    demand_id: str,
    *,
    scope_hash: str,
    approver: Principal,
    approve: bool,
) -> ApprovalResult:
    now = ctx.clock()
    demand = await get_demand(session, demand_id, lock=True)
    subject = approver.subject.lower()
    if approver.is_service:
        raise await _refuse(session, demand, approver, "a service identity cannot approve a disclosure")
    if LEGAL not in approver.roles or subject not in {a.lower() for a in ctx.settings.legal_approvers}:
        raise await _refuse(session, demand, approver, "not a legal approver")
    if subject == demand.received_by.lower():
        raise await _refuse(session, demand, approver, "self-approval is not allowed: you took this demand in")
    if demand.status != DisclosureStatus.released:
        raise TransitionRefused(f"approvals are taken only for a released demand; this one is {demand.status}")
    if scope_hash != demand.scope_hash:
        await audit.append(
            session,
            actor=approver.subject,
            action="disclosure.approval_stale_scope",
            subject=f"disclosure:{demand.id}",
            payload={"presented_hash": scope_hash, "current_hash": demand.scope_hash},
        )
        raise StaleScope("the scope changed since you reviewed it; review the current scope")

    repository = DemandRepository(session)
    existing = await repository.approval_of(demand.id, scope_hash, subject)
    expires_at = now + timedelta(hours=ctx.policy.approvals.ttl_hours)
    is_new = existing is None
    if existing is None:
        existing = DisclosureApproval(
            demand_id=demand.id,
            scope_hash=scope_hash,
            approver=subject,
            approver_name=approver.name,
            decision="approve" if approve else "reject",
            decided_at=now,
            expires_at=expires_at,
        )
        session.add(existing)
    if approve:
        counted = is_new or not _counts(existing)
        if counted and not is_new:
            # A fresh approval after a reject voided the round: the row is renewed, never duplicated.
            existing.decision, existing.decided_at, existing.expires_at = "approve", now, expires_at
            existing.approver_name, existing.voided_at, existing.void_reason = approver.name, None, None
    else:
        # A reject is never swallowed: every approval of this scope is voided, and the release starts over.
        voided = 0
        for approval in await repository.approvals(demand.id, scope_hash=scope_hash):
            if _counts(approval):
                approval.voided_at = now
                approval.void_reason = f"rejected by {approver.name or subject}"
                voided += 1
        counted = is_new or voided > 0 or existing.decision != "reject"
        existing.decision, existing.decided_at = "reject", now
    await session.flush()
    event = "approve" if approve else "reject_export"
    record = await audit.append(
        session,
        actor=approver.subject,
        action=f"disclosure.{event}" if counted else "disclosure.approval_repeated",
        subject=f"disclosure:{demand.id}",
        payload={"scope_hash": scope_hash, "name": approver.name},
    )
    if counted:
        await enqueue_legal_update(session, demand, event=event, seq=record.seq, now=now)
    valid = await valid_approvals(session, ctx, demand, now)
    return ApprovalResult(demand.id, demand.status, len(valid), ctx.required_approvals, counted)

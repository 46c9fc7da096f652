"""Executing an approved plan, item by item, so that a kill -9 at any point loses nothing and repeats nothing.

Order of work for one item (each numbered step is its own transaction, or a Graph call between them):
1. read the item; skip it if its outcome is already recorded;
2. ask Microsoft 365 whether it is held (eDiscovery, retention label);
3. re-check Steward's own holds and record the intent (`deleting`), or record `held`;
4. call Graph: DELETE with If-Match of the approved eTag (412 = drifted: the item stays);
5. record the outcome, the proof of disposal (unique per item) and the audit entry together.
A restart finds `deleting` items and settles them by reading Graph (a message already in Recoverable Items, a
file already in the recycle bin) instead of sending a second DELETE, which for mail would purge it early.

Soft delete first; permanent deletion only after the policy's grace window, in a second stage.
Only approved plans run, only while enough unexpired approvals stand and the manifest still hashes to the
approved value (re-computed before every chunk).
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.approvals.service import expire_plan, valid_approvals
from app.audit.service import audit
from app.classification.activity import add_months
from app.disposal.graph import GraphDisposal, Outcome
from app.models import (
    DeletionPlan,
    DeletionRequest,
    DisposalRecord,
    ItemAction,
    ItemKind,
    ItemState,
    PlanItem,
    PlanStatus,
    TriggerKind,
)
from app.notifications.outbox import DELETION_CONFIRMATION, enqueue
from app.plans.context import DeletionContext
from app.plans.holds import HoldHit, ItemRef, local_hold_for
from app.plans.service import RECYCLE_BIN_DAYS, compute_hash, manifest_changed

log = logging.getLogger(__name__)

SOFT_PENDING = (ItemState.planned, ItemState.deleting)
PURGE_PENDING = (ItemState.soft_deleted, ItemState.purging)
ACTOR = "service:executor"


class ExecutionRefused(Exception):
    """The plan may not run (not approved, approvals expired, manifest changed)."""


@dataclass
class ExecutionReport:
    plan_id: str
    status: str
    outcomes: dict[str, int] = field(default_factory=dict)


class PlanExecutor:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        ctx: DeletionContext,
        disposal: GraphDisposal,
        *,
        chunk_size: int = 50,
    ) -> None:
        if ctx.external_holds is None:
            raise ValueError("execution re-checks Microsoft 365 holds: external_holds is required")
        self._sessionmaker = sessionmaker
        self._ctx = ctx
        self._external = ctx.external_holds
        self._disposal = disposal
        self.chunk_size = chunk_size

    @property
    def _now(self) -> Callable[[], datetime]:
        return self._ctx.clock

    # Starting ---------------------------------------------------------------------------------------------

    async def start(self, plan_id: str) -> DeletionPlan:
        """approved -> executing, after checking the approvals and the manifest hash. Idempotent for executing."""
        async with self._sessionmaker() as session, session.begin():
            plan = await self._plan(session, plan_id)
            if plan.status in (PlanStatus.executing, PlanStatus.awaiting_purge, PlanStatus.completed):
                return plan
            if plan.status != PlanStatus.approved:
                raise ExecutionRefused(f"plan {plan.id} is {plan.status}, not approved")
            now = self._now()
            refusal: str | None = None
            if await compute_hash(session, plan) != plan.manifest_hash:
                await self._hash_mismatch(session, plan)
                refusal = f"plan {plan.id}: the manifest no longer matches the approved hash"
            else:
                approvals = await valid_approvals(session, self._ctx, plan, now)
                if len(approvals) < plan.required_approvals:
                    await expire_plan(session, plan, now=now, why="approvals expired before execution started")
                    refusal = f"plan {plan.id}: only {len(approvals)} valid approvals"
            if refusal is None:
                plan.status = PlanStatus.executing
                plan.execution_started_at = now
                plan.trigger_details = {
                    **plan.trigger_details,
                    "approved_by": [
                        {
                            "subject": a.approver,
                            "name": a.approver_name,
                            "at": a.decided_at.isoformat(),
                            "via": a.channel,
                        }
                        for a in approvals
                    ],
                }
                await audit.append(
                    session,
                    actor=ACTOR,
                    action="execution.started",
                    subject=f"plan:{plan.id}",
                    payload={"manifest_hash": plan.manifest_hash, "approvers": [a.approver for a in approvals]},
                )
        # Raised after the commit: the refusal (new manifest version, voided approvals, expiry) is kept.
        if refusal is not None:
            raise ExecutionRefused(refusal)
        return plan

    async def _hash_mismatch(self, session: AsyncSession, plan: DeletionPlan) -> None:
        approved = plan.manifest_hash
        await manifest_changed(
            session, self._ctx, plan, why="the stored manifest no longer matches its approved hash", actor=ACTOR
        )
        await audit.append(
            session,
            actor=ACTOR,
            action="execution.refused_hash_mismatch",
            subject=f"plan:{plan.id}",
            payload={"approved_hash": approved, "current_hash": plan.manifest_hash},
        )

    async def _plan(self, session: AsyncSession, plan_id: str) -> DeletionPlan:
        plan = await session.get(DeletionPlan, plan_id, populate_existing=True)
        if plan is None:
            raise ExecutionRefused(f"no plan {plan_id}")
        return plan

    async def chunks(self, plan_id: str) -> list[tuple[int, int]]:
        """Ordinal ranges of `chunk_size` items: the units of work (tasks) of one plan."""
        async with self._sessionmaker() as session:
            last = (
                await session.execute(select(func.max(PlanItem.ordinal)).where(PlanItem.plan_id == plan_id))
            ).scalar_one()
        return [(first, min(first + self.chunk_size - 1, last)) for first in range(1, (last or 0) + 1, self.chunk_size)]

    # Soft stage -------------------------------------------------------------------------------------------

    async def _chunk_allowed(self, plan_id: str, *, stage: PlanStatus) -> bool:
        async with self._sessionmaker() as session, session.begin():
            plan = await self._plan(session, plan_id)
            if plan.status != stage:
                return False
            if await compute_hash(session, plan) != plan.manifest_hash:
                await self._hash_mismatch(session, plan)
                return False
        await self._external.refresh()
        return True

    async def run_chunk(self, plan_id: str, first: int, last: int) -> None:
        """Soft-delete the planned items with ordinals in [first, last]."""
        if not await self._chunk_allowed(plan_id, stage=PlanStatus.executing):
            return
        for item_id in await self._item_ids(plan_id, first, last, SOFT_PENDING):
            await self._soft_delete(plan_id, item_id)

    async def _item_ids(self, plan_id: str, first: int, last: int, states: tuple[ItemState, ...]) -> list[int]:
        async with self._sessionmaker() as session:
            result = await session.execute(
                select(PlanItem.id)
                .where(
                    PlanItem.plan_id == plan_id,
                    PlanItem.ordinal >= first,
                    PlanItem.ordinal <= last,
                    PlanItem.action == ItemAction.delete,
                    PlanItem.state.in_([state.value for state in states]),
                )
                .order_by(PlanItem.ordinal)
            )
            return list(result.scalars().all())

    async def _soft_delete(self, plan_id: str, item_id: int) -> None:
        async with self._sessionmaker() as session:
            item = await session.get(PlanItem, item_id)
            assert item is not None
            ref = ItemRef(item.kind, item.container_id, item.item_id, frozenset(item.customer_ids))
        external = await self._external.check(ref)
        async with self._sessionmaker() as session, session.begin():
            plan = await self._plan(session, plan_id)
            item = await session.get(PlanItem, item_id, populate_existing=True)
            assert item is not None
            if plan.status != PlanStatus.executing or item.state not in SOFT_PENDING:
                return
            hit = await local_hold_for(session, ref) or external
            if hit is not None:
                await self._record(session, plan, item, Outcome(ItemState.held.value, detail=_hold_text(hit)))
                return
            item.state = ItemState.deleting
            item.attempts += 1
            resumed = item.attempts > 1
            kind, container, graph_id, etag = item.kind, item.container_id, item.item_id, item.etag
        if kind == ItemKind.message:
            outcome = await self._disposal.soft_delete_message(container, graph_id, etag)
        else:
            outcome = await self._disposal.soft_delete_file(container, graph_id, etag, resumed=resumed)
        async with self._sessionmaker() as session, session.begin():
            plan = await self._plan(session, plan_id)
            item = await session.get(PlanItem, item_id, populate_existing=True)
            assert item is not None
            if item.state == ItemState.deleting:
                await self._record(session, plan, item, outcome)

    async def _record(self, session: AsyncSession, plan: DeletionPlan, item: PlanItem, outcome: Outcome) -> None:
        """Write the item's outcome, its proof of disposal and the audit entry in one transaction."""
        now = self._now()
        item.state = outcome.state
        item.last_error = outcome.detail if outcome.state == ItemState.failed else None
        record = (
            await session.execute(select(DisposalRecord).where(DisposalRecord.plan_item_id == item.id))
        ).scalar_one_or_none()
        if outcome.state == ItemState.soft_deleted:
            item.soft_deleted_at = now
            grace = timedelta(days=int(plan.trigger_details.get("soft_delete_grace_days", 0)))
            item.purge_due_at = now + grace
        if record is None:
            record = self._new_record(plan, item, now)
            session.add(record)
        record.outcome = outcome.state
        record.detail = outcome.detail
        if outcome.state == ItemState.soft_deleted:
            record.soft_deleted_at = now
            record.soft_request_id = outcome.request_id
            if item.kind == ItemKind.message:
                record.purge_mode, record.purge_due_at = "permanent_delete", item.purge_due_at
            else:
                record.purge_mode, record.purge_due_at = "recycle_bin_expiry", now + timedelta(days=RECYCLE_BIN_DAYS)
        elif outcome.state == ItemState.purged:
            item.purged_at = now
            record.purged_at = now if record.purge_mode == "permanent_delete" else None
            record.purge_request_id = outcome.request_id
        await session.flush()
        await audit.append(
            session,
            actor=ACTOR,
            action=f"disposal.{outcome.state}",
            subject=f"plan:{plan.id}",
            payload={
                "item": item.ordinal,
                "kind": item.kind,
                "request_id": outcome.request_id,
                "detail": outcome.detail,
            },
        )

    def _new_record(self, plan: DeletionPlan, item: PlanItem, now: datetime) -> DisposalRecord:
        years = self._ctx.policy.disposal.proof_retention_years
        return DisposalRecord(
            plan_id=plan.id,
            plan_item_id=item.id,
            tenant_id=plan.tenant_id,
            customer_ids=list(item.customer_ids),
            kind=item.kind,
            container_id=item.container_id,
            item_id=item.item_id,
            name_hash=item.name_hash,
            size=item.size,
            manifest_hash=plan.manifest_hash,
            trigger=plan.trigger,
            requested_by=plan.requested_by,
            requested_by_name=plan.requested_by_name,
            approvers=list(plan.trigger_details.get("approved_by", [])),
            outcome=ItemState.planned.value,
            recorded_at=now,
            retain_until=add_months(now, 12 * years),
        )

    async def finish_soft_stage(self, plan_id: str) -> str:
        """executing -> awaiting_purge (something was soft-deleted) or completed, once no item is pending."""
        async with self._sessionmaker() as session, session.begin():
            plan = await self._plan(session, plan_id)
            if plan.status != PlanStatus.executing:
                return plan.status
            if await self._count(session, plan_id, SOFT_PENDING):
                return plan.status
            now = self._now()
            plan.soft_completed_at = now
            if await self._count(session, plan_id, PURGE_PENDING):
                plan.status = PlanStatus.awaiting_purge
                plan.purge_due_at = now + timedelta(days=int(plan.trigger_details.get("soft_delete_grace_days", 0)))
            else:
                await self._complete(session, plan, now)
            await audit.append(
                session,
                actor=ACTOR,
                action="execution.soft_stage_done",
                subject=f"plan:{plan.id}",
                payload={"status": plan.status, "outcomes": await self._outcomes(session, plan_id)},
            )
            return plan.status

    # Permanent stage ----------------------------------------------------------------------------------------

    async def purge_chunk(self, plan_id: str, first: int, last: int) -> None:
        if not await self._chunk_allowed(plan_id, stage=PlanStatus.awaiting_purge):
            return
        for item_id in await self._item_ids(plan_id, first, last, PURGE_PENDING):
            await self._purge(plan_id, item_id)

    async def _purge(self, plan_id: str, item_id: int) -> None:
        async with self._sessionmaker() as session:
            item = await session.get(PlanItem, item_id)
            assert item is not None
            if item.purge_due_at is not None and item.purge_due_at > self._now():
                return
            ref = ItemRef(item.kind, item.container_id, item.item_id, frozenset(item.customer_ids))
        external = await self._external.check(ref) if ref.kind == ItemKind.message else None
        async with self._sessionmaker() as session, session.begin():
            plan = await self._plan(session, plan_id)
            item = await session.get(PlanItem, item_id, populate_existing=True)
            assert item is not None
            if plan.status != PlanStatus.awaiting_purge or item.state not in PURGE_PENDING:
                return
            hit = await local_hold_for(session, ref) or external
            if hit is not None:
                # Already soft-deleted: it stays recoverable for as long as the hold lasts.
                await self._record(session, plan, item, Outcome(ItemState.held.value, detail=_hold_text(hit)))
                return
            item.state = ItemState.purging
            kind, container, graph_id = item.kind, item.container_id, item.item_id
        if kind == ItemKind.message:
            outcome = await self._disposal.purge_message(container, graph_id)
        elif await self._disposal.file_still_deleted(container, graph_id):
            outcome = Outcome(ItemState.purged.value, detail="left to the recycle bin's expiry")
        else:
            outcome = Outcome(ItemState.failed.value, detail="restored from the recycle bin after deletion")
        async with self._sessionmaker() as session, session.begin():
            plan = await self._plan(session, plan_id)
            item = await session.get(PlanItem, item_id, populate_existing=True)
            assert item is not None
            if item.state == ItemState.purging:
                await self._record(session, plan, item, outcome)

    async def finish_purge_stage(self, plan_id: str) -> str:
        async with self._sessionmaker() as session, session.begin():
            plan = await self._plan(session, plan_id)
            if plan.status != PlanStatus.awaiting_purge or await self._count(session, plan_id, PURGE_PENDING):
                return plan.status
            await self._complete(session, plan, self._now())
            await audit.append(
                session,
                actor=ACTOR,
                action="execution.completed",
                subject=f"plan:{plan.id}",
                payload={"outcomes": await self._outcomes(session, plan_id)},
            )
            return plan.status

    async def _complete(self, session: AsyncSession, plan: DeletionPlan, now: datetime) -> None:
        plan.status = PlanStatus.completed
        plan.completed_at = now
        if (
            plan.trigger != TriggerKind.customer_request
            or not self._ctx.policy.deletion.customer_request.send_confirmation
        ):
            return
        request_id = plan.trigger_details.get("request_id")
        request = await session.get(DeletionRequest, str(request_id)) if request_id else None
        if request is None:
            return
        outcomes = await self._outcomes(session, plan.id)
        deleted = sum(outcomes.get(state, 0) for state in (ItemState.purged, ItemState.already_absent))
        await enqueue(
            session,
            kind=DELETION_CONFIRMATION,
            key=f"plan:{plan.id}:confirmation",
            payload={
                "plan_id": plan.id,
                "to": [request.requester_email],
                "deleted_at": now.date().isoformat(),
                "item_count": deleted,
                "contact_email": self._ctx.settings.notification_mailbox,
            },
        )

    async def _count(self, session: AsyncSession, plan_id: str, states: tuple[ItemState, ...]) -> int:
        result = await session.execute(
            select(func.count())
            .select_from(PlanItem)
            .where(
                PlanItem.plan_id == plan_id,
                PlanItem.action == ItemAction.delete,
                PlanItem.state.in_([state.value for state in states]),
            )
        )
        return int(result.scalar_one())

    async def _outcomes(self, session: AsyncSession, plan_id: str) -> dict[str, int]:
        result = await session.execute(
            select(PlanItem.state, func.count()).where(PlanItem.plan_id == plan_id).group_by(PlanItem.state)
        )
        return {str(state): int(count) for state, count in result.all()}

    # Everything at once (CLI, tests) ------------------------------------------------------------------------

    async def run(self, plan_id: str) -> ExecutionReport:
        """Start (or resume) and run every stage that is due now."""
        await self.start(plan_id)
        for first, last in await self.chunks(plan_id):
            await self.run_chunk(plan_id, first, last)
        status = await self.finish_soft_stage(plan_id)
        if status == PlanStatus.awaiting_purge:
            for first, last in await self.chunks(plan_id):
                await self.purge_chunk(plan_id, first, last)
            status = await self.finish_purge_stage(plan_id)
        async with self._sessionmaker() as session:
            return ExecutionReport(plan_id, status, await self._outcomes(session, plan_id))


def _hold_text(hit: HoldHit) -> str:
    return f"{hit.reason}: {hit.detail}"

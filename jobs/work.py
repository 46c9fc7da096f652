"""Steward's deletion jobs and the tasks they fan out to.

Scheduled jobs decide what is due and enqueue tasks; tasks do the work, one unit each (a plan to build, a
chunk of a plan to execute or purge). Every task handler is idempotent: it reads what is done from the store.
"""

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from app.approvals.service import expire_due, remind_due
from app.audit.checkpoints import load_signing_key, write_checkpoint
from app.audit.service import audit
from app.classification.activity import ActivityEvent, activity_status
from app.models import Customer, DeletionPlan, DeletionRequest, ItemAction, ItemState, PlanItem, PlanStatus, TriggerKind
from app.plans.service import OPEN_STATUSES, PlanRequest, Requester, build_plan
from app.plans.triggers import BUILD_KIND, build_spec
from jobs.runtime import Runtime
from jobs.tasks import TaskRegistry, TaskRunner, TaskSpec, enqueue

log = logging.getLogger(__name__)

BUILD = BUILD_KIND
EXECUTE = "plans.execute"
PURGE = "plans.purge"
SCHEDULER = Requester("service:scheduler", "Steward scheduler", is_service=True)
# A rejected or expired inactivity plan is not proposed again for this long.
RETRY_AFTER_CLOSED = timedelta(days=30)

registry = TaskRegistry()


# Tasks --------------------------------------------------------------------------------------------------


@registry.register(BUILD)
async def build_task(runtime: Runtime, payload: dict[str, Any]) -> None:
    plan_id = str(payload["plan_id"])
    async with runtime.sessionmaker() as session, session.begin():
        if await session.get(DeletionPlan, plan_id) is not None:
            return  # built by an earlier run of this task
        requester = payload["requester"]
        request = PlanRequest(
            trigger=TriggerKind(payload["trigger"]),
            customer_ids=tuple(payload["customer_ids"]),
            requester=Requester(requester["subject"], requester["name"], bool(requester.get("is_service"))),
            reason=str(payload.get("reason", "")),
            details=dict(payload.get("details", {})),
            include_shared=bool(payload.get("include_shared", False)),
        )
        dry_run = bool(payload.get("dry_run", False))
        plan = await build_plan(session, runtime.context(), request, dry_run=dry_run, plan_id=plan_id)
        request_id = request.details.get("request_id")
        if request_id:
            deletion_request = await session.get(DeletionRequest, str(request_id))
            if deletion_request is not None:
                deletion_request.plan_id = plan.id


@registry.register(EXECUTE)
async def execute_task(runtime: Runtime, payload: dict[str, Any]) -> None:
    await runtime.executor().run_chunk(str(payload["plan_id"]), int(payload["first"]), int(payload["last"]))


@registry.register(PURGE)
async def purge_task(runtime: Runtime, payload: dict[str, Any]) -> None:
    await runtime.executor().purge_chunk(str(payload["plan_id"]), int(payload["first"]), int(payload["last"]))


# Jobs ---------------------------------------------------------------------------------------------------


async def evaluate_inactivity(runtime: Runtime) -> None:
    """Daily: customers inactive past the policy's period (or whose service ended) + grace get a plan built."""
    now = runtime.context().clock()
    async with runtime.sessionmaker() as session, session.begin():
        customers = (await session.execute(select(Customer))).scalars().all()
        plans = (
            (await session.execute(select(DeletionPlan).where(DeletionPlan.trigger == TriggerKind.inactivity)))
            .scalars()
            .all()
        )
        busy: set[str] = set()
        for plan in plans:
            if plan.status in OPEN_STATUSES or plan.status == PlanStatus.completed:
                busy.update(plan.customer_ids)
            elif plan.status != PlanStatus.dry_run and plan.created_at > now - RETRY_AFTER_CLOSED:
                busy.update(plan.customer_ids)
        for customer in customers:
            if customer.id in busy:
                continue
            last = (
                ActivityEvent(customer.id, "imported", customer.last_activity_at) if customer.last_activity_at else None
            )
            status = activity_status(
                customer.id,
                last=last,
                now=now,
                policy=runtime.policy,
                service_ended_at=customer.service_ended_at,
                registered_at=customer.created_at,
            )
            if not status.deletion_due:
                continue
            due = status.deletion_due_at.date().isoformat() if status.deletion_due_at else "?"
            request = PlanRequest(
                trigger=TriggerKind.inactivity,
                customer_ids=(customer.id,),
                requester=SCHEDULER,
                reason=f"{status.deletion_trigger}: deletion due since {due}",
                details={"activity_state": status.state, "inactive_days": status.inactive_days},
            )
            if await enqueue(session, build_spec(request, unit=f"inactivity:{customer.id}"), rearm=True):
                await audit.append(
                    session,
                    actor=SCHEDULER.subject,
                    action="trigger.inactivity",
                    subject=f"customer:{customer.id}",
                    payload={
                        "state": status.state,
                        "due_at": status.deletion_due_at.isoformat() if status.deletion_due_at else None,
                    },
                )


async def build_plans(runtime: Runtime) -> None:
    report = await TaskRunner(runtime.sessionmaker, registry).run_ready(runtime, kinds=[BUILD])
    for key in report.failed:
        log.error("building a plan failed for good: %s", key)


async def relay_outbox(runtime: Runtime) -> None:
    await runtime.relay().run_once()


async def expire_approvals(runtime: Runtime) -> None:
    async with runtime.sessionmaker() as session, session.begin():
        await expire_due(session, runtime.context())
        await remind_due(session, runtime.context())


async def _pending_chunks(
    runtime: Runtime, plan_id: str, states: tuple[ItemState, ...], size: int
) -> list[tuple[int, int]]:
    async with runtime.sessionmaker() as session:
        ordinals = (
            (
                await session.execute(
                    select(PlanItem.ordinal).where(
                        PlanItem.plan_id == plan_id,
                        PlanItem.action == ItemAction.delete,
                        PlanItem.state.in_([state.value for state in states]),
                    )
                )
            )
            .scalars()
            .all()
        )
    starts = sorted({(ordinal - 1) // size * size + 1 for ordinal in ordinals})
    return [(first, first + size - 1) for first in starts]


async def schedule_execution(runtime: Runtime) -> None:
    """Start approved plans, (re)arm the chunks that still have work, and close stages that are done."""
    executor = runtime.executor()
    async with runtime.sessionmaker() as session:
        plans = (
            await session.execute(
                select(DeletionPlan.id, DeletionPlan.status, DeletionPlan.purge_due_at).where(
                    DeletionPlan.status.in_([PlanStatus.approved, PlanStatus.executing, PlanStatus.awaiting_purge])
                )
            )
        ).all()
    now = runtime.context().clock()
    for plan_id, status, purge_due_at in plans:
        if status == PlanStatus.approved:
            try:
                await executor.start(plan_id)
            except Exception as exc:  # refused (expired, manifest changed): recorded by the executor, not fatal
                log.warning("plan %s not started: %s", plan_id, exc)
                continue
            status = PlanStatus.executing
        if status == PlanStatus.executing:
            kind, states = EXECUTE, (ItemState.planned, ItemState.deleting)
        elif purge_due_at is not None and purge_due_at <= now:
            kind, states = PURGE, (ItemState.soft_deleted, ItemState.purging)
        else:
            continue
        chunks = await _pending_chunks(runtime, plan_id, states, executor.chunk_size)
        async with runtime.sessionmaker() as session, session.begin():
            for first, last in chunks:
                spec = TaskSpec(
                    kind, f"plan:{plan_id}:chunk:{first}", {"plan_id": plan_id, "first": first, "last": last}
                )
                await enqueue(session, spec, rearm=True)


async def execute_plans(runtime: Runtime) -> None:
    await schedule_execution(runtime)
    await TaskRunner(runtime.sessionmaker, registry).run_ready(runtime, kinds=[EXECUTE, PURGE], limit=50)
    executor = runtime.executor()
    async with runtime.sessionmaker() as session:
        running = (
            await session.execute(
                select(DeletionPlan.id, DeletionPlan.status).where(
                    DeletionPlan.status.in_([PlanStatus.executing, PlanStatus.awaiting_purge])
                )
            )
        ).all()
    for plan_id, status in running:
        if status == PlanStatus.executing:
            await executor.finish_soft_stage(plan_id)
        else:
            await executor.finish_purge_stage(plan_id)


async def audit_checkpoint(runtime: Runtime) -> None:
    if runtime.settings.audit_signing_key_path is None:
        return
    key = load_signing_key(runtime.settings.audit_signing_key_path)
    async with runtime.sessionmaker() as session, session.begin():
        await write_checkpoint(session, key)


JOBS: dict[str, Callable[[Runtime], Awaitable[None]]] = {
    "evaluate_inactivity": evaluate_inactivity,
    "build_plans": build_plans,
    "relay_outbox": relay_outbox,
    "execute_plans": execute_plans,
    "expire_approvals": expire_approvals,
    "audit_checkpoint": audit_checkpoint,
}

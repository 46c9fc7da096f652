"""The approval rules: N distinct listed humans, never the requester or owner, single use, TTL, reject, voiding."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from app.approvals.service import (
    ApprovalRefused,
    Approver,
    PlanClosed,
    StaleManifest,
    decide,
    expire_due,
    remind_due,
    valid_approvals,
)
from app.models import Approval, Decision, DeletionPlan, OutboxMessage, PlanStatus, TriggerKind
from app.plans.context import DeletionContext
from app.plans.service import PlanRequest, Requester, build_plan
from tests.app.plans.conftest import APPROVER_A, APPROVER_B, APPROVER_C, REQUESTER, Clock
from tests.app.plans.support import Store, mapped

A = Approver(APPROVER_A, "An")
B = Approver(APPROVER_B, "Bình")
C = Approver(APPROVER_C, "Chi")


async def new_plan(store: Store, ctx: DeletionContext, requester: Requester | None = None) -> DeletionPlan:
    request = PlanRequest(
        TriggerKind.company_decision,
        ("C1",),
        requester or Requester(REQUESTER, "Privacy Officer"),
        reason="no longer needed",
    )
    async with store.sessionmaker() as session, session.begin():
        return await build_plan(session, ctx, request, dry_run=False)


async def vote(store: Store, ctx: DeletionContext, plan: DeletionPlan, who: Approver, **kwargs: Any) -> Any:
    async with store.sessionmaker() as session, session.begin():
        return await decide(
            session,
            ctx,
            plan_id=plan.id,
            manifest_hash=kwargs.pop("manifest_hash", plan.manifest_hash),
            approver=who,
            decision=kwargs.pop("decision", Decision.approve),
            channel="teams",
        )


async def status_of(store: Store, plan: DeletionPlan) -> str:
    async with store.sessionmaker() as session:
        current = await session.get(DeletionPlan, plan.id)
        assert current is not None
        return current.status


@pytest.fixture
def ctx(make_context: Callable[..., DeletionContext]) -> DeletionContext:
    return make_context(items=[mapped("f1", "C1"), mapped("m1", "C1", kind="message")])


async def test_two_distinct_approvers_approve(store: Store, ctx: DeletionContext) -> None:
    plan = await new_plan(store, ctx)

    first = await vote(store, ctx, plan, A)
    second = await vote(store, ctx, plan, B)

    assert (first.status, first.approvals, first.required) == ("pending_approval", 1, 2)
    assert (second.status, second.approvals) == ("approved", 2)


async def test_self_approval_is_refused_even_for_a_listed_approver(store: Store, ctx: DeletionContext) -> None:
    plan = await new_plan(store, ctx)

    with pytest.raises(ApprovalRefused, match="self-approval"):
        await vote(store, ctx, plan, Approver(REQUESTER, "Privacy Officer"))
    await vote(store, ctx, plan, A)

    assert await status_of(store, plan) == PlanStatus.pending_approval
    async with store.sessionmaker() as session:
        assert [a.approver for a in (await session.execute(select(Approval))).scalars()] == [APPROVER_A]


async def test_the_owner_of_an_automated_plan_cannot_approve_and_no_service_identity_can(
    store: Store, make_context: Callable[..., DeletionContext]
) -> None:
    ctx = make_context(items=[mapped("f1", "C1")], automation_owner=APPROVER_C)
    plan = await new_plan(store, ctx, Requester("service:scheduler", "scheduler", is_service=True))

    with pytest.raises(ApprovalRefused, match="self-approval"):
        await vote(store, ctx, plan, C)
    with pytest.raises(ApprovalRefused, match="service identity"):
        await vote(store, ctx, plan, Approver(APPROVER_A, "daemon", is_service=True))
    with pytest.raises(ApprovalRefused, match="approvers group"):
        await vote(store, ctx, plan, Approver("99999999-0000-4000-8000-000000000000", "Mallory"))
    assert await status_of(store, plan) == PlanStatus.pending_approval


async def test_the_same_approver_twice_counts_once(store: Store, ctx: DeletionContext) -> None:
    plan = await new_plan(store, ctx)

    first = await vote(store, ctx, plan, A)
    again = await vote(store, ctx, plan, Approver(APPROVER_A.upper(), "An (other device)"))

    assert (first.counted, again.counted) == (True, False)
    assert (again.status, again.approvals) == ("pending_approval", 1)
    async with store.sessionmaker() as session:
        assert len((await session.execute(select(Approval))).scalars().all()) == 1


async def test_an_expired_approval_is_void(store: Store, ctx: DeletionContext, clock: Clock) -> None:
    plan = await new_plan(store, ctx)
    await vote(store, ctx, plan, A)
    clock.now += timedelta(hours=ctx.policy.approvals.ttl_hours - 1)
    # The plan itself is still open (submitted just now in clock terms), but A's approval lapses first.
    async with store.sessionmaker() as session, session.begin():
        current = await session.get(DeletionPlan, plan.id)
        assert current is not None
        current.expires_at = clock.now + timedelta(hours=10)
    clock.now += timedelta(hours=2)

    result = await vote(store, ctx, plan, B)

    assert (result.status, result.approvals) == ("pending_approval", 1)
    async with store.sessionmaker() as session:
        current = await session.get(DeletionPlan, plan.id)
        assert current is not None
        assert [a.approver for a in await valid_approvals(session, ctx, current, clock.now)] == [APPROVER_B]


async def test_unanswered_plans_expire_and_take_no_more_decisions(
    store: Store, ctx: DeletionContext, clock: Clock
) -> None:
    plan = await new_plan(store, ctx)
    clock.now += timedelta(hours=ctx.policy.approvals.ttl_hours + 1)

    with pytest.raises(PlanClosed, match="expired"):
        await vote(store, ctx, plan, A)
    async with store.sessionmaker() as session, session.begin():
        assert await expire_due(session, ctx) == [plan.id]
    assert await status_of(store, plan) == PlanStatus.expired


async def test_approved_plans_whose_approvals_lapse_before_execution_expire(
    store: Store, ctx: DeletionContext, clock: Clock
) -> None:
    plan = await new_plan(store, ctx)
    await vote(store, ctx, plan, A)
    await vote(store, ctx, plan, B)
    clock.now += timedelta(hours=ctx.policy.approvals.ttl_hours + 1)

    async with store.sessionmaker() as session, session.begin():
        assert await expire_due(session, ctx) == [plan.id]


async def test_a_reject_cancels_even_after_approval_and_even_from_an_earlier_approver(
    store: Store, ctx: DeletionContext
) -> None:
    plan = await new_plan(store, ctx)
    await vote(store, ctx, plan, A)
    await vote(store, ctx, plan, B)

    rejected = await vote(store, ctx, plan, A, decision=Decision.reject)

    assert rejected.status == PlanStatus.rejected
    with pytest.raises(PlanClosed):
        await vote(store, ctx, plan, C)


async def test_a_decision_on_an_older_manifest_is_refused(store: Store, ctx: DeletionContext) -> None:
    plan = await new_plan(store, ctx)

    with pytest.raises(StaleManifest):
        await vote(store, ctx, plan, A, manifest_hash="0" * 64)
    async with store.sessionmaker() as session:
        assert (await session.execute(select(Approval))).scalars().all() == []


async def test_reminder_then_escalation_are_queued_once(store: Store, ctx: DeletionContext, clock: Clock) -> None:
    plan = await new_plan(store, ctx)
    rules = ctx.policy.approvals

    async def remind() -> list[str]:
        async with store.sessionmaker() as session, session.begin():
            return await remind_due(session, ctx)

    assert await remind() == []
    clock.now += timedelta(hours=rules.reminder_after_hours)
    assert await remind() == [plan.id]
    assert await remind() == []
    clock.now += timedelta(hours=rules.escalate_after_hours - rules.reminder_after_hours)
    assert await remind() == [plan.id]
    async with store.sessionmaker() as session:
        keys = (await session.execute(select(OutboxMessage.key).where(OutboxMessage.kind == "plan.reminder"))).scalars()
        assert sorted(keys) == [f"plan:{plan.id}:v1:escalation", f"plan:{plan.id}:v1:reminder"]

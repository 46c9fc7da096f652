"""Execution against the local tenant: exactly the manifest, soft then permanent, drift, late holds, proofs."""

from typing import Any

import pytest
from sqlalchemy import func, select

from app.approvals.service import Approver, decide
from app.audit.checkpoints import verify_audit
from app.disposal.executor import ExecutionRefused
from app.models import (
    Decision,
    DeletionPlan,
    DisposalRecord,
    HoldSource,
    ItemHold,
    OutboxMessage,
    PlanItem,
    PlanStatus,
    TriggerKind,
)
from app.notifications.mail import GraphMailer
from app.notifications.relay import Relay
from app.plans.service import PlanRequest, Requester, build_plan, plan_items
from app.plans.triggers import record_customer_request
from emulator.state import Tenant
from jobs.work import build_task
from tests.app.plans.support import LiveDeletion, approvers, customer_by_profile

SCHEDULER = Requester("service:scheduler", "Steward scheduler", is_service=True)


def message_state(tenant: Tenant, user_id: str, message_id: str) -> str:
    """Where the message is: a folder's well-known name, or 'gone' once purged."""
    with tenant.lock:
        message = tenant.mail.mailboxes[user_id].resolve(message_id)
        if message is None:
            return "gone"
        return message.folder.well_known or message.folder.display_name


def file_state(tenant: Tenant, item_id: str) -> str:
    with tenant.lock:
        item = tenant.files.items[item_id]
        if item.alive:
            return "alive"
        return "purged" if item.purged else "recycle_bin"


def state_of(tenant: Tenant, item: PlanItem) -> str:
    if item.kind == "message":
        return message_state(tenant, item.container_id, item.item_id)
    return file_state(tenant, item.item_id)


async def approved_plan(
    deletion: LiveDeletion, customer: str, *, trigger: TriggerKind = TriggerKind.inactivity
) -> DeletionPlan:
    ctx = deletion.runtime.context()
    async with deletion.store.sessionmaker() as session, session.begin():
        plan = await build_plan(
            session, ctx, PlanRequest(trigger, (customer,), SCHEDULER, reason="inactive"), dry_run=False
        )
    for person in approvers(deletion.tenant)[:2]:
        async with deletion.store.sessionmaker() as session, session.begin():
            await decide(
                session,
                ctx,
                plan_id=plan.id,
                manifest_hash=plan.manifest_hash,
                approver=Approver(person.id, person.display_name),
                decision=Decision.approve,
                channel="web",
            )
    return plan


async def items_of(deletion: LiveDeletion, plan_id: str) -> list[PlanItem]:
    async with deletion.store.sessionmaker() as session:
        return await plan_items(session, plan_id)


async def records_of(deletion: LiveDeletion, plan_id: str) -> list[DisposalRecord]:
    async with deletion.store.sessionmaker() as session:
        result = await session.execute(select(DisposalRecord).where(DisposalRecord.plan_id == plan_id))
        return list(result.scalars().all())


def with_grace(deletion: LiveDeletion, days: int) -> None:
    policy = deletion.runtime.policy
    deletion.runtime.policy = policy.model_copy(
        update={"disposal": policy.disposal.model_copy(update={"soft_delete_grace_days": days})}
    )


async def test_soft_delete_first_then_permanent_after_the_grace_window(deletion: LiveDeletion) -> None:
    tenant = deletion.tenant
    customer = customer_by_profile(tenant, "silent")
    with_grace(deletion, 0)
    plan = await approved_plan(deletion, customer)
    items = await items_of(deletion, plan.id)
    doomed = [item for item in items if item.action == "delete"]
    kept = [item for item in items if item.action == "exclude"]
    assert doomed
    assert {item.kind for item in doomed} == {"message", "file"}
    before = {item.item_id: state_of(tenant, item) for item in kept}

    executor = deletion.runtime.executor()
    await executor.start(plan.id)
    for first, last in await executor.chunks(plan.id):
        await executor.run_chunk(plan.id, first, last)
    soft = {item.item_id: state_of(tenant, item) for item in doomed}
    assert await executor.finish_soft_stage(plan.id) == PlanStatus.awaiting_purge
    report = await executor.run(plan.id)

    assert {
        state for item_id, state in soft.items() if any(i.item_id == item_id and i.kind == "message" for i in doomed)
    } == {"recoverableitemsdeletions"}
    assert {
        state for item_id, state in soft.items() if any(i.item_id == item_id and i.kind == "file" for i in doomed)
    } == {"recycle_bin"}
    assert report.status == PlanStatus.completed
    after = {item.item_id: state_of(tenant, item) for item in doomed}
    assert all(after[i.item_id] == ("gone" if i.kind == "message" else "recycle_bin") for i in doomed)
    assert {item.item_id: state_of(tenant, item) for item in kept} == before
    records = await records_of(deletion, plan.id)
    assert sorted(r.plan_item_id for r in records) == sorted(item.id for item in doomed)
    assert {r.outcome for r in records} == {"purged"}
    for record in records:
        assert record.manifest_hash == plan.manifest_hash
        assert [a["subject"] for a in record.approvers] == [p.id.lower() for p in approvers(tenant)[:2]]
        assert record.soft_request_id
        assert (record.purge_mode, bool(record.purge_request_id)) == (
            ("permanent_delete", True) if record.kind == "message" else ("recycle_bin_expiry", False)
        )
        assert record.retain_until.year == record.recorded_at.year + 7
    async with deletion.store.sessionmaker() as session:
        assert (await verify_audit(session, None)).intact


async def test_etag_drift_stops_only_that_item(deletion: LiveDeletion) -> None:
    tenant = deletion.tenant
    plan = await approved_plan(deletion, customer_by_profile(tenant, "silent"))
    doomed = [item for item in await items_of(deletion, plan.id) if item.action == "delete"]
    changed = next(item for item in doomed if item.kind == "file")
    await deletion.control(
        "PATCH", f"/files/items/{changed.item_id}", json={"asUser": tenant.staff[0].id, "text": "edited"}
    )

    report = await deletion.runtime.executor().run(plan.id)

    items = {item.id: item for item in await items_of(deletion, plan.id)}
    assert items[changed.id].state == "drifted"
    assert file_state(tenant, changed.item_id) == "alive"
    others = [item for item in doomed if item.id != changed.id]
    assert {items[item.id].state for item in others} == {"soft_deleted"}
    assert report.status == PlanStatus.awaiting_purge
    (record,) = [r for r in await records_of(deletion, plan.id) if r.plan_item_id == changed.id]
    assert (record.outcome, record.soft_deleted_at) == ("drifted", None)


async def test_a_hold_added_after_approval_keeps_the_item(deletion: LiveDeletion) -> None:
    tenant = deletion.tenant
    plan = await approved_plan(deletion, customer_by_profile(tenant, "silent"))
    doomed = [item for item in await items_of(deletion, plan.id) if item.action == "delete"]
    file_item = next(item for item in doomed if item.kind == "file")
    mailbox = next(item.container_id for item in doomed if item.kind == "message")
    async with deletion.store.sessionmaker() as session, session.begin():
        session.add(
            ItemHold(item_id=file_item.item_id, source=HoldSource.disclosure, reason="subpoena", created_by="legal")
        )
    # Microsoft 365's own hold (an eDiscovery case with the mailbox's owner as custodian) counts too.
    await deletion.control(
        "POST", "/security/holds", json={"displayName": "Late dispute", "custodianUserIds": [mailbox]}
    )

    await deletion.runtime.executor().run(plan.id)

    items = {item.id: item for item in await items_of(deletion, plan.id)}
    assert items[file_item.id].state == "held"
    assert file_state(tenant, file_item.item_id) == "alive"
    in_held_mailbox = [item for item in doomed if item.container_id == mailbox]
    assert in_held_mailbox
    assert {items[item.id].state for item in in_held_mailbox} == {"held"}
    assert {message_state(tenant, i.container_id, i.item_id) for i in in_held_mailbox} <= {"inbox", "sentitems"}
    elsewhere = [item for item in doomed if item.container_id != mailbox and item.id != file_item.id]
    assert elsewhere
    assert {items[item.id].state for item in elsewhere} == {"soft_deleted"}


async def test_only_approved_untampered_plans_run(deletion: LiveDeletion) -> None:
    tenant = deletion.tenant
    customer = customer_by_profile(tenant, "silent")
    ctx = deletion.runtime.context()
    async with deletion.store.sessionmaker() as session, session.begin():
        pending = await build_plan(
            session, ctx, PlanRequest(TriggerKind.inactivity, (customer,), SCHEDULER), dry_run=False
        )
    with pytest.raises(ExecutionRefused, match="not approved"):
        await deletion.runtime.executor().run(pending.id)

    plan = await approved_plan(deletion, customer)
    # Someone edits the approved manifest in the database directly.
    async with deletion.store.sessionmaker() as session, session.begin():
        item = (
            (await session.execute(select(PlanItem).where(PlanItem.plan_id == plan.id, PlanItem.action == "delete")))
            .scalars()
            .first()
        )
        assert item is not None
        item.etag = '"forged"'
    await deletion.control("DELETE", "/requests")

    with pytest.raises(ExecutionRefused, match="no longer matches"):
        await deletion.runtime.executor().run(plan.id)

    async with deletion.store.sessionmaker() as session:
        current = await session.get(DeletionPlan, plan.id)
        assert current is not None
        assert current.status == PlanStatus.pending_approval
        assert current.manifest_version == 2
    assert [r for r in await deletion.requests() if r["method"] in ("DELETE", "POST", "PATCH")] == []


async def test_a_customer_request_ends_with_a_confirmation_mail_in_vietnamese_and_english(
    deletion: LiveDeletion,
) -> None:
    tenant = deletion.tenant
    customer = customer_by_profile(tenant, "ended")
    with_grace(deletion, 0)
    ctx = deletion.runtime.context()
    officer = approvers(tenant)[2]
    async with deletion.store.sessionmaker() as session, session.begin():
        request, spec = await record_customer_request(
            session,
            ctx,
            customer_id=customer,
            requester_name="Nguyễn Thị Lan",
            requester_email="lan@customer.example",
            identity_check="called back on the registered number",
            channel="api",
            received_by=Requester(officer.id, officer.display_name),
        )
    await build_task(deletion.runtime, dict(spec.payload))
    async with deletion.store.sessionmaker() as session:
        plan = await session.get(DeletionPlan, spec.payload["plan_id"])
        assert plan is not None
        assert plan.trigger == "customer_request"
    for person in approvers(tenant)[:2]:
        async with deletion.store.sessionmaker() as session, session.begin():
            await decide(
                session,
                ctx,
                plan_id=plan.id,
                manifest_hash=plan.manifest_hash,
                approver=Approver(person.id, person.display_name),
                decision=Decision.approve,
                channel="web",
            )
    assert (await deletion.runtime.executor().run(plan.id)).status == PlanStatus.completed

    relay = Relay(
        deletion.store.sessionmaker,
        deletion.runtime.settings,
        cards=None,
        mailer=GraphMailer(deletion.runtime.connector, deletion.runtime.settings.notification_mailbox),
    )
    report = await relay.run_once()

    async with deletion.store.sessionmaker() as session:
        confirmation = (
            await session.execute(select(OutboxMessage).where(OutboxMessage.kind == "mail.deletion_confirmation"))
        ).scalar_one()
    assert confirmation.id in report.sent
    sent = [mail for mail in await deletion.control("GET", "/mail/outbox") if "lan@customer.example" in mail["to"]]
    assert len(sent) == 1
    body: Any = sent[0]["body"]
    assert "Xác nhận đã xóa" in sent[0]["subject"]
    assert "Confirmation" in sent[0]["subject"]
    assert plan.id in body
    assert "Kính gửi" in body
    assert "Dear" in body
    async with deletion.store.sessionmaker() as session:
        assert (
            await session.execute(
                select(func.count()).select_from(DisposalRecord).where(DisposalRecord.plan_id == plan.id)
            )
        ).scalar_one() > 0

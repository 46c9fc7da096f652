"""Acceptance on the seeded tenant: inactive customers get plans, cards reach Teams, two seeded approvers approve
through the bot, items are deleted exactly as the manifest says, held items are untouched, and the proof of
disposal and the audit log verify. The scheduler's own job functions drive it, in order."""

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from app.audit.checkpoints import verify_audit, write_checkpoint
from app.classification.activity import ActivityEvent, activity_status
from app.disposal.proof import export_csv, records_for
from app.main import create_app
from app.models import Customer, DeletionPlan, PlanStatus
from app.plans.service import plan_items
from emulator.teams import conversation_activities, teams_config
from jobs.work import build_plans, evaluate_inactivity, execute_plans, relay_outbox
from tests.app.disposal.test_executor import state_of
from tests.app.plans.live_fixtures import deletion, live, tenant
from tests.app.plans.support import LiveDeletion, approvers
from tests.emulator.test_teams import HttpsApp

__all__ = ["deletion", "live", "tenant"]


async def test_inactive_customers_are_planned_approved_in_teams_and_deleted_exactly(deletion: LiveDeletion) -> None:
    tenant, runtime = deletion.tenant, deletion.runtime
    base = deletion.live.endpoints.base_url
    channel = teams_config(tenant, base)["channel_conversation_id"]
    held_mailbox = tenant.staff[-1].id  # the seed's open eDiscovery case holds this mailbox

    await evaluate_inactivity(runtime)
    await build_plans(runtime)
    await relay_outbox(runtime)

    async with deletion.store.sessionmaker() as session:
        plans = list((await session.execute(select(DeletionPlan).order_by(DeletionPlan.created_at))).scalars())
        customers = {c.id: c for c in (await session.execute(select(Customer))).scalars()}
    due = {
        cid
        for cid, customer in customers.items()
        if activity_status(
            cid,
            last=ActivityEvent(cid, "imported", customer.last_activity_at) if customer.last_activity_at else None,
            now=runtime.context().clock(),
            policy=runtime.policy,
            service_ended_at=customer.service_ended_at,
            registered_at=customer.created_at,
        ).deletion_due
    }
    inactive = {c.id for c in tenant.customers if c.profile in ("silent", "ended")}
    assert due
    assert due <= inactive
    assert {plan.customer_ids[0] for plan in plans} == due
    assert {plan.status for plan in plans} == {PlanStatus.pending_approval}
    cards = conversation_activities(tenant, channel)
    assert len(cards) == len(plans)

    api = create_app(runtime.settings)
    with HttpsApp(api, lifespan="on") as server:
        async with httpx.AsyncClient(verify=deletion.live.endpoints.ca_bundle, timeout=60) as client:
            for plan, card in zip(plans, cards, strict=True):
                data = {"plan_id": plan.id, "manifest_hash": plan.manifest_hash}
                assert card["activity"]["attachments"][0]["content"]["actions"][0]["data"] == data
                for person in approvers(tenant)[:2]:
                    pressed = await client.post(
                        f"{deletion.live.endpoints.control_url}/teams/invoke",
                        json={
                            "user_id": person.id,
                            "verb": "approve",
                            "data": data,
                            "activity_id": card["id"],
                            "bot_endpoint": f"{server.url}/api/messages",
                            "ca_bundle": server.ca_bundle,
                        },
                    )
                    assert pressed.json()["status"] == 200

    before = {}
    async with deletion.store.sessionmaker() as session:
        for plan in plans:
            refreshed = await session.get(DeletionPlan, plan.id, populate_existing=True)
            assert refreshed is not None
            assert refreshed.status == PlanStatus.approved
            before[plan.id] = {item.id: state_of(tenant, item) for item in await plan_items(session, plan.id)}

    await execute_plans(runtime)
    await execute_plans(runtime)
    await relay_outbox(runtime)

    held_seen = False
    async with deletion.store.sessionmaker() as session:
        for plan in plans:
            current = await session.get(DeletionPlan, plan.id, populate_existing=True)
            assert current is not None
            assert current.status == PlanStatus.awaiting_purge
            items = await plan_items(session, plan.id)
            for item in items:
                now = state_of(tenant, item)
                if item.action == "delete":
                    assert item.state == "soft_deleted"
                    assert now == ("recoverableitemsdeletions" if item.kind == "message" else "recycle_bin")
                else:
                    assert now == before[plan.id][item.id], (item.exclusion_reason, item.item_id)
                if item.container_id == held_mailbox:
                    assert item.action == "exclude"
                    assert item.exclusion_reason == "legal_hold"
                    held_seen = True
            records = await records_for(session, plan.id)
            assert sorted(r.plan_item_id for r in records) == sorted(i.id for i in items if i.action == "delete")
            assert all(r.manifest_hash == plan.manifest_hash and len(r.approvers) == 2 for r in records)
            assert export_csv(records).count("\n") == len(records) + 1
        assert await write_checkpoint(session, key := Ed25519PrivateKey.generate()) is not None
        await session.commit()
        report = await verify_audit(session, key.public_key())
    assert held_seen, "the seed's held mailbox should hold some of these customers' mail"
    assert report.intact
    assert report.checkpoints == 1
    updated = conversation_activities(tenant, channel)
    assert all(card["revision"] > 1 for card in updated)

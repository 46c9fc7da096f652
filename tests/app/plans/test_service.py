"""Building plans: exact manifests, every exclusion reason, caps, dry runs, exports and manifest changes."""

import csv
import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from app.models import Approval, DeletionPlan, HoldSource, ItemHold, OutboxMessage, PlanStatus, TriggerKind
from app.plans.context import DeletionContext
from app.plans.holds import RETENTION_LABEL, HoldHit
from app.plans.manifest import ManifestHeader, ManifestLine, manifest_hash
from app.plans.service import (
    PlanNotReady,
    PlanRequest,
    Requester,
    build_plan,
    compute_hash,
    exclude_item,
    export_csv,
    export_json,
    plan_items,
    summary,
)
from app.policy import default_policy
from tests.app.plans.conftest import APPROVER_A, REQUESTER
from tests.app.plans.support import FixedHolds, Store, mapped

PERSON = Requester(REQUESTER, "Privacy Officer")


def request(*customers: str, trigger: TriggerKind = TriggerKind.company_decision, **kwargs: Any) -> PlanRequest:
    kwargs.setdefault("reason", "contract ended, data no longer needed")
    return PlanRequest(trigger, tuple(customers), PERSON, **kwargs)


async def build(store: Store, ctx: DeletionContext, plan_request: PlanRequest, *, dry_run: bool = False) -> Any:
    async with store.sessionmaker() as session, session.begin():
        plan = await build_plan(session, ctx, plan_request, dry_run=dry_run)
        return plan, await plan_items(session, plan.id)


async def test_manifest_lists_every_item_with_action_and_reason(
    store: Store, make_context: Callable[..., DeletionContext]
) -> None:
    holds = FixedHolds({"retained": HoldHit(RETENTION_LABEL, "retention label 'Contract - 10 years'")})
    ctx = make_context(
        items=[
            mapped("plain", "C1", size=10),
            mapped("mail", "C1", kind="message", size=0),
            mapped("retained", "C1", size=20),
            mapped("shared", "C1", "C2", size=30),
            mapped("other-customer-only", "C2"),
        ],
        holds=holds,
    )
    async with store.sessionmaker() as session, session.begin():
        session.add(ItemHold(item_id="disclosed", source=HoldSource.disclosure, reason="court order", created_by="x"))
        session.add(ItemHold(customer_id="C9", source=HoldSource.legal_hold, reason="other customer", created_by="x"))
    ctx.datamap.items.append(mapped("disclosed", "C1"))  # type: ignore[union-attr]

    plan, items = await build(store, ctx, request("C1"))

    by_id = {item.item_id: item for item in items}
    assert set(by_id) == {"plain", "mail", "retained", "shared", "disclosed"}
    assert {i for i, item in by_id.items() if item.action == "delete"} == {"plain", "mail"}
    assert by_id["retained"].exclusion_reason == "retention_label"
    assert by_id["shared"].exclusion_reason == "shared_with_other_customer"
    assert by_id["shared"].shared_with == ["C2"]
    assert by_id["disclosed"].exclusion_reason == "pending_disclosure"
    assert (plan.item_count, plan.total_bytes, plan.excluded_count) == (2, 10, 3)
    assert plan.status == PlanStatus.pending_approval
    assert holds.refreshes == 1
    assert plan.manifest_hash == manifest_hash(
        ManifestHeader(plan.id, "tenant-1", ("C1",), "company_decision", plan.reason, False, 14),
        [
            ManifestLine(
                i.kind,
                i.container_id,
                i.item_id,
                i.etag,
                i.size,
                i.name_hash,
                i.action,
                i.exclusion_reason,
                tuple(i.shared_with),
            )
            for i in reversed(items)
        ],
    )
    async with store.sessionmaker() as session:
        assert await compute_hash(session, plan) == plan.manifest_hash
        cards = (await session.execute(select(OutboxMessage))).scalars().all()
    assert [(m.kind, m.payload["plan_id"]) for m in cards] == [("plan.card", plan.id)]


async def test_customer_level_holds_and_customer_requests_exclude(
    store: Store, make_context: Callable[..., DeletionContext]
) -> None:
    async with store.sessionmaker() as session, session.begin():
        session.add(ItemHold(customer_id="C1", source=HoldSource.legal_hold, reason="dispute", created_by="legal"))
        session.add(
            ItemHold(
                container_id="container-file",
                kind="file",
                source=HoldSource.customer_request,
                reason="keep",
                created_by="x",
            )
        )
        released = ItemHold(item_id="m2", source=HoldSource.manual, reason="old", created_by="x")
        session.add(released)
        await session.flush()
        released.released_at = released.created_at
    ctx = make_context(
        items=[mapped("f1", "C1"), mapped("m1", "C2", kind="message"), mapped("m2", "C2", kind="message")]
    )

    _, items_c1 = await build(store, ctx, request("C1"))
    _, items_c2 = await build(store, ctx, request("C2"))

    assert [(i.item_id, i.exclusion_reason) for i in items_c1] == [("f1", "legal_hold")]
    assert [(i.item_id, i.action) for i in items_c2] == [("m1", "delete"), ("m2", "delete")]


async def test_shared_items_are_deleted_only_by_an_explicit_company_decision(
    store: Store, make_context: Callable[..., DeletionContext]
) -> None:
    ctx = make_context(items=[mapped("thread", "C1", "C2", kind="message")])

    _, both = await build(store, ctx, request("C1", "C2"))
    _, explicit = await build(store, ctx, request("C1", include_shared=True))

    assert [(i.action, i.shared_with) for i in both] == [("delete", [])]
    assert [(i.action, i.shared_with) for i in explicit] == [("delete", ["C2"])]
    with pytest.raises(Exception, match="only an explicit company decision"):
        await build(store, ctx, request("C1", trigger=TriggerKind.customer_request, include_shared=True))


async def test_incomplete_or_resyncing_data_map_builds_nothing(
    store: Store, make_context: Callable[..., DeletionContext]
) -> None:
    ctx = make_context(items=[mapped("f1", "C1")])
    ctx.datamap.incomplete = ("drive:abc",)  # type: ignore[union-attr]

    with pytest.raises(PlanNotReady, match="drive:abc"):
        await build(store, ctx, request("C1"))
    async with store.sessionmaker() as session:
        assert (await session.execute(select(func.count()).select_from(OutboxMessage))).scalar_one() == 0


async def test_caps_require_extra_approvals(store: Store, make_context: Callable[..., DeletionContext]) -> None:
    policy = default_policy().model_copy(
        update={
            "approvals": default_policy().approvals.model_copy(
                update={"max_items_per_plan": 1, "max_plans_per_hour": 2}
            )
        }
    )
    ctx = make_context(items=[mapped("a", "C1"), mapped("b", "C1"), mapped("c", "C2")], policy=policy)

    big, _ = await build(store, ctx, request("C1"))
    small, _ = await build(store, ctx, request("C2"))
    small_again, _ = await build(store, ctx, request("C2"))  # the third plan within the hour

    assert big.required_approvals == 3
    assert "over the cap of 1 per plan" in big.cap_reasons[0]
    assert small.required_approvals == 2
    assert small.cap_reasons == []
    assert small_again.required_approvals == 3
    assert "plans in the last hour" in small_again.cap_reasons[0]


async def test_dry_run_is_never_submitted_and_exports_csv_and_json(
    store: Store, make_context: Callable[..., DeletionContext]
) -> None:
    holds = FixedHolds({"kept": HoldHit("legal_hold", "mailbox on hold")})
    ctx = make_context(items=[mapped("gone", "C1", size=2048), mapped("kept", "C1", kind="message")], holds=holds)

    plan, items = await build(store, ctx, request("C1"), dry_run=True)

    assert plan.status == PlanStatus.dry_run
    facts = summary(plan, items)
    assert (facts["items"], facts["bytes"], facts["exclusions"]) == (1, 2048, {"legal_hold": 1})
    assert [stage["stage"] for stage in facts["timeline"]] == [
        "soft_delete",
        "mail_permanent_delete",
        "file_recycle_bin_expiry",
    ]
    assert [stage["after_days"] for stage in facts["timeline"]] == [0, 14, 93]
    rows = list(csv.DictReader(io.StringIO(export_csv(items))))
    assert [(r["item_id"], r["action"], r["exclusion_reason"]) for r in rows] == [
        ("gone", "delete", ""),
        ("kept", "exclude", "legal_hold"),
    ]
    document = json.loads(export_json(plan, items))
    assert document["plan"]["manifest_hash"] == plan.manifest_hash
    assert len(document["items"]) == 2
    async with store.sessionmaker() as session:
        assert (await session.execute(select(func.count()).select_from(OutboxMessage))).scalar_one() == 0


async def test_triggers_follow_the_policy(store: Store, make_context: Callable[..., DeletionContext]) -> None:
    policy = default_policy()
    deletion = policy.deletion.model_copy(
        update={"inactivity": policy.deletion.inactivity.model_copy(update={"enabled": False})}
    )
    ctx = make_context(items=[mapped("a", "C1")], policy=policy.model_copy(update={"deletion": deletion}))

    with pytest.raises(Exception, match="disables the inactivity trigger"):
        await build(store, ctx, request("C1", trigger=TriggerKind.inactivity))
    with pytest.raises(Exception, match="must state its reason"):
        await build(store, ctx, request("C1", reason="  "))


async def test_excluding_an_item_changes_the_hash_voids_approvals_and_sends_a_new_card(
    store: Store, make_context: Callable[..., DeletionContext]
) -> None:
    ctx = make_context(items=[mapped("a", "C1"), mapped("b", "C1")])
    plan, items = await build(store, ctx, request("C1"))
    async with store.sessionmaker() as session, session.begin():
        session.add(
            Approval(
                plan_id=plan.id,
                manifest_hash=plan.manifest_hash,
                approver=APPROVER_A,
                approver_name="A",
                decision="approve",
                channel="web",
                decided_at=ctx.clock(),
                expires_at=ctx.clock(),
            )
        )
    old_hash = plan.manifest_hash

    async with store.sessionmaker() as session, session.begin():
        current = await session.get(DeletionPlan, plan.id)
        assert current is not None
        await exclude_item(session, ctx, current, items[0].id, reason="customer wants to keep it", by=PERSON)
        new_hash, version = current.manifest_hash, current.manifest_version

    assert new_hash != old_hash
    assert version == 2
    async with store.sessionmaker() as session:
        approval = (await session.execute(select(Approval))).scalar_one()
        cards = (await session.execute(select(OutboxMessage.key).order_by(OutboxMessage.id))).scalars().all()
    assert approval.voided_at is not None
    assert "manifest changed" in (approval.void_reason or "")
    assert cards == [f"plan:{plan.id}:card:v1", f"plan:{plan.id}:card:v2"]

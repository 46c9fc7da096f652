"""Compelled disclosure, service level, on SQLite and PostgreSQL: intake, objections, decisions, approvals, export."""

import io
import json
import zipfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.disclosures import approvals, export, notify, service
from app.disclosures.approvals import ApprovalRefused, StaleScope
from app.disclosures.context import DisclosureContext
from app.disclosures.export import NotApproved, PackageGone
from app.disclosures.machine import TransitionRefused
from app.disclosures.repository import DemandRepository
from app.disclosures.service import Narrowing, ObjectionTooLate, ScopeSpec
from app.exceptions import BadRequest, Conflict, NotFound
from app.models import (
    AuditRecord,
    DecisionOutcome,
    DisclosureApproval,
    DisclosureDemand,
    DisclosureStatus,
    HoldSource,
    ItemHold,
    OutboxMessage,
    OutboxStatus,
    PlanStatus,
    TriggerKind,
)
from app.plans.holds import PENDING_DISCLOSURE
from app.plans.service import PlanRequest, Requester, build_plan, plan_items
from tests.app.disclosures.support import (
    ADMIN_ONLY,
    CLERK,
    ITEMS,
    LAWYER_A,
    LAWYER_B,
    NOT_LISTED,
    ROBOT,
    T0,
    Clock,
    FakeFetcher,
    FakeMail,
    FakeTeams,
    content_of,
    intake,
    keys,
    make_context,
    seed,
    sha,
)
from tests.app.plans.support import FixedHolds, ListDataMap


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ctx(tmp_path: Path, clock: Clock) -> DisclosureContext:
    return make_context(tmp_path, clock)


@pytest.fixture
async def seeded(session: AsyncSession) -> AsyncSession:
    await seed(session)
    return session


async def outbox(session: AsyncSession, kind: str) -> list[OutboxMessage]:
    rows = await session.execute(select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id))
    return list(rows.scalars().all())


async def active_holds(session: AsyncSession, demand: DisclosureDemand) -> set[str]:
    return {hold.item_id or "" for hold in await DemandRepository(session).active_holds(demand.id)}


async def released_demand(
    session: AsyncSession, ctx: DisclosureContext, clock: Clock, **changes: object
) -> DisclosureDemand:
    demand = await service.receive(session, ctx, intake(**changes), actor=CLERK)
    clock.advance(days=8)
    return await service.release_after_window(session, ctx, demand.id, actor=CLERK)


async def approve_by_two(session: AsyncSession, ctx: DisclosureContext, demand: DisclosureDemand) -> None:
    for lawyer in (LAWYER_A, LAWYER_B):
        await approvals.decide_export(
            session, ctx, demand.id, scope_hash=demand.scope_hash, approver=lawyer, approve=True
        )


class TestIntake:
    async def test_the_scope_is_frozen_at_once(self, seeded: AsyncSession, ctx: DisclosureContext) -> None:
        demand = await service.receive(seeded, ctx, intake(), actor=CLERK)
        assert demand.status == DisclosureStatus.objection_window
        assert await active_holds(seeded, demand) == {"msg-1", "msg-2", "file-1"}
        holds = await DemandRepository(seeded).active_holds(demand.id)
        assert {hold.source for hold in holds} == {HoldSource.disclosure}
        assert all("Công an" not in hold.reason for hold in holds), "hold reasons must not reveal the demand"
        assert demand.objection_deadline == T0 + timedelta(days=7)
        assert len(await outbox(seeded, notify.CUSTOMER_NOTICE)) == 1
        assert [m.payload["event"] for m in await outbox(seeded, notify.LEGAL_UPDATE)] == ["received"]

    async def test_an_item_selection_takes_only_the_customers_items(
        self, seeded: AsyncSession, ctx: DisclosureContext
    ) -> None:
        shared = ("message", "user-2", "msg-3")
        demand = await service.receive(seeded, ctx, intake(scope=ScopeSpec(items=(shared,))), actor=CLERK)
        assert await active_holds(seeded, demand) == {"msg-3"}
        with pytest.raises(BadRequest, match="file-9"):
            await service.receive(
                seeded,
                ctx,
                intake(reference="other", scope=ScopeSpec(items=(("file", "drive-2", "file-9"),))),
                actor=CLERK,
            )
        with pytest.raises(BadRequest, match="nope"):
            await service.receive(
                seeded, ctx, intake(reference="x", scope=ScopeSpec(items=(("file", "drive-1", "nope"),))), actor=CLERK
            )

    async def test_a_gagged_demand_queues_no_notice(self, seeded: AsyncSession, ctx: DisclosureContext) -> None:
        demand = await service.receive(seeded, ctx, intake(gagged=True), actor=CLERK)
        assert await outbox(seeded, notify.CUSTOMER_NOTICE) == []
        with pytest.raises(notify.GaggedDemand):
            await notify.enqueue_customer_notice(seeded, demand, now=T0)

    @pytest.mark.parametrize(
        ("changes", "message"),
        [
            ({"deadline": T0 - timedelta(hours=1)}, "already passed"),
            ({"objection_deadline": T0 + timedelta(days=40)}, "after the authority"),
            ({"objection_deadline": T0 - timedelta(days=1)}, "in the future"),
            ({"customer_id": "C9999"}, "no customer"),
        ],
    )
    async def test_bad_intake_is_refused(
        self, seeded: AsyncSession, ctx: DisclosureContext, changes: dict[str, object], message: str
    ) -> None:
        with pytest.raises((BadRequest, NotFound), match=message):
            await service.receive(seeded, ctx, intake(**changes), actor=CLERK)

    async def test_the_window_never_outlasts_the_authority(self, seeded: AsyncSession, ctx: DisclosureContext) -> None:
        demand = await service.receive(seeded, ctx, intake(deadline=T0 + timedelta(days=3)), actor=CLERK)
        assert demand.objection_deadline == T0 + timedelta(days=3)

    async def test_the_same_demand_twice_is_a_conflict(self, seeded: AsyncSession, ctx: DisclosureContext) -> None:
        await service.receive(seeded, ctx, intake(), actor=CLERK)
        with pytest.raises(Conflict, match="already recorded"):
            await service.receive(seeded, ctx, intake(), actor=CLERK)


class TestObjectionsAndDecisions:
    async def test_an_objection_must_reach_us_by_the_deadline(
        self, seeded: AsyncSession, ctx: DisclosureContext, clock: Clock
    ) -> None:
        demand = await service.receive(seeded, ctx, intake(), actor=CLERK)
        clock.advance(days=9)
        with pytest.raises(ObjectionTooLate):
            await service.record_objection(
                seeded,
                ctx,
                demand.id,
                objector="C0001",
                received_at=clock.now,
                grounds="g",
                evidence_ref=None,
                actor=CLERK,
            )
        # One that arrived in time but is recorded late still counts.
        await service.record_objection(
            seeded,
            ctx,
            demand.id,
            objector="Luật sư của C0001",
            received_at=T0 + timedelta(days=6),
            grounds="phạm vi quá rộng",
            evidence_ref="mail 2026-11-08",
            actor=CLERK,
        )
        assert demand.status == DisclosureStatus.objected
        with pytest.raises(BadRequest, match="future"):
            await service.record_objection(
                seeded, ctx, demand.id, objector="x", received_at=clock.now + timedelta(days=1), grounds="g",
                evidence_ref=None, actor=CLERK,
            )  # fmt: skip

    async def test_an_upheld_objection_stops_the_disclosure_for_good(
        self, seeded: AsyncSession, ctx: DisclosureContext, clock: Clock
    ) -> None:
        demand = await service.receive(seeded, ctx, intake(), actor=CLERK)
        await service.record_objection(
            seeded, ctx, demand.id, objector="C0001", received_at=T0, grounds="g", evidence_ref=None, actor=CLERK
        )
        await service.record_decision(
            seeded, ctx, demand.id, outcome=DecisionOutcome.upheld, decided_by="TAND TP.HCM", decided_at=T0,
            reference="QĐ-1", note=None, narrowing=None, actor=CLERK,
        )  # fmt: skip
        assert demand.status == DisclosureStatus.stayed
        clock.advance(days=10)
        with pytest.raises(TransitionRefused):
            await service.release_after_window(seeded, ctx, demand.id, actor=CLERK)
        with pytest.raises(TransitionRefused):
            await approvals.decide_export(
                seeded, ctx, demand.id, scope_hash=demand.scope_hash, approver=LAWYER_A, approve=True
            )
        with pytest.raises(TransitionRefused):
            await export.export(seeded, ctx, demand.id, actor=LAWYER_A, fetcher=FakeFetcher())
        with pytest.raises(TransitionRefused):
            await service.record_decision(
                seeded, ctx, demand.id, outcome=DecisionOutcome.rejected, decided_by="x", decided_at=T0,
                reference=None, note=None, narrowing=None, actor=CLERK,
            )  # fmt: skip
        assert await active_holds(seeded, demand) == {"msg-1", "msg-2", "file-1"}, "holds stay until closed"
        await service.close(seeded, ctx, demand.id, reason="stayed by the court", actor=CLERK)
        assert await active_holds(seeded, demand) == set()
        held = (await seeded.execute(select(ItemHold).where(ItemHold.source == HoldSource.disclosure))).scalars().all()
        assert all(hold.released_at == clock.now for hold in held)

    async def test_without_objection_the_demand_is_released_after_the_window(
        self, seeded: AsyncSession, ctx: DisclosureContext, clock: Clock
    ) -> None:
        demand = await service.receive(seeded, ctx, intake(), actor=CLERK)
        with pytest.raises(Conflict, match="open until"):
            await service.release_after_window(seeded, ctx, demand.id, actor=CLERK)
        assert await service.release_due(seeded, ctx) == []
        clock.advance(days=7, seconds=1)
        assert await service.release_due(seeded, ctx) == [demand.id]
        assert demand.status == DisclosureStatus.released

    async def test_a_narrowed_decision_shrinks_the_scope(self, seeded: AsyncSession, ctx: DisclosureContext) -> None:
        demand = await service.receive(seeded, ctx, intake(), actor=CLERK)
        first_hash = demand.scope_hash
        await service.record_objection(
            seeded, ctx, demand.id, objector="C0001", received_at=T0, grounds="g", evidence_ref=None, actor=CLERK
        )

        async def decide(narrowing: Narrowing | None, outcome: DecisionOutcome = DecisionOutcome.narrowed) -> None:
            await service.record_decision(
                seeded, ctx, demand.id, outcome=outcome, decided_by="TAND", decided_at=T0, reference=None,
                note=None, narrowing=narrowing, actor=CLERK,
            )  # fmt: skip

        with pytest.raises(BadRequest, match="keeps every item"):
            await decide(Narrowing(date_from=datetime(2025, 1, 1, tzinfo=UTC)))
        with pytest.raises(BadRequest, match="keeps no item"):
            await decide(Narrowing(date_from=datetime(2027, 1, 1, tzinfo=UTC)))
        with pytest.raises(BadRequest, match="not in scope"):
            await decide(Narrowing(items=(("file", "drive-1", "file-2"),)))
        with pytest.raises(BadRequest, match="needs the scope"):
            await decide(None)
        with pytest.raises(BadRequest, match="only a narrowed"):
            await decide(Narrowing(items=(("file", "drive-1", "file-1"),)), DecisionOutcome.rejected)
        await decide(Narrowing(date_from=datetime(2025, 6, 1, tzinfo=UTC)))
        assert demand.status == DisclosureStatus.released
        assert demand.scope_hash != first_hash
        in_scope = await DemandRepository(seeded).scope_items(demand.id, in_scope_only=True)
        assert [item.item_id for item in in_scope] == ["msg-2"]
        assert await active_holds(seeded, demand) == {"msg-1", "msg-2", "file-1"}, "narrowing keeps the holds"


class TestApprovals:
    async def test_two_distinct_legal_approvers_other_than_the_clerk(
        self, seeded: AsyncSession, ctx: DisclosureContext, clock: Clock
    ) -> None:
        demand = await released_demand(seeded, ctx, clock)
        for person, reason in [
            (CLERK, "self-approval"),
            (ADMIN_ONLY, "not a legal approver"),
            (NOT_LISTED, "not a legal approver"),
            (ROBOT, "service identity"),
        ]:
            with pytest.raises(ApprovalRefused, match=reason):
                await approvals.decide_export(
                    seeded, ctx, demand.id, scope_hash=demand.scope_hash, approver=person, approve=True
                )
        first = await approvals.decide_export(
            seeded, ctx, demand.id, scope_hash=demand.scope_hash, approver=LAWYER_A, approve=True
        )
        again = await approvals.decide_export(
            seeded, ctx, demand.id, scope_hash=demand.scope_hash, approver=LAWYER_A, approve=True
        )
        assert (first.approvals, first.counted, again.approvals, again.counted) == (1, True, 1, False)
        with pytest.raises(NotApproved, match="has 1"):
            await export.export(seeded, ctx, demand.id, actor=LAWYER_A, fetcher=FakeFetcher())
        second = await approvals.decide_export(
            seeded, ctx, demand.id, scope_hash=demand.scope_hash, approver=LAWYER_B, approve=True
        )
        assert (second.approvals, second.required) == (2, 2)
        refusals = await seeded.execute(select(AuditRecord).where(AuditRecord.action == "disclosure.approval_refused"))
        assert len(refusals.scalars().all()) == 4

    async def test_a_reject_voids_the_round_and_a_fresh_one_can_follow(
        self, seeded: AsyncSession, ctx: DisclosureContext, clock: Clock
    ) -> None:
        demand = await released_demand(seeded, ctx, clock)
        await approvals.decide_export(
            seeded, ctx, demand.id, scope_hash=demand.scope_hash, approver=LAWYER_A, approve=True
        )
        rejected = await approvals.decide_export(
            seeded, ctx, demand.id, scope_hash=demand.scope_hash, approver=LAWYER_B, approve=False
        )
        assert rejected.approvals == 0
        await approve_by_two(seeded, ctx, demand)
        assert len(await service.valid_approvals(seeded, ctx, demand, clock.now)) == 2

    async def test_approvals_expire(self, seeded: AsyncSession, ctx: DisclosureContext, clock: Clock) -> None:
        demand = await released_demand(seeded, ctx, clock)
        await approve_by_two(seeded, ctx, demand)
        clock.advance(hours=ctx.policy.approvals.ttl_hours + 1)
        with pytest.raises(NotApproved):
            await export.export(seeded, ctx, demand.id, actor=LAWYER_A, fetcher=FakeFetcher())

    async def test_narrowing_voids_approvals_of_the_wider_scope(
        self, seeded: AsyncSession, ctx: DisclosureContext, clock: Clock
    ) -> None:
        demand = await released_demand(seeded, ctx, clock)
        old_hash = demand.scope_hash
        await approve_by_two(seeded, ctx, demand)
        await service.record_decision(
            seeded, ctx, demand.id, outcome=DecisionOutcome.narrowed, decided_by="Công an TP.HCM", decided_at=clock.now,
            reference="CV-123/2026-bis", note="chỉ cần thư",
            narrowing=Narrowing(items=(("message", "user-1", "msg-1"),)), actor=CLERK,
        )  # fmt: skip
        assert await service.valid_approvals(seeded, ctx, demand, clock.now) == []
        voided = (await seeded.execute(select(DisclosureApproval))).scalars().all()
        assert {a.void_reason for a in voided} == {"the scope was narrowed"}
        with pytest.raises(StaleScope):
            await approvals.decide_export(seeded, ctx, demand.id, scope_hash=old_hash, approver=LAWYER_A, approve=True)


class TestExport:
    async def test_only_a_released_demand_exports(self, seeded: AsyncSession, ctx: DisclosureContext) -> None:
        demand = await service.receive(seeded, ctx, intake(), actor=CLERK)
        with pytest.raises(TransitionRefused, match="objection_window"):
            await export.export(seeded, ctx, demand.id, actor=LAWYER_A, fetcher=FakeFetcher())

    async def test_the_package_holds_exactly_the_narrowed_scope_with_hashes(
        self, seeded: AsyncSession, ctx: DisclosureContext, clock: Clock
    ) -> None:
        demand = await released_demand(seeded, ctx, clock)
        await service.record_decision(
            seeded, ctx, demand.id, outcome=DecisionOutcome.narrowed, decided_by="Công an TP.HCM", decided_at=clock.now,
            reference=None, note=None, actor=CLERK,
            narrowing=Narrowing(items=(("message", "user-1", "msg-2"), ("file", "drive-1", "file-1"))),
        )  # fmt: skip
        await approve_by_two(seeded, ctx, demand)
        fetcher = FakeFetcher(missing={"msg-2"})
        record = await export.export(seeded, ctx, demand.id, actor=LAWYER_A, fetcher=fetcher)
        assert fetcher.fetched == ["file-1"]
        assert demand.status == DisclosureStatus.exported
        assert (record.item_count, record.total_bytes) == (1, len(content_of("file-1")))
        assert [(line["item_id"], line["status"]) for line in record.items] == [
            ("file-1", "exported"),
            ("msg-2", "missing"),
        ]
        path, served = await export.package_file(seeded, ctx, demand.id, record.id, actor=LAWYER_B)
        data = path.read_bytes()
        assert sha(data) == record.package_sha256 == served.package_sha256
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            manifest = json.loads(archive.read("manifest.json"))
            assert manifest["demand"]["customer"] == {"id": "C0001", "name": "Công ty TNHH Minh Phát"}
            assert manifest["demand"]["scope_hash"] == demand.scope_hash
            assert {a["id"] for a in manifest["approved_by"]} == {LAWYER_A.subject, LAWYER_B.subject}
            exported = [line for line in manifest["items"] if line["status"] == "exported"]
            assert [line["item_id"] for line in exported] == ["file-1"]
            assert archive.read(exported[0]["path"]) == content_of("file-1")
            assert exported[0]["sha256"] == sha(content_of("file-1"))
            assert archive.read("SHA256SUMS").decode() == f"{sha(content_of('file-1'))}  {exported[0]['path']}\n"
            assert sorted(archive.namelist()) == sorted(["manifest.json", "SHA256SUMS", exported[0]["path"]])
        used = (await seeded.execute(select(DisclosureApproval))).scalars().all()
        assert all(a.consumed_at == clock.now for a in used if a.voided_at is None)
        with pytest.raises(TransitionRefused):
            await export.export(seeded, ctx, demand.id, actor=LAWYER_A, fetcher=FakeFetcher())
        assert await active_holds(seeded, demand) == {"msg-1", "msg-2", "file-1"}, "holds stay until the demand closes"
        await service.close(seeded, ctx, demand.id, reason="delivered to the authority", actor=CLERK)
        assert not path.exists()
        with pytest.raises(PackageGone):
            await export.package_file(seeded, ctx, demand.id, record.id, actor=LAWYER_B)
        assert record.package_removed_at == clock.now

    async def test_a_tampered_package_is_not_served(
        self, seeded: AsyncSession, ctx: DisclosureContext, clock: Clock
    ) -> None:
        demand = await released_demand(seeded, ctx, clock)
        await approve_by_two(seeded, ctx, demand)
        record = await export.export(seeded, ctx, demand.id, actor=LAWYER_A, fetcher=FakeFetcher())
        path = Path(ctx.settings.disclosure_export_dir) / record.package_name
        path.write_bytes(path.read_bytes() + b"extra")
        with pytest.raises(Conflict, match="no longer matches"):
            await export.package_file(seeded, ctx, demand.id, record.id, actor=LAWYER_B)


class TestNotifications:
    async def test_the_notice_goes_to_the_contacts_in_vietnamese_and_english(
        self, seeded: AsyncSession, ctx: DisclosureContext
    ) -> None:
        demand = await service.receive(seeded, ctx, intake(), actor=CLERK)
        mail, teams = FakeMail(), FakeTeams()
        delivery = notify.Delivery(ctx.settings, ctx.policy, mail=mail, teams=teams)
        assert await notify.relay(seeded, delivery, now=T0) == 2
        [(sender, sent)] = mail.sent
        assert sender == "privacy@contoso.test"
        assert list(sent.to) == ["contact1@c1.example.vn"]
        assert "Thông báo về yêu cầu tiết lộ" in sent.subject
        assert "Notice of a compelled disclosure" in sent.subject
        assert "16:00 ngày 09/11/2026 (GMT+7)" in sent.body
        assert "9 November 2026, 16:00 (GMT+7)" in sent.body
        assert "Công an TP.HCM" in sent.body
        assert "legal@contoso.test" in sent.body
        assert demand.notice_sent_at == T0
        assert demand.notice_recipients == ["contact1@c1.example.vn"]
        assert {m.status for m in await outbox(seeded, notify.CUSTOMER_NOTICE)} == {OutboxStatus.sent}
        # Delivering the notice announces it to the legal approvers too (queued, sent on the next pass).
        assert await notify.relay(seeded, delivery, now=T0) == 1
        assert [card["body"][1]["text"] for card in teams.cards] == [
            notify.EVENT_TEXT["received"],
            notify.EVENT_TEXT["notice_sent"],
        ]

    async def test_a_gagged_customer_is_never_mailed(self, seeded: AsyncSession, ctx: DisclosureContext) -> None:
        demand = await service.receive(seeded, ctx, intake(gagged=True), actor=CLERK)
        # Even a notice row written past the service (a bug, a manual insert) is refused at delivery.
        seeded.add(
            OutboxMessage(
                key="forced", kind=notify.CUSTOMER_NOTICE, payload={"demand_id": demand.id}, status="pending",
                attempts=0, next_attempt_at=T0, result={},
            )
        )  # fmt: skip
        mail = FakeMail()
        await notify.relay(seeded, notify.Delivery(ctx.settings, ctx.policy, mail=mail, teams=FakeTeams()), now=T0)
        assert mail.sent == []
        forced = (await seeded.execute(select(OutboxMessage).where(OutboxMessage.key == "forced"))).scalar_one()
        assert forced.status == OutboxStatus.failed
        assert "gagged" in (forced.last_error or "")

    async def test_cards_name_a_do_not_disclose_customer_by_id(
        self, seeded: AsyncSession, ctx: DisclosureContext
    ) -> None:
        await service.receive(
            seeded,
            ctx,
            intake(customer_id="C0002", scope=ScopeSpec(items=(("file", "drive-2", "file-9"),))),
            actor=CLERK,
        )
        teams = FakeTeams()
        await notify.relay(seeded, notify.Delivery(ctx.settings, ctx.policy, mail=FakeMail(), teams=teams), now=T0)
        text = json.dumps(teams.cards, ensure_ascii=False)
        assert "C0002 (do-not-disclose)" in text
        assert "Sunrise" not in text

    async def test_without_a_channel_updates_wait_and_retry(self, seeded: AsyncSession, ctx: DisclosureContext) -> None:
        await service.receive(seeded, ctx, intake(gagged=True), actor=CLERK)
        await notify.relay(seeded, notify.Delivery(ctx.settings, ctx.policy, mail=None, teams=None), now=T0)
        [update] = await outbox(seeded, notify.LEGAL_UPDATE)
        assert (update.status, update.attempts) == (OutboxStatus.pending, 1)
        assert update.next_attempt_at > T0


async def test_a_deletion_plan_excludes_what_a_pending_demand_holds(
    seeded: AsyncSession, ctx: DisclosureContext, clock: Clock
) -> None:
    """The deletion planner reads the disclosure's holds and shows them as pending_disclosure."""
    from app.plans.context import DeletionContext
    from tests.app.plans.support import mapped

    datamap = ListDataMap(
        [replace(mapped(i.item_id, *i.customers, kind=i.kind), container_id=i.container_id) for i in ITEMS]
    )
    deletion = DeletionContext(
        settings=ctx.settings, policy=ctx.policy, external_holds=FixedHolds(), datamap=datamap, clock=clock
    )
    demand = await service.receive(seeded, ctx, intake(gagged=True), actor=CLERK)
    requester = Requester(subject="oid-officer", name="officer")

    async def reasons() -> dict[str, str | None]:
        plan = await build_plan(
            seeded,
            deletion,
            PlanRequest(TriggerKind.company_decision, ("C0001",), requester, reason="test"),
            dry_run=True,
        )
        assert plan.status == PlanStatus.dry_run
        return {item.item_id: item.exclusion_reason for item in await plan_items(seeded, plan.id)}

    before = await reasons()
    assert {item_id for item_id, reason in before.items() if reason == PENDING_DISCLOSURE} == {
        "msg-1",
        "msg-2",
        "file-1",
    }
    assert before["file-2"] is None
    await service.close(seeded, ctx, demand.id, reason="withdrawn", actor=CLERK)
    after = await reasons()
    assert PENDING_DISCLOSURE not in after.values()
    assert sorted(keys("C0001")) == sorted((i.kind, i.container_id, i.item_id) for i in ITEMS if "C0001" in i.customers)

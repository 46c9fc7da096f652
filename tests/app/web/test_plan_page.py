"""The plan page: the manifest with filters, exclusions, and approve / reject bound to the signed-in person."""

import re

import pytest
from sqlalchemy import select

from app.models import Approval, AuditRecord, DeletionPlan, OutboxMessage, PlanItem, PlanStatus
from emulator.server import EmulatorServer
from emulator.state import User
from tests.app.web.conftest import People, Web, add_customers, add_plan


async def new_plan(web: Web, emulator: EmulatorServer, *, requested_by: str = "service:scheduler") -> DeletionPlan:
    async with web.store() as session:
        customers = await add_customers(session)
        return await add_plan(
            session,
            customer_ids=[customers["silent"].id],
            requested_by=requested_by,
            tenant_id=emulator.endpoints.tenant_id,
        )


async def decide(web: Web, plan: DeletionPlan, decision: str, **extra: str) -> tuple[int, str]:
    token = await web.csrf(f"/plans/{plan.id}")
    form = {"csrf_token": token, "decision": decision, "manifest_hash": plan.manifest_hash, "reviewed": "true"}
    response = await web.client.post(f"/plans/{plan.id}/decision", data=form | extra)
    return response.status_code, response.headers.get("location", response.text)


async def approvals_of(web: Web, plan: DeletionPlan) -> list[Approval]:
    async with web.store() as session:
        return list((await session.execute(select(Approval).where(Approval.plan_id == plan.id))).scalars())


async def status_of(web: Web, plan: DeletionPlan) -> str:
    async with web.store() as session:
        return (await session.get(DeletionPlan, plan.id, populate_existing=True)).status  # type: ignore[union-attr]


class TestManifest:
    async def test_the_page_shows_the_full_manifest_and_its_exclusions(
        self, web: Web, emulator: EmulatorServer, people: People
    ) -> None:
        plan = await new_plan(web, emulator)
        await web.sign_in(people.approvers[0])
        page = await web.client.get(f"/plans/{plan.id}")
        assert page.status_code == 200
        assert plan.manifest_hash in page.text
        assert "5 of 5 items" in page.text
        assert "legal hold" in page.text
        assert "case LH-7 holds this mailbox" in page.text
        assert "shared with other customer" in page.text
        assert "recoverable" in page.text  # the deletion timeline
        # The customer is named as this audience may see it.
        assert "Công ty TNHH Silent" in page.text

    async def test_filters_narrow_the_manifest_and_htmx_gets_only_the_table(
        self, web: Web, emulator: EmulatorServer, people: People
    ) -> None:
        plan = await new_plan(web, emulator)
        await web.sign_in(people.auditor)
        page = await web.client.get(f"/plans/{plan.id}", params={"action": "exclude"})
        assert "2 of 5 items" in page.text
        partial = await web.client.get(
            f"/plans/{plan.id}",
            params={"reason": "legal_hold"},
            headers={"HX-Request": "true", "HX-Target": "manifest"},
        )
        assert partial.status_code == 200
        assert partial.text.lstrip().startswith('<div id="manifest">')
        assert "1 of 5 items" in partial.text
        assert "<html" not in partial.text
        found = await web.client.get(f"/plans/{plan.id}", params={"q": f"{plan.id[:6]}-0002"})
        assert "1 of 5 items" in found.text

    async def test_bad_filters_are_a_clear_400(self, web: Web, emulator: EmulatorServer, people: People) -> None:
        plan = await new_plan(web, emulator)
        await web.sign_in(people.auditor)
        response = await web.client.get(f"/plans/{plan.id}", params={"page": "0", "kind": "<script>"})
        assert response.status_code == 400
        assert "kind" in response.text
        assert "page" in response.text
        assert "<script>" not in response.text

    async def test_an_unknown_plan_is_a_404_page_and_a_malformed_id_a_400(self, web: Web, people: People) -> None:
        await web.sign_in(people.auditor)
        response = await web.client.get(f"/plans/{'a' * 32}")
        assert response.status_code == 404
        assert f"No plan {'a' * 32}" in response.text
        assert (await web.client.get("/plans/does-not-exist")).status_code == 400

    async def test_an_auditor_sees_no_decision_buttons(
        self, web: Web, emulator: EmulatorServer, people: People
    ) -> None:
        plan = await new_plan(web, emulator)
        await web.sign_in(people.auditor)
        page = await web.client.get(f"/plans/{plan.id}")
        assert 'name="decision"' not in page.text
        assert "Deciding needs the Steward.Approver role." in page.text
        assert "/exclude" not in page.text


class TestDecisions:
    async def test_two_approvers_approve_through_the_page(
        self, web: Web, emulator: EmulatorServer, people: People
    ) -> None:
        plan = await new_plan(web, emulator)
        first, second = people.approvers
        await web.sign_in(first)
        status, location = await decide(web, plan, "approve")
        assert status == 303
        assert location == f"/plans/{plan.id}?done=approve"
        assert await status_of(web, plan) == PlanStatus.pending_approval
        page = await web.client.get(location)
        assert "Your approval is recorded" in page.text
        assert "1 / 2" in page.text

        await web.sign_in(second)
        status, _ = await decide(web, plan, "approve")
        assert status == 303
        assert await status_of(web, plan) == PlanStatus.approved
        approvals = await approvals_of(web, plan)
        assert sorted(approval.approver for approval in approvals) == sorted([first.id, second.id])
        assert {approval.channel for approval in approvals} == {"web"}
        assert {approval.manifest_hash for approval in approvals} == {plan.manifest_hash}

    async def test_the_approver_is_the_signed_in_person_whatever_the_form_says(
        self, web: Web, emulator: EmulatorServer, people: People
    ) -> None:
        plan = await new_plan(web, emulator)
        await web.sign_in(people.approvers[0])
        other = people.approvers[1].id
        status, _ = await decide(web, plan, "approve", approver=other, subject=other, name="Someone else")
        assert status == 303
        [approval] = await approvals_of(web, plan)
        assert approval.approver == people.approvers[0].id
        assert approval.approver_name == people.approvers[0].display_name

    async def test_approving_twice_counts_once(self, web: Web, emulator: EmulatorServer, people: People) -> None:
        plan = await new_plan(web, emulator)
        await web.sign_in(people.approvers[0])
        await decide(web, plan, "approve")
        status, location = await decide(web, plan, "approve")
        assert status == 303
        assert location.endswith("done=repeat")
        assert len(await approvals_of(web, plan)) == 1

    async def test_self_approval_is_refused_and_audited(
        self, web: Web, emulator: EmulatorServer, people: People
    ) -> None:
        requester = people.approvers[0]
        plan = await new_plan(web, emulator, requested_by=requester.id)
        await web.sign_in(requester)
        page = await web.client.get(f"/plans/{plan.id}")
        assert "You requested or own this plan" in page.text
        assert 'name="decision"' not in page.text
        status, body = await decide(web, plan, "approve")
        assert status == 403
        assert "Self-approval is not allowed" in body
        assert await approvals_of(web, plan) == []
        async with web.store() as session:
            actions = (
                await session.execute(select(AuditRecord.action).where(AuditRecord.subject == f"plan:{plan.id}"))
            ).scalars()
            assert "approval.ApprovalRefused" in list(actions)

    async def test_a_person_outside_the_approvers_group_is_refused(
        self, web: Web, emulator: EmulatorServer, people: People
    ) -> None:
        plan = await new_plan(web, emulator)
        await web.sign_in(people.admin)  # no Steward.Approver role: the route refuses before the rules
        status, _ = await decide(web, plan, "approve")
        assert status == 403
        assert await approvals_of(web, plan) == []

    async def test_a_decision_on_an_older_manifest_is_refused(
        self, web: Web, emulator: EmulatorServer, people: People
    ) -> None:
        plan = await new_plan(web, emulator)
        await web.sign_in(people.approvers[0])
        status, body = await decide(web, plan, "approve", manifest_hash="0" * 64)
        assert status == 409
        assert "The plan changed" in body
        assert await approvals_of(web, plan) == []

    async def test_approving_needs_the_reviewed_box_and_the_csrf_token(
        self, web: Web, emulator: EmulatorServer, people: People
    ) -> None:
        plan = await new_plan(web, emulator)
        await web.sign_in(people.approvers[0])
        token = await web.csrf(f"/plans/{plan.id}")
        base = {"decision": "approve", "manifest_hash": plan.manifest_hash}
        unticked = await web.client.post(f"/plans/{plan.id}/decision", data=base | {"csrf_token": token})
        assert unticked.status_code == 400
        no_token = await web.client.post(f"/plans/{plan.id}/decision", data=base | {"reviewed": "true"})
        assert no_token.status_code == 400
        assert await approvals_of(web, plan) == []

    async def test_a_reject_cancels_the_plan(self, web: Web, emulator: EmulatorServer, people: People) -> None:
        plan = await new_plan(web, emulator)
        await web.sign_in(people.approver_legal)
        token = await web.csrf(f"/plans/{plan.id}")
        response = await web.client.post(
            f"/plans/{plan.id}/decision",
            data={"csrf_token": token, "decision": "reject", "manifest_hash": plan.manifest_hash},
        )
        assert response.status_code == 303
        assert await status_of(web, plan) == PlanStatus.rejected
        page = await web.client.get(response.headers["location"])
        assert "You rejected this plan" in page.text
        assert "takes no more decisions" in page.text


class TestExclusion:
    async def item(self, web: Web, plan: DeletionPlan, ordinal: int) -> PlanItem:
        async with web.store() as session:
            return (
                await session.execute(select(PlanItem).where(PlanItem.plan_id == plan.id, PlanItem.ordinal == ordinal))
            ).scalar_one()

    async def test_an_admin_excludes_an_item_and_approvals_are_voided(
        self, web: Web, emulator: EmulatorServer, people: People
    ) -> None:
        plan = await new_plan(web, emulator)
        await web.sign_in(people.approvers[0])
        await decide(web, plan, "approve")
        target = await self.item(web, plan, 1)
        await web.sign_in(people.admin)
        token = await web.csrf(f"/plans/{plan.id}")
        response = await web.client.post(
            f"/plans/{plan.id}/items/{target.id}/exclude",
            data={"csrf_token": token, "reason": "contract evidence the customer asked us to keep"},
        )
        assert response.status_code == 303
        excluded = await self.item(web, plan, 1)
        assert excluded.action == "exclude"
        assert excluded.exclusion_detail == "contract evidence the customer asked us to keep"
        [approval] = await approvals_of(web, plan)
        assert approval.voided_at is not None
        async with web.store() as session:
            changed = await session.get(DeletionPlan, plan.id, populate_existing=True)
            assert changed is not None
            assert changed.manifest_hash != plan.manifest_hash
            cards = (await session.execute(select(OutboxMessage.key))).scalars().all()
            assert f"plan:{plan.id}:card:v2" in cards

    @pytest.mark.parametrize("who", ["approvers", "auditor", "legal"])
    async def test_only_admins_exclude(self, web: Web, emulator: EmulatorServer, people: People, who: str) -> None:
        plan = await new_plan(web, emulator)
        person = getattr(people, who)
        user: User = person[0] if isinstance(person, tuple) else person
        await web.sign_in(user)
        target = await self.item(web, plan, 1)
        token = await web.csrf(f"/plans/{plan.id}")
        response = await web.client.post(
            f"/plans/{plan.id}/items/{target.id}/exclude", data={"csrf_token": token, "reason": "keep"}
        )
        assert response.status_code == 403
        assert (await self.item(web, plan, 1)).action == "delete"

    async def test_the_exclude_form_is_offered_to_admins(
        self, web: Web, emulator: EmulatorServer, people: People
    ) -> None:
        plan = await new_plan(web, emulator)
        await web.sign_in(people.admin)
        page = await web.client.get(f"/plans/{plan.id}")
        assert len(re.findall(r"/items/\d+/exclude", page.text)) == 3  # the three items to delete

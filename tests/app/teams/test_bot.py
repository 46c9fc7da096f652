"""The approval bot end to end against the local tenant's Teams: Steward's whole FastAPI app over HTTPS with the
Teams SDK mounted, the card posted through the Bot Connector by the outbox relay, buttons pressed by the
emulator exactly as Teams delivers them (signed by the Bot Framework channel), forged presses refused."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from sqlalchemy import select

from app.main import create_app
from app.models import Approval, AuditRecord, DeletionPlan, PlanStatus, TriggerKind
from app.plans.service import PlanRequest, Requester, build_plan
from app.teams.sender import BotSender, WebhookSender
from emulator.teams import conversation_activities, teams_config, workflow_posts
from tests.app.plans.support import LiveDeletion, approvers, customer_by_profile, open_live_deletion
from tests.emulator.test_teams import FORGERIES, HttpsApp

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[4] / "shared" / "reference" / "adaptive-card-1.5.schema.json").read_text()
)
SCHEDULER = Requester("service:scheduler", "Steward scheduler", is_service=True)


def assert_valid(card: dict[str, Any]) -> None:
    validator = jsonschema.validators.validator_for(SCHEMA)(SCHEMA)
    assert [error.message for error in validator.iter_errors(card)] == []


async def pending_plan(deletion: LiveDeletion) -> DeletionPlan:
    customer = customer_by_profile(deletion.tenant, "silent")
    async with deletion.store.sessionmaker() as session, session.begin():
        return await build_plan(
            session,
            deletion.runtime.context(),
            PlanRequest(TriggerKind.inactivity, (customer,), SCHEDULER, reason="inactive"),
            dry_run=False,
        )


@pytest.fixture
def bot_server(deletion: LiveDeletion, monkeypatch: pytest.MonkeyPatch) -> Iterator[HttpsApp]:
    # The Teams SDK fetches the channel's keys with urllib, which trusts what SSL_CERT_FILE names.
    monkeypatch.setenv("SSL_CERT_FILE", deletion.live.endpoints.ca_bundle)
    api = create_app(deletion.runtime.settings)
    with HttpsApp(api, lifespan="on") as server:
        yield server


async def press(deletion: LiveDeletion, server: HttpsApp, **body: Any) -> dict[str, Any]:
    payload = {"bot_endpoint": f"{server.url}/api/messages", "ca_bundle": server.ca_bundle, **body}
    async with httpx.AsyncClient(verify=deletion.live.endpoints.ca_bundle, timeout=60) as client:
        response = await client.post(f"{deletion.live.endpoints.control_url}/teams/invoke", json=payload)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def approvals_of(deletion: LiveDeletion, plan_id: str) -> list[tuple[str, str]]:
    async with deletion.store.sessionmaker() as session:
        rows = (await session.execute(select(Approval).where(Approval.plan_id == plan_id))).scalars().all()
        return [(row.approver, row.decision) for row in rows]


async def status_of(deletion: LiveDeletion, plan_id: str) -> str:
    async with deletion.store.sessionmaker() as session:
        plan = await session.get(DeletionPlan, plan_id)
        assert plan is not None
        return plan.status


async def test_card_reaches_teams_and_two_approvers_approve_through_the_bot(
    deletion: LiveDeletion, bot_server: HttpsApp
) -> None:
    tenant = deletion.tenant
    config = teams_config(tenant, deletion.live.endpoints.base_url)
    plan = await pending_plan(deletion)
    assert isinstance(deletion.runtime.cards, BotSender)

    report = await deletion.runtime.relay().run_once()

    assert len(report.sent) == 1
    (posted,) = conversation_activities(tenant, config["channel_conversation_id"])
    card = posted["activity"]["attachments"][0]["content"]
    assert_valid(card)
    assert [a["verb"] for a in card["actions"] if a["type"] == "Action.Execute"] == ["approve", "reject"]
    data = {"plan_id": plan.id, "manifest_hash": plan.manifest_hash}
    first, second = approvers(tenant)[:2]
    outsider = tenant.staff[0]  # the admin: staff, but not in the approvers group

    for forge in FORGERIES:
        refused = await press(
            deletion, bot_server, user_id=first.id, verb="approve", data=data, activity_id=posted["id"], forge=forge
        )
        assert refused["status"] == 401, forge
    assert await approvals_of(deletion, plan.id) == []
    async with deletion.store.sessionmaker() as session:
        refusals = (
            (await session.execute(select(AuditRecord).where(AuditRecord.action == "teams.invoke_refused")))
            .scalars()
            .all()
        )
    assert len(refusals) == len(FORGERIES)

    outsider_press = await press(
        deletion, bot_server, user_id=outsider.id, verb="approve", data=data, activity_id=posted["id"]
    )
    assert outsider_press["status"] == 200
    assert "approvers group" in json.dumps(outsider_press["body"])
    assert await approvals_of(deletion, plan.id) == []

    one = await press(deletion, bot_server, user_id=first.id, verb="approve", data=data, activity_id=posted["id"])
    again = await press(deletion, bot_server, user_id=first.id, verb="approve", data=data, activity_id=posted["id"])
    two = await press(deletion, bot_server, user_id=second.id, verb="approve", data=data, activity_id=posted["id"])

    for answer in (one, again, two):
        assert answer["status"] == 200
        assert answer["body"]["type"] == "application/vnd.microsoft.card.adaptive"
        assert_valid(answer["body"]["value"])
    facts = {f["title"]: f["value"] for f in one["body"]["value"]["body"][2]["facts"]}
    assert facts["Approvals"] == "1 of 2"
    assert [a["title"] for a in two["body"]["value"]["actions"]] == ["Review"]
    assert sorted(await approvals_of(deletion, plan.id)) == sorted(
        [(first.id.lower(), "approve"), (second.id.lower(), "approve")]
    )
    assert await status_of(deletion, plan.id) == PlanStatus.approved

    await deletion.runtime.relay().run_once()
    (updated,) = conversation_activities(tenant, config["channel_conversation_id"])
    assert updated["revision"] > posted["revision"]
    assert_valid(updated["activity"]["attachments"][0]["content"])
    assert "Approved" in json.dumps(updated["activity"]["attachments"][0]["content"])


async def test_a_stale_card_or_a_reject_through_the_bot(deletion: LiveDeletion, bot_server: HttpsApp) -> None:
    tenant = deletion.tenant
    plan = await pending_plan(deletion)
    await deletion.runtime.relay().run_once()
    first = approvers(tenant)[0]

    stale = await press(
        deletion, bot_server, user_id=first.id, verb="approve", data={"plan_id": plan.id, "manifest_hash": "0" * 64}
    )
    rejected = await press(
        deletion,
        bot_server,
        user_id=first.id,
        verb="reject",
        data={"plan_id": plan.id, "manifest_hash": plan.manifest_hash},
    )

    assert "plan changed" in json.dumps(stale["body"])
    assert rejected["status"] == 200
    assert await status_of(deletion, plan.id) == PlanStatus.rejected


async def test_without_a_bot_the_card_goes_to_the_workflows_webhook_with_links_only(live: Any, tmp_path: Path) -> None:
    config = teams_config(live.tenant, live.endpoints.base_url)
    deletion = await open_live_deletion(live, tmp_path, teams_bot_app_id="", teams_webhook_url=config["webhook_url"])
    try:
        assert isinstance(deletion.runtime.cards, WebhookSender)
        plan = await pending_plan(deletion)

        report = await deletion.runtime.relay().run_once()

        assert len(report.sent) == 1
        (post,) = workflow_posts(live.tenant)
        assert post["warnings"] == []
        (card,) = post["cards"]
        assert_valid(card)
        assert {action["type"] for action in card["actions"]} == {"Action.OpenUrl"}
        assert any(plan.id in action["url"] and "decision=approve" in action["url"] for action in card["actions"])
    finally:
        await deletion.runtime.aclose()

"""The deletion API with real Entra sign-ins from the local tenant: triggers, manifests, decisions on the web."""

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select

from app.config import Settings
from app.db.engine import create_sessionmaker
from app.models import Task, TriggerKind
from app.plans.context import DeletionContext
from app.plans.service import PlanRequest, Requester, build_plan
from app.policy import default_policy
from emulator.server import EmulatorServer
from emulator.state import Tenant, User
from tests.app.apps import RunningApp, app_settings
from tests.app.auth.flows import sign_in
from tests.app.customers.conftest import api_emulator, api_tenant
from tests.app.plans.support import FixedHolds, ListDataMap, import_customers, mapped
from tests.conftest import Database, migrate

__all__ = ["api_emulator", "api_tenant"]


def approver_users(tenant: Tenant) -> list[User]:
    return [user for user in tenant.staff if "Steward.Approver" in user.steward_roles]


async def token_for(emulator: EmulatorServer, user: User) -> dict[str, str]:
    assert user.password is not None
    return {"Authorization": f"Bearer {await sign_in(emulator.endpoints, user.user_principal_name, user.password)}"}


@pytest.fixture
async def api(
    api_emulator: EmulatorServer, empty_database: Database
) -> AsyncIterator[tuple[httpx.AsyncClient, Settings, Database]]:
    await migrate(empty_database)
    endpoints = api_emulator.endpoints
    settings = app_settings(
        tenant_id=endpoints.tenant_id,
        authority_host=endpoints.base_url,
        ca_bundle=endpoints.ca_bundle,
        api_audience=[endpoints.web_client_id],
        approvers=[user.id for user in approver_users(api_emulator.tenant)],
    )
    engine = empty_database.engine()
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            await import_customers(session, api_emulator.tenant)
    finally:
        await engine.dispose()
    async with RunningApp(settings, empty_database) as client:
        yield client, settings, empty_database


async def a_plan(settings: Settings, database: Database, requester: Requester) -> tuple[str, str]:
    ctx = DeletionContext(
        settings=settings,
        policy=default_policy(),
        external_holds=FixedHolds(),
        datamap=ListDataMap([mapped("f1", "C0001"), mapped("m1", "C0001", kind="message")]),
    )
    engine = database.engine()
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            plan = await build_plan(
                session,
                ctx,
                PlanRequest(TriggerKind.company_decision, ("C0001",), requester, reason="ended"),
                dry_run=False,
            )
            return plan.id, plan.manifest_hash
    finally:
        await engine.dispose()


async def test_two_approvers_approve_on_the_web_and_the_requester_cannot(
    api: tuple[httpx.AsyncClient, Settings, Database], api_emulator: EmulatorServer
) -> None:
    client, settings, database = api
    first, second, third = approver_users(api_emulator.tenant)[:3]
    plan_id, manifest = await a_plan(settings, database, Requester(third.id, third.display_name))
    decide = f"/v1/plans/{plan_id}/decisions"

    own = await client.post(
        decide, json={"manifest_hash": manifest, "decision": "approve"}, headers=await token_for(api_emulator, third)
    )
    stale = await client.post(
        decide, json={"manifest_hash": "0" * 64, "decision": "approve"}, headers=await token_for(api_emulator, first)
    )
    one = await client.post(
        decide, json={"manifest_hash": manifest, "decision": "approve"}, headers=await token_for(api_emulator, first)
    )
    two = await client.post(
        decide, json={"manifest_hash": manifest, "decision": "approve"}, headers=await token_for(api_emulator, second)
    )

    assert own.status_code == 403
    assert "self-approval" in own.json()["detail"]
    assert stale.status_code == 409
    assert one.json() == {
        "plan_id": plan_id,
        "status": "pending_approval",
        "approvals": 1,
        "required": 2,
        "counted": True,
    }
    assert two.json()["status"] == "approved"
    read = await client.get(f"/v1/plans/{plan_id}", headers=await token_for(api_emulator, first))
    assert sorted(a["approver"] for a in read.json()["approvals"]) == sorted([first.id.lower(), second.id.lower()])


async def test_roles_and_bad_input_are_refused_with_clear_errors(
    api: tuple[httpx.AsyncClient, Settings, Database], api_emulator: EmulatorServer
) -> None:
    client, settings, database = api
    admin = next(user for user in api_emulator.tenant.staff if user.steward_roles == {"Steward.Admin"})
    plan_id, manifest = await a_plan(settings, database, Requester(admin.id, admin.display_name))
    admin_headers = await token_for(api_emulator, admin)

    not_an_approver = await client.post(
        f"/v1/plans/{plan_id}/decisions", json={"manifest_hash": manifest, "decision": "approve"}, headers=admin_headers
    )
    unsigned = await client.post(
        f"/v1/plans/{plan_id}/decisions", json={"manifest_hash": manifest, "decision": "approve"}
    )
    approver_headers = await token_for(api_emulator, approver_users(api_emulator.tenant)[0])
    malformed = await client.post(
        f"/v1/plans/{plan_id}/decisions",
        json={"manifest_hash": "x", "decision": "maybe", "approver": "me"},
        headers=approver_headers,
    )
    unknown = await client.get(f"/v1/plans/{'0' * 32}", headers=admin_headers)

    assert not_an_approver.status_code == 403
    assert unsigned.status_code == 401
    assert malformed.status_code == 422
    assert unknown.status_code == 404
    csv_export = await client.get(f"/v1/plans/{plan_id}/manifest", params={"format": "csv"}, headers=admin_headers)
    assert csv_export.headers["content-type"].startswith("text/csv")
    assert csv_export.text.count("\n") == 3


async def test_a_customer_request_is_recorded_and_queued_for_planning(
    api: tuple[httpx.AsyncClient, Settings, Database], api_emulator: EmulatorServer
) -> None:
    client, _, database = api
    admin = next(user for user in api_emulator.tenant.staff if user.steward_roles == {"Steward.Admin"})
    body = {
        "customer_id": "C0002",
        "requester_name": "Trần Văn Nam",
        "requester_email": "nam@customer.example",
        "identity_check": "signed letter on company paper, verified by phone",
    }

    accepted = await client.post("/v1/deletion-requests", json=body, headers=await token_for(api_emulator, admin))
    unknown = await client.post(
        "/v1/deletion-requests", json={**body, "customer_id": "C9999"}, headers=await token_for(api_emulator, admin)
    )

    assert accepted.status_code == 202
    assert unknown.status_code == 404
    engine = database.engine()
    try:
        async with create_sessionmaker(engine)() as session:
            tasks = (await session.execute(select(Task))).scalars().all()
    finally:
        await engine.dispose()
    assert [(task.kind, task.payload["plan_id"]) for task in tasks] == [("plans.build", accepted.json()["plan_id"])]
    assert tasks[0].payload["details"]["request_id"] == accepted.json()["request_id"]

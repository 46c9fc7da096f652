"""POST /v1/customers/{id}/events with real staff tokens."""

import httpx

from emulator.seed import registry_rows
from emulator.state import Tenant
from tests.app.customers.conftest import StaffTokens


async def test_events_are_recorded_once_and_move_the_activity_clock(
    steward: httpx.AsyncClient, staff_tokens: StaffTokens, api_tenant: Tenant
) -> None:
    admin = await staff_tokens.admin()
    row = registry_rows(api_tenant)[0]
    assert (await steward.post("/v1/customers/import", json=[row], headers=admin)).status_code == 200
    url = f"/v1/customers/{row['id']}/events"
    event = {"kind": "purchase", "occurred_at": "2026-03-01T09:00:00+07:00", "reference": "SO-2026-001"}
    first = await steward.post(url, json=event, headers=admin)
    assert first.status_code == 201, first.text
    assert (first.json()["created"], first.json()["last_activity_kind"]) == (True, "purchase")
    assert first.json()["last_activity_at"] == "2026-03-01T02:00:00Z"
    repeat = await steward.post(url, json=event, headers=admin)
    assert (repeat.status_code, repeat.json()["created"], repeat.json()["event"]["id"]) == (
        200,
        False,
        first.json()["event"]["id"],
    )
    moved = await steward.post(url, json={**event, "occurred_at": "2026-03-02T09:00:00+07:00"}, headers=admin)
    assert moved.status_code == 409


async def test_bad_event_requests_get_4xx(
    steward: httpx.AsyncClient, staff_tokens: StaffTokens, api_tenant: Tenant
) -> None:
    admin = await staff_tokens.admin()
    row = registry_rows(api_tenant)[0]
    await steward.post("/v1/customers/import", json=[row], headers=admin)
    url = f"/v1/customers/{row['id']}/events"
    naive = await steward.post(url, json={"kind": "purchase", "occurred_at": "2026-03-01T09:00:00"}, headers=admin)
    assert naive.status_code == 422
    unknown_kind = await steward.post(url, json={"kind": "lunch", "occurred_at": "2026-03-01T09:00:00Z"}, headers=admin)
    assert unknown_kind.status_code == 422
    future = await steward.post(url, json={"kind": "purchase", "occurred_at": "2999-01-01T00:00:00Z"}, headers=admin)
    assert future.status_code == 400
    missing = await steward.post(
        "/v1/customers/C9999/events", json={"kind": "purchase", "occurred_at": "2026-03-01T09:00:00Z"}, headers=admin
    )
    assert missing.status_code == 404
    auditor = await steward.post(
        url, json={"kind": "purchase", "occurred_at": "2026-03-01T09:00:00Z"}, headers=await staff_tokens.auditor()
    )
    assert auditor.status_code == 403

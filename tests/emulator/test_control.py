"""The /_emulator control plane: health, state, request log, profile, faults, key rotation, billing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import jwt
import pytest
from fastapi import APIRouter, Depends, FastAPI

from emulator.app import create_app
from emulator.auth import Caller, require_roles
from emulator.limits import limits_of
from emulator.state import Tenant

BASE = "https://emulator.test"


@pytest.fixture
async def app(tenant: Tenant) -> FastAPI:
    probe = APIRouter()

    @probe.get("/_probe/users")
    async def users_probe(caller: Caller = Depends(require_roles("User.Read.All", workload="directory"))):
        return {"appId": caller.client_id}

    application = create_app(tenant)
    application.state.base_url = BASE
    application.include_router(probe, prefix="/v1.0")
    return application


@pytest.fixture
async def client(app: FastAPI, mint: Callable[..., str]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE, headers={"Authorization": f"Bearer {mint()}"}
    ) as http:
        yield http


def _assert_bad_request(response: httpx.Response, *fragments: str) -> None:
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_request"
    for fragment in fragments:
        assert fragment in body["error_description"]


async def test_health_and_state(client: httpx.AsyncClient, tenant: Tenant):
    health = await client.get("/_emulator/health")
    await client.get("/v1.0/_probe/users")
    state = (await client.get("/_emulator/state")).json()
    assert health.json() == {"status": "ok", "tenantId": tenant.tenant_id}
    counts = state["counts"]
    assert counts["users"] == len(tenant.users)
    assert counts["staff"] == len(tenant.staff)
    assert counts["staff"] + counts["guests"] == counts["users"]
    assert counts["customers"] == len(tenant.customers)
    assert counts["apps"] == 4  # daemon, web, least-privilege reader, Teams bot
    assert counts["sensitivityLabels"] == 4
    assert counts["requestsLogged"] == 1
    assert state["profile"] == "fast"
    assert state["meteredBillingEnabled"] is True


async def test_request_log_filters_and_paging(client: httpx.AsyncClient, tenant: Tenant):
    user = tenant.staff[0]
    for _ in range(3):
        await client.get(f"/v1.0/users/{user.id}/messages")
    await client.post(f"/v1.0/users/{user.id}/sendMail", json={})
    await client.get(f"/v1.0/users/{tenant.staff[1].id}/messages")
    await client.get(f"/{tenant.tenant_id}/v2.0/.well-known/openid-configuration")

    everything = (await client.get("/_emulator/requests")).json()["value"]
    assert len(everything) == 6
    assert [r["seq"] for r in everything] == sorted(r["seq"] for r in everything)
    assert set(everything[0]) >= {"seq", "method", "path", "status", "clientId", "mailbox", "batchId", "requestId"}

    by_mailbox = (await client.get("/_emulator/requests", params={"mailbox": user.user_principal_name})).json()
    assert len(by_mailbox["value"]) == 4
    posts = (await client.get("/_emulator/requests", params={"method": "post"})).json()["value"]
    assert [r["path"] for r in posts] == [f"/v1.0/users/{user.id}/sendMail"]
    graph_only = (await client.get("/_emulator/requests", params={"path_prefix": "/v1.0/"})).json()["value"]
    assert len(graph_only) == 5

    page = (await client.get("/_emulator/requests", params={"top": 4, "path_prefix": "/v1.0/"})).json()
    assert len(page["value"]) == 4
    assert page["nextLink"].startswith(f"{BASE}/_emulator/requests?")
    rest = (await client.get(page["nextLink"])).json()
    assert [r["seq"] for r in rest["value"]] == [graph_only[4]["seq"]]
    assert "nextLink" not in rest
    newer = (await client.get("/_emulator/requests", params={"since": everything[-2]["seq"]})).json()["value"]
    assert newer == everything[-1:]

    assert (await client.delete("/_emulator/requests")).status_code == 204
    assert (await client.get("/_emulator/requests")).json()["value"] == []
    bad = await client.get("/_emulator/requests", params={"top": 0})
    _assert_bad_request(bad, "top")


async def test_profile_presets_and_overrides(client: httpx.AsyncClient, app: FastAPI):
    current = (await client.get("/_emulator/profile")).json()
    assert current["name"] == "fast"
    assert set(current["presets"]) >= {"fast", "realistic"}

    realistic = await client.put("/_emulator/profile", json={"profile": "realistic"})
    assert realistic.status_code == 200
    assert (realistic.json()["latency_ms"], realistic.json()["jitter_ms"]) == (50, 20)
    assert limits_of(app).profile.outlook_limits is True

    tuned = (await client.put("/_emulator/profile", json={"ru_per_minute": 200, "latency_ms": 0})).json()
    assert (tuned["name"], tuned["ru_per_minute"], tuned["outlook_limits"]) == ("custom", 200, True)

    _assert_bad_request(await client.put("/_emulator/profile", json={"profile": "nope"}), "unknown profile")
    _assert_bad_request(await client.put("/_emulator/profile", json={"latency_ms": -5}), "latency_ms")
    _assert_bad_request(await client.put("/_emulator/profile", json={"speed": 3}), "speed")
    _assert_bad_request(await client.put("/_emulator/profile", content=b"[1,2]"), "dictionary")
    assert limits_of(app).profile.ru_per_minute == 200  # rejected updates changed nothing


async def test_faults_lifecycle(client: httpx.AsyncClient):
    created = await client.post("/_emulator/faults", json={"path": "_probe", "status": 503, "on_nth": 1})
    assert created.status_code == 201
    fault = created.json()
    assert fault["id"]
    assert (fault["matched"], fault["fired"]) == (0, 0)
    second = (await client.post("/_emulator/faults", json={"kind": "slow", "delay_ms": 1, "path": "nowhere"})).json()

    assert (await client.get("/v1.0/_probe/users")).status_code == 503
    assert (await client.get("/v1.0/_probe/users")).status_code == 200
    listed = (await client.get("/_emulator/faults")).json()["value"]
    assert [(f["id"], f["matched"], f["fired"]) for f in listed] == [(fault["id"], 2, 1), (second["id"], 0, 0)]

    assert (await client.delete(f"/_emulator/faults/{fault['id']}")).status_code == 204
    missing = await client.delete(f"/_emulator/faults/{fault['id']}")
    assert missing.status_code == 404
    assert [f["id"] for f in (await client.get("/_emulator/faults")).json()["value"]] == [second["id"]]
    assert (await client.delete("/_emulator/faults")).status_code == 204
    assert (await client.get("/_emulator/faults")).json()["value"] == []


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"path": "(unclosed"}, "regular expression"),
        ({"kind": "slow"}, "delay_ms"),
        ({"status": 200}, "status"),
        ({"on_nth": 2, "every": 3}, "cannot be combined"),
        ({"retry_after": "soon"}, "http-date"),
        ({"retry_after": -1}, "negative"),
        ({"method": "FETCH"}, "method"),
        ({"rate": 1.5}, "rate"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_bad_fault_bodies_get_reasons(client: httpx.AsyncClient, body: dict[str, Any], fragment: str):
    _assert_bad_request(await client.post("/_emulator/faults", json=body), fragment)


async def test_key_rotation_keeps_old_tokens_valid(client: httpx.AsyncClient, tenant: Tenant, mint: Callable[..., str]):
    old_kid = tenant.keys.current.kid
    old_token = mint()
    rotated = (await client.post("/_emulator/keys/rotate")).json()
    new_token = mint()
    jwks = (await client.get(f"/{tenant.tenant_id}/discovery/v2.0/keys")).json()
    common = (await client.get("/common/discovery/keys")).json()

    assert rotated["kid"] != old_kid
    assert rotated["published"] == [old_kid, rotated["kid"]]
    assert [k["kid"] for k in jwks["keys"]] == rotated["published"]
    assert [k["kid"] for k in common["keys"]] == rotated["published"]
    assert jwt.get_unverified_header(new_token)["kid"] == rotated["kid"]
    for token in (old_token, new_token):
        response = await client.get("/v1.0/_probe/users", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200


async def test_billing_switch(client: httpx.AsyncClient, tenant: Tenant):
    off = await client.put("/_emulator/billing", json={"metered": False})
    assert off.json() == {"metered": False}
    assert tenant.metered_billing_enabled is False
    assert (await client.get("/_emulator/state")).json()["meteredBillingEnabled"] is False
    _assert_bad_request(await client.put("/_emulator/billing", json={"metered": "sometimes"}), "metered")
    _assert_bad_request(await client.put("/_emulator/billing", json={}), "metered")
    assert tenant.metered_billing_enabled is False

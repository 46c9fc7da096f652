"""Limits, faults and the request log: Outlook concurrency and window, SharePoint resource units, injected faults."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Callable
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from starlette.types import Message

from emulator.app import create_app
from emulator.limits import BATCH_ID_STATE_KEY, FaultSpec, Limits, Profile, limits_of, resource_units
from emulator.server import EmulatorServer
from emulator.state import Tenant

BASE = "https://emulator.test"


class Emulator:
    """An in-process emulator with a probe route and a recorder in place of the limits' sleep."""

    def __init__(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        self.app = app
        self.client = client
        self.limits = limits_of(app)
        self.sleeps: list[float] = []
        self.release = asyncio.Event()
        self.release.set()

        async def recorded_sleep(seconds: float) -> None:
            self.sleeps.append(seconds)
            await self.release.wait()

        self.limits.sleep = recorded_sleep

    def use(self, **fields: Any) -> None:
        self.limits.profile = self.limits.profile_with(None, fields)

    def mailbox_path(self, user_id: str) -> str:
        return f"/v1.0/users/{user_id}/messages"


@pytest.fixture
async def emu(tenant: Tenant, mint: Callable[..., str]) -> AsyncIterator[Emulator]:
    probe = APIRouter()

    @probe.get("/_probe/headers")
    async def headers(request: Request) -> dict[str, Any]:
        return {"names": sorted(request.headers.keys())}

    app = create_app(tenant)
    app.state.base_url = BASE
    app.include_router(probe, prefix="/v1.0")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE, headers={"Authorization": f"Bearer {mint()}"}
    ) as client:
        yield Emulator(app, client)


def _staff(tenant: Tenant, index: int) -> str:
    return tenant.staff[index].id


async def _until(condition: Callable[[], bool]) -> None:
    """Let other tasks run until the condition holds (bounded, so a bug fails instead of hanging)."""
    for _ in range(1_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never became true")


def _in_flight(limits: Limits) -> int:
    return sum(limits.usage()["outlookInFlight"].values())


async def _dispatch_as_batch_item(app: FastAPI, path: str, batch_id: str) -> Message:
    """Run a request the way emulator/batch.py runs a $batch item: through the app, batch id in the scope state."""
    sent: list[Message] = []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "https",
        "server": ("emulator.test", 443),
        "client": ("127.0.0.1", 1),
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"emulator.test"), (b"x-emulator-batch-id", batch_id.encode())],
        "state": {BATCH_ID_STATE_KEY: batch_id},
        "extensions": {},
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]


# Request log -------------------------------------------------------------------------------------------


async def test_request_log_records_graph_and_login_requests(emu: Emulator, tenant: Tenant):
    user = tenant.staff[0]
    response = await emu.client.get(
        f"/v1.0/users/{user.user_principal_name}/messages?$top=1", headers={"client-request-id": "crid-1"}
    )
    await emu.client.get(f"/{tenant.tenant_id}/v2.0/.well-known/openid-configuration")
    await emu.client.get("/_emulator/health")  # the control plane is not logged
    records = list(tenant.request_log)
    assert [r.path for r in records] == [
        f"/v1.0/users/{user.user_principal_name}/messages",
        f"/{tenant.tenant_id}/v2.0/.well-known/openid-configuration",
    ]
    graph, login = records
    assert graph.method == "GET"
    assert "top=1" in graph.query
    assert graph.status == response.status_code
    assert graph.mailbox == user.id  # the UPN in the path is the same mailbox as the id
    assert graph.client_id == tenant.extra["steward_app_id"]
    assert graph.batch_id is None
    assert graph.request_id == response.headers["request-id"]
    assert login.mailbox is None
    assert login.seq > graph.seq


async def test_batch_items_carry_the_batch_id_and_a_forged_header_is_stripped(emu: Emulator, tenant: Tenant):
    forged = await emu.client.get("/v1.0/_probe/headers", headers={"x-emulator-batch-id": "forged"})
    assert "x-emulator-batch-id" not in forged.json()["names"]
    assert tenant.request_log[-1].batch_id is None

    emu.use(latency_ms=500)
    started = await _dispatch_as_batch_item(emu.app, "/v1.0/_probe/headers", "outer-42")
    assert started["status"] == 200
    record = tenant.request_log[-1]
    assert record.batch_id == "outer-42"
    assert emu.sleeps == []  # items pay no latency of their own


# Latency -----------------------------------------------------------------------------------------------


async def test_latency_is_fixed_plus_seeded_jitter(emu: Emulator, tenant: Tenant):
    emu.limits.use_profile("realistic")
    for _ in range(6):
        await emu.client.get("/v1.0/_probe/headers")
    first_run = list(emu.sleeps)
    assert all(0.030 <= s <= 0.070 for s in first_run)
    assert len(set(first_run)) > 1

    # Same tenant seed, fresh app: the same delays.
    replay = Limits(tenant, "realistic")
    delays: list[float] = []

    async def record(seconds: float) -> None:
        delays.append(seconds)

    replay.sleep = record
    for _ in range(6):
        await replay._latency()
    assert delays == first_run


# Outlook -----------------------------------------------------------------------------------------------


async def test_fifth_concurrent_request_on_a_mailbox_is_throttled(emu: Emulator, tenant: Tenant):
    emu.use(outlook_limits=True, latency_ms=200)
    emu.release.clear()  # the latency holds every admitted request open until released
    mailbox, other = _staff(tenant, 0), _staff(tenant, 1)
    held = [asyncio.create_task(emu.client.get(emu.mailbox_path(mailbox))) for _ in range(4)]
    await _until(lambda: _in_flight(emu.limits) == 4)

    fifth = await emu.client.get(emu.mailbox_path(mailbox))
    other_mailbox = asyncio.create_task(emu.client.get(emu.mailbox_path(other)))
    await _until(lambda: _in_flight(emu.limits) == 5)
    emu.release.set()
    statuses = [r.status_code for r in await asyncio.gather(*held, other_mailbox)]

    assert fifth.status_code == 429
    assert fifth.headers["retry-after"] == "1"
    error = fifth.json()["error"]
    assert error["code"] == "ApplicationThrottled"
    assert error["message"] == "Application is over its MailboxConcurrency limit."
    assert error["innerError"]["request-id"] == fifth.headers["request-id"]
    assert 429 not in statuses
    assert _in_flight(emu.limits) == 0
    # The throttled request is in the log too.
    assert [r.status for r in tenant.request_log].count(429) == 1
    assert (await emu.client.get(emu.mailbox_path(mailbox))).status_code != 429


async def test_window_limit_per_app_and_mailbox(emu: Emulator, tenant: Tenant, mint: Callable[..., str]):
    emu.use(outlook_limits=True, outlook_requests_per_window=3, outlook_window_s=600)
    mailbox = _staff(tenant, 0)
    statuses = [(await emu.client.get(emu.mailbox_path(mailbox))).status_code for _ in range(3)]
    throttled = await emu.client.get(f"/v1.0/users/{mailbox}/mailFolders/inbox/messages")
    again = await emu.client.get(emu.mailbox_path(mailbox))
    other_mailbox = await emu.client.get(emu.mailbox_path(_staff(tenant, 1)))
    reader = mint(client_id=tenant.extra["reader_app_id"])
    other_app = await emu.client.get(emu.mailbox_path(mailbox), headers={"Authorization": f"Bearer {reader}"})

    assert 429 not in statuses
    assert throttled.status_code == again.status_code == 429
    assert throttled.json()["error"]["code"] == "TooManyRequests"
    retry_after = throttled.headers["retry-after"]
    assert retry_after.isdigit()
    assert 590 <= int(retry_after) <= 600
    assert other_mailbox.status_code != 429
    assert other_app.status_code != 429


# SharePoint resource units -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "query", "units"),
    [
        ("GET", "/v1.0/drives/d/items/i", "", 1),
        ("GET", "/v1.0/drives/d/items/i/content", "", 1),
        ("GET", "/v1.0/drives/d/root/delta", "token=abc", 1),
        ("GET", "/v1.0/drives/d/root/delta()", "", 2),
        ("GET", "/v1.0/drives/d/root/delta(token='latest')", "", 1),
        ("GET", "/v1.0/drives/d/root/delta", "%24skiptoken=x", 1),
        ("GET", "/v1.0/drives/d/items/i/children", "", 2),
        ("GET", "/v1.0/sites/getAllSites()", "", 2),
        ("DELETE", "/v1.0/drives/d/items/i", "", 2),
        ("POST", "/v1.0/drives/d/items/i/assignSensitivityLabel", "", 2),
        ("GET", "/v1.0/drives/d/items/i/permissions", "", 5),
        ("GET", "/v1.0/drives/d/items/i", "%24expand=permissions", 5),
        ("POST", "/v1.0/drives/d/items/i/invite", "", 5),
    ],
)
def test_resource_unit_costs(method: str, path: str, query: str, units: int):
    assert resource_units(method, path, query) == units


async def test_sharepoint_budget_headers_then_429(emu: Emulator, tenant: Tenant):
    emu.use(sharepoint_limits=True, ru_per_minute=10)
    children = "/v1.0/drives/b!drive/items/root/children"
    responses = [await emu.client.get(children) for _ in range(6)]  # 2 units each
    mail = await emu.client.get(emu.mailbox_path(_staff(tenant, 0)))  # not SharePoint: no units, no headers

    assert [r.status_code == 429 for r in responses] == [False] * 5 + [True]
    assert "ratelimit-limit" not in responses[2].headers  # 6 of 10 units: under 80%
    assert responses[3].headers["ratelimit-limit"] == "10"
    assert responses[3].headers["ratelimit-remaining"] == "2"
    assert responses[4].headers["ratelimit-remaining"] == "0"
    throttled = responses[5]
    assert throttled.json()["error"]["code"] == "activityLimitReached"
    assert throttled.json()["error"]["innerError"]["code"] == "throttledRequest"
    assert 1 <= int(throttled.headers["retry-after"]) <= 60
    assert int(throttled.headers["ratelimit-reset"]) >= 1
    assert mail.status_code != 429
    assert "ratelimit-limit" not in mail.headers


# Faults ------------------------------------------------------------------------------------------------


async def test_on_nth_fires_exactly_once(emu: Emulator):
    fault = emu.limits.add_fault(FaultSpec(path=r"^/v1\.0/_probe/", status=503, on_nth=2))
    statuses = [(await emu.client.get("/v1.0/_probe/headers")).status_code for _ in range(5)]
    assert statuses == [200, 503, 200, 200, 200]
    assert (fault.matched, fault.fired) == (5, 1)


async def test_every_nth_up_to_times(emu: Emulator):
    emu.limits.add_fault(FaultSpec(path="_probe", status=504, every=2, times=2))
    statuses = [(await emu.client.get("/v1.0/_probe/headers")).status_code for _ in range(7)]
    assert statuses == [200, 504, 200, 504, 200, 200, 200]


async def test_rate_is_deterministic_per_seed(tenant: Tenant):
    def pattern() -> list[bool]:
        fault = Limits(tenant).add_fault(FaultSpec(rate=0.5))
        return [fault.fires() for _ in range(40)]

    first = pattern()
    assert first == pattern()
    assert 5 < sum(first) < 35


async def test_method_and_mailbox_filters(emu: Emulator, tenant: Tenant):
    target, other = tenant.staff[0], tenant.staff[1]
    emu.limits.add_fault(FaultSpec(method="get", mailbox=target.user_principal_name, status=503))
    assert (await emu.client.get(emu.mailbox_path(target.id))).status_code == 503
    assert (await emu.client.get(emu.mailbox_path(other.id))).status_code != 503
    assert (await emu.client.post(f"/v1.0/users/{target.id}/sendMail", json={})).status_code != 503


@pytest.mark.parametrize(
    ("retry_after", "check"),
    [
        (3, lambda value: value == "3"),
        (2.128, lambda value: value == "2.128"),
        ("http-date:5", lambda value: 4 <= parsedate_to_datetime(value).timestamp() - time.time() <= 7),
        (None, lambda value: value is None),
    ],
)
async def test_retry_after_forms(emu: Emulator, retry_after: Any, check: Callable[[str | None], bool]):
    emu.limits.add_fault(FaultSpec(status=429, retry_after=retry_after))
    response = await emu.client.get("/v1.0/_probe/headers")
    assert response.status_code == 429
    assert check(response.headers.get("retry-after"))
    body = response.json()["error"]
    assert body["code"] == "TooManyRequests"
    assert body["innerError"]["date"]


async def test_login_paths_get_the_entra_error_shape(emu: Emulator, tenant: Tenant):
    emu.limits.add_fault(FaultSpec(path="/oauth2/v2.0/token$", status=503, retry_after=1))
    response = await emu.client.post(f"/{tenant.tenant_id}/oauth2/v2.0/token", data={"grant_type": "x"})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    body = response.json()
    assert body["error"] == "temporarily_unavailable"
    assert body["error_description"].startswith("AADSTS")


async def test_slow_fault_delays_then_answers(emu: Emulator):
    emu.limits.add_fault(FaultSpec(kind="slow", delay_ms=1500, times=1))
    assert (await emu.client.get("/v1.0/_probe/headers")).status_code == 200
    assert emu.sleeps == [1.5]


async def test_reset_in_process_raises_like_a_dropped_connection(emu: Emulator, tenant: Tenant):
    emu.limits.add_fault(FaultSpec(kind="reset", on_nth=1))
    with pytest.raises(httpx.RemoteProtocolError):
        await emu.client.get("/v1.0/_probe/headers")
    assert tenant.request_log[-1].status == 0
    assert (await emu.client.get("/v1.0/_probe/headers")).status_code == 200


async def test_reset_over_https_drops_the_connection(live: EmulatorServer, live_tls: ssl.SSLContext, tenant: Tenant):
    limits_of(live.app).add_fault(FaultSpec(kind="reset", path="openid-configuration", on_nth=1))
    url = f"{live.endpoints.base_url}/{tenant.tenant_id}/v2.0/.well-known/openid-configuration"
    async with httpx.AsyncClient(verify=live_tls) as client:
        with pytest.raises(httpx.RemoteProtocolError, match="without sending"):
            await client.get(url)
        assert (await client.get(url)).status_code == 200
    statuses = [r.status for r in tenant.request_log]
    assert statuses == [0, 200]


async def test_faults_reach_batch_items_but_resets_do_not(emu: Emulator):
    emu.limits.add_fault(FaultSpec(kind="reset"))
    emu.limits.add_fault(FaultSpec(status=429, retry_after=2))
    started = await _dispatch_as_batch_item(emu.app, "/v1.0/_probe/headers", "outer-7")
    assert started["status"] == 429
    assert (b"retry-after", b"2") in started["headers"]


def test_profiles_validate(tenant: Tenant):
    limits = Limits(tenant)
    assert limits.profile_with("realistic", {}).latency_ms == 50
    custom = limits.profile_with("realistic", {"ru_per_minute": 100})
    assert (custom.name, custom.ru_per_minute, custom.outlook_limits) == ("custom", 100, True)
    with pytest.raises(ValueError, match="unknown profile"):
        limits.profile_with("nope", {})
    with pytest.raises(ValueError, match="latency_ms"):
        limits.profile_with(None, {"latency_ms": -1})
    assert isinstance(limits.use_profile("throttled"), Profile)

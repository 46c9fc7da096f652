"""$batch: the documented validation rules, dependencies, per-item outcomes, and items going through the whole app."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from emulator.app import create_app
from emulator.auth import require_roles
from emulator.batch import batch_records
from emulator.errors import GraphError
from emulator.limits import FaultSpec, limits_of
from emulator.server import EmulatorServer
from emulator.state import Tenant


class Probe:
    """Test-only routes mounted in front of the app's own, recording what the batch made them see."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.in_flight: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.peak_total = 0

    async def enter(self, key: str) -> None:
        self.in_flight[key] = self.in_flight.get(key, 0) + 1
        self.peak[key] = max(self.peak.get(key, 0), self.in_flight[key])
        self.peak_total = max(self.peak_total, sum(self.in_flight.values()))
        # Overlap the requests long enough for the scheduler to start every one that is allowed to run.
        await asyncio.sleep(0.02)
        self.in_flight[key] -= 1


def install_probe(app: FastAPI, probe: Probe) -> None:
    async def status(code: int, request: Request) -> Response:
        probe.calls.append(f"status/{code}")
        if code == 204:
            return Response(status_code=204)
        if code >= 400:
            raise GraphError(code, "Injected", f"status {code}", headers={"Retry-After": "3"} if code == 429 else None)
        return JSONResponse({"status": code})

    async def echo(request: Request) -> dict[str, Any]:
        raw = await request.body()
        return {
            "method": request.method,
            "query": dict(request.query_params),
            "contentType": request.headers.get("content-type"),
            "body": base64.b64encode(raw).decode(),
            "authorized": request.headers.get("authorization", "").startswith("Bearer "),
            "consistency": request.headers.get("consistencylevel"),
            "batchState": request.state._state.get("emulator_batch_id"),
        }

    async def binary() -> Response:
        return Response(b"\x00\x01binary", media_type="application/octet-stream")

    async def mailbox_probe(user_id: str) -> dict[str, str]:
        await probe.enter(user_id)
        return {"mailbox": user_id}

    async def other_probe(index: int) -> dict[str, int]:
        await probe.enter(f"other-{index}")
        return {"index": index}

    async def needs_mail(caller: Any = Depends(require_roles("Mail.Read", "Mail.ReadWrite", workload="mail"))) -> dict:
        return {"ok": True}

    async def step(name: str) -> dict[str, str]:
        probe.calls.append(name)
        await asyncio.sleep(0)
        return {"step": name}

    specs: list[tuple[str, Callable[..., Any], list[str]]] = [
        ("/v1.0/_test/status/{code}", status, ["GET", "POST", "DELETE"]),
        ("/v1.0/_test/echo", echo, ["GET", "POST", "PATCH"]),
        ("/v1.0/_test/binary", binary, ["GET"]),
        ("/v1.0/users/{user_id}/messages/_probe", mailbox_probe, ["GET"]),
        ("/v1.0/_test/other/{index}", other_probe, ["GET"]),
        ("/v1.0/_test/mail", needs_mail, ["GET"]),
        ("/v1.0/_test/step/{name}", step, ["GET"]),
    ]
    for path, endpoint, methods in specs:
        app.router.routes.insert(0, APIRoute(path, endpoint, methods=methods))


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
def app(tenant: Tenant, probe: Probe) -> FastAPI:
    app = create_app(tenant)
    app.state.base_url = "https://emulator.test"
    install_probe(app, probe)
    return app


@pytest.fixture
async def client(app: FastAPI, mint: Callable[..., str]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="https://emulator.test/v1.0",
        headers={"Authorization": f"Bearer {mint()}"},
    ) as http:
        yield http


def get(item_id: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"id": item_id, "method": "GET", "url": url, **extra}


async def batch(client: httpx.AsyncClient, requests: list[dict[str, Any]], **kwargs: Any) -> httpx.Response:
    return await client.post("/$batch", json={"requests": requests}, **kwargs)


def by_id(response: httpx.Response) -> dict[str, dict[str, Any]]:
    assert response.status_code == 200, response.text
    return {item["id"]: item for item in response.json()["responses"]}


def assert_bad_batch(response: httpx.Response, fragment: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "BadRequest"
    assert fragment in error["message"]
    assert set(error["innerError"]) >= {"date", "request-id", "client-request-id"}


# Validation of the batch itself --------------------------------------------------------------------------


async def test_twenty_requests_are_accepted_and_twenty_one_rejected(client: httpx.AsyncClient) -> None:
    twenty = [get(str(i), f"/_test/status/200?i={i}") for i in range(20)]
    items = by_id(await batch(client, twenty))
    assert sorted(items, key=int) == [str(i) for i in range(20)]
    assert all(item["status"] == 200 for item in items.values())

    response = await batch(client, [*twenty, get("20", "/_test/status/200")])
    assert_bad_batch(response, "limited to 20")


async def test_duplicate_ids_are_rejected_case_insensitively(client: httpx.AsyncClient, probe: Probe) -> None:
    response = await batch(client, [get("abc", "/_test/status/200"), get("ABC", "/_test/status/200")])
    assert_bad_batch(response, "has to be unique in a batch")
    assert probe.calls == []  # nothing of a rejected batch runs


@pytest.mark.parametrize(
    ("item", "fragment"),
    [
        ({"method": "GET", "url": "/_test/echo"}, "'id'"),
        ({"id": "1", "url": "/_test/echo"}, "method"),
        ({"id": "1", "method": "FETCH", "url": "/_test/echo"}, "method"),
        ({"id": "1", "method": "GET"}, "url"),
        ({"id": "1", "method": "GET", "url": "https://graph.microsoft.com/v1.0/users"}, "Invalid batch payload"),
        ({"id": "1", "method": "POST", "url": "/_test/echo", "body": {"a": 1}}, "does not contain Content-Type"),
        ({"id": "1", "method": "POST", "url": "/_test/echo"}, "does not contain Content-Type"),
        ({"id": "1", "method": "GET", "url": "/_test/echo", "headers": ["x"]}, "headers"),
        ({"id": "1", "method": "GET", "url": "/_test/echo", "dependsOn": "0"}, "Invalid dependency"),
        (
            {"id": "1", "method": "POST", "url": "/_test/echo", "body": "***", "headers": {"Content-Type": "a/b"}},
            "neither a JSON object nor base64",
        ),
    ],
)
async def test_malformed_items_reject_the_whole_batch(
    client: httpx.AsyncClient, item: dict[str, Any], fragment: str
) -> None:
    assert_bad_batch(await batch(client, [item]), fragment)


@pytest.mark.parametrize("payload", [b"not json", b"[]", b'{"requests": []}', b'{"requests": {}}', b'{"other": 1}'])
async def test_malformed_payloads_are_400(client: httpx.AsyncClient, payload: bytes) -> None:
    response = await client.post("/$batch", content=payload, headers={"Content-Type": "application/json"})
    assert_bad_batch(response, "Invalid batch payload format")


@pytest.mark.parametrize(
    ("requests", "fragment"),
    [
        ([get("1", "/_test/step/a", dependsOn=["9"])], "Invalid dependency for request Id 1"),
        ([get("1", "/_test/step/a", dependsOn=["2"]), get("2", "/_test/step/b")], "Invalid dependency"),
        ([get("1", "/_test/step/a", dependsOn=["1"])], "Invalid dependency"),
        (
            [
                get("1", "/_test/step/a"),
                get("2", "/_test/step/b", dependsOn=["1"]),
                get("3", "/_test/step/c"),
                get("4", "/_test/step/d", dependsOn=["3"]),
            ],
            "fully sequential or fully parallel",
        ),
        (
            [get("1", "/_test/step/a"), get("2", "/_test/step/b"), get("3", "/_test/step/c", dependsOn=["1", "2"])],
            "fully sequential or fully parallel",
        ),
    ],
)
async def test_dependency_rules(client: httpx.AsyncClient, requests: list[dict[str, Any]], fragment: str) -> None:
    assert_bad_batch(await batch(client, requests), fragment)


async def test_the_batch_itself_needs_a_valid_token(app: FastAPI) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://emulator.test") as anon:
        response = await anon.post("/v1.0/$batch", json={"requests": [get("1", "/_test/status/200")]})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"


# Execution ------------------------------------------------------------------------------------------------


async def test_serial_dependencies_run_in_order_and_a_failure_gives_424(
    client: httpx.AsyncClient, probe: Probe
) -> None:
    response = await batch(
        client,
        [
            get("1", "/_test/step/one"),
            get("2", "/_test/status/404", dependsOn=["1"]),
            get("3", "/_test/step/three", dependsOn=["2"]),
            get("4", "/_test/step/four", dependsOn=["3"]),
        ],
    )
    items = by_id(response)
    assert [items[i]["status"] for i in "1234"] == [200, 404, 424, 424]
    assert probe.calls == ["one", "status/404"]  # the dependants never ran
    assert items["3"]["body"]["error"]["code"] == "FailedDependency"
    assert items["2"]["body"]["error"]["code"] == "Injected"


async def test_same_dependency_pattern_runs_everything_after_its_target(
    client: httpx.AsyncClient, probe: Probe
) -> None:
    items = by_id(
        await batch(
            client,
            [
                get("root", "/_test/step/root"),
                get("b", "/_test/step/b", dependsOn=["ROOT"]),
                get("c", "/_test/step/c", dependsOn=["root"]),
            ],
        )
    )
    assert {i: item["status"] for i, item in items.items()} == {"root": 200, "b": 200, "c": 200}
    assert probe.calls == ["root", "b", "c"]


async def test_msgraph_core_depends_on_is_honoured_and_flagged(
    client: httpx.AsyncClient, probe: Probe, tenant: Tenant
) -> None:
    response = await batch(
        client,
        [
            get("1", "/_test/status/500"),
            get("2", "/_test/step/two", depends_on=["1"]),
        ],
    )
    items = by_id(response)
    assert items["2"]["status"] == 424
    assert probe.calls == ["status/500"]
    record = batch_records(tenant)[-1]
    assert record.request_id == response.headers["request-id"]
    assert record.snake_case_depends_on_ids == ("2",)
    assert record.sequential is True

    listed = await client.get("https://emulator.test/_emulator/batch/records")
    assert listed.json()["value"][-1]["snakeCaseDependsOnIds"] == ["2"]


async def test_a_proper_dependson_batch_is_not_flagged(client: httpx.AsyncClient, tenant: Tenant) -> None:
    by_id(await batch(client, [get("1", "/_test/step/a"), get("2", "/_test/step/b", dependsOn=["1"])]))
    assert batch_records(tenant)[-1].snake_case_depends_on_ids == ()


async def test_per_item_errors_statuses_and_bodies(app: FastAPI, mint: Callable[..., str]) -> None:
    # The outer token lacks mail permissions: the item that needs them fails alone, with Outlook's 403.
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="https://emulator.test/v1.0",
        headers={"Authorization": f"Bearer {mint(roles=['User.Read.All'])}"},
    ) as limited:
        items = by_id(
            await batch(
                limited,
                [
                    get("ok", "/_test/status/200"),
                    get("forbidden", "/_test/mail"),
                    get("missing", "/_test/status/404"),
                    get("throttled", "/_test/status/429"),
                    {"id": "gone", "method": "DELETE", "url": "/_test/status/204"},
                    get("blob", "/_test/binary"),
                    get("unknown", "/noSuchSegment"),
                ],
            )
        )
    assert items["ok"] == {
        "id": "ok",
        "status": 200,
        "headers": items["ok"]["headers"],
        "body": {"status": 200},
    }
    assert items["ok"]["headers"]["Content-Type"].startswith("application/json")
    assert items["forbidden"]["status"] == 403
    assert items["forbidden"]["body"]["error"]["code"] == "ErrorAccessDenied"
    assert items["missing"]["status"] == 404
    assert items["throttled"]["status"] == 429
    assert items["throttled"]["headers"]["Retry-After"] == "3"
    assert items["gone"]["status"] == 204
    assert "body" not in items["gone"]
    assert base64.b64decode(items["blob"]["body"]) == b"\x00\x01binary"
    assert items["unknown"]["status"] == 400
    assert "noSuchSegment" in items["unknown"]["body"]["error"]["message"]


async def test_items_carry_the_outer_token_their_own_headers_and_bodies(client: httpx.AsyncClient) -> None:
    items = by_id(
        await batch(
            client,
            [
                {
                    "id": "json",
                    "method": "POST",
                    "url": "/_test/echo?$select=id,subject&$filter=isRead eq false",
                    "headers": {"Content-Type": "application/json", "ConsistencyLevel": "eventual"},
                    "body": {"subject": "Xin chào"},
                },
                {
                    "id": "raw",
                    "method": "PATCH",
                    "url": "_test/echo",
                    "headers": {"Content-Type": "text/plain", "Authorization": "Bearer forged"},
                    "body": base64.b64encode(b"plain bytes").decode(),
                },
            ],
        )
    )
    json_echo = items["json"]["body"]
    assert json_echo["method"] == "POST"
    assert json_echo["query"] == {"$select": "id,subject", "$filter": "isRead eq false"}
    assert json_echo["consistency"] == "eventual"
    assert json.loads(base64.b64decode(json_echo["body"])) == {"subject": "Xin chào"}
    assert json_echo["authorized"] is True
    raw_echo = items["raw"]["body"]
    assert base64.b64decode(raw_echo["body"]) == b"plain bytes"
    assert raw_echo["contentType"] == "text/plain"
    assert raw_echo["authorized"] is True  # the forged item header was replaced by the outer token


async def test_parallel_items_run_concurrently_but_at_most_four_per_mailbox(
    client: httpx.AsyncClient, probe: Probe, tenant: Tenant
) -> None:
    staff = tenant.staff
    first, second = staff[0].id, staff[1].id
    requests = [get(f"a{i}", f"/users/{first}/messages/_probe") for i in range(8)]
    requests += [get(f"b{i}", f"/users/{second}/messages/_probe") for i in range(8)]
    requests += [get(f"o{i}", f"/_test/other/{i}") for i in range(4)]
    items = by_id(await batch(client, requests))
    assert all(item["status"] == 200 for item in items.values())
    assert probe.peak[first] == 4
    assert probe.peak[second] == 4
    assert probe.peak_total > 4  # different mailboxes and other resources overlap


async def test_items_go_through_limits_faults_and_the_request_log(
    client: httpx.AsyncClient, app: FastAPI, tenant: Tenant
) -> None:
    limits_of(app).add_fault(FaultSpec(path="/_test/status/201", status=429, retry_after=7, times=1))
    response = await batch(client, [get("1", "/_test/status/201"), get("2", "/_test/status/200")])
    items = by_id(response)
    assert items["1"]["status"] == 429
    assert items["1"]["headers"]["Retry-After"] == "7"
    assert items["2"]["status"] == 200
    outer_id = response.headers["request-id"]
    with tenant.lock:
        records = [r for r in tenant.request_log if r.batch_id == outer_id]
    assert sorted((r.path, r.status) for r in records) == [
        ("/v1.0/_test/status/200", 200),
        ("/v1.0/_test/status/201", 429),
    ]


async def test_outside_callers_cannot_forge_a_batch_id(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.get("/_test/echo", headers={"x-emulator-batch-id": "forged"})
    assert response.json()["batchState"] is None
    with tenant.lock:
        assert all(r.batch_id != "forged" for r in tenant.request_log)


# A real client over HTTPS ------------------------------------------------------------------------------


async def test_msgraph_core_batch_over_https(tenant: Tenant, mint: Callable[..., str]) -> None:
    """msgraph-core's own BatchRequestContent: per-item statuses survive and its depends_on is honoured.

    msgraph-core 1.5.2 keeps the absolute URL of each item, which Graph refuses ("Invalid batch payload format"),
    so the items are given the relative URL its documentation expects, as callers have to do today.
    """
    from kiota_abstractions.method import Method
    from kiota_abstractions.request_information import RequestInformation
    from msgraph_core.requests.batch_request_content import BatchRequestContent
    from msgraph_core.requests.batch_request_item import BatchRequestItem

    from tests.emulator.test_subscriptions import graph_client

    with EmulatorServer(tenant) as server:
        install_probe(server.app, Probe())
        items = []
        for item_id, path in (("1", "/_test/status/200"), ("2", "/_test/status/404"), ("3", "/_test/step/x")):
            info = RequestInformation()
            info.http_method = Method.GET
            info.url = f"{server.endpoints.graph_url}{path}"
            item = BatchRequestItem(request_information=info, id=item_id)
            item.url = path
            items.append(item)
        items[2].set_depends_on([items[1]])
        async with graph_client(server, mint()) as client:
            result = await client.batch.post(batch_request_content=BatchRequestContent({i.id: i for i in items}))
        statuses = result.get_response_status_codes()
    assert statuses == {"1": 200, "2": 404, "3": 424}
    assert batch_records(tenant)[-1].snake_case_depends_on_ids == ("3",)

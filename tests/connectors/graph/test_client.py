import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import respx
from azure.core.credentials import AccessToken
from kiota_http.middleware.options import RetryHandlerOption

from connectors.base import ConnectorError, NotFound, Throttled
from connectors.graph.client import GraphClient, build_graph_client

GRAPH = "https://graph.example.test/v1.0"


class FakeCredential:
    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken("fake-token", int(time.time()) + 3600)

    async def close(self) -> None:
        pass

    async def __aenter__(self) -> "FakeCredential":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        pass


@pytest.fixture
def credential() -> FakeCredential:
    return FakeCredential()


@pytest.fixture
async def graph(credential: FakeCredential) -> AsyncIterator[GraphClient]:
    client = build_graph_client(
        credential,
        base_url=GRAPH + "/",
        allowed_hosts=["graph.example.test"],
        max_retries=0,
        user_agent="ISV|Steward|Steward/test",
    )
    async with client:
        yield client


@pytest.fixture
def graph_api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=GRAPH) as router:
        yield router


async def test_requests_carry_the_token_the_scope_and_our_user_agent(
    graph: GraphClient, graph_api: respx.MockRouter, credential: FakeCredential
) -> None:
    route = graph_api.get("/users").respond(json={"value": [{"id": "u1"}]})
    request = graph.sdk.users.to_get_request_information()
    assert await graph.get_json(request) == {"value": [{"id": "u1"}]}
    sent = route.calls.last.request
    # No "/v1.0//users": the trailing slash of the configured base URL is dropped.
    assert sent.url.path == "/v1.0/users"
    assert sent.headers["authorization"] == "Bearer fake-token"
    assert sent.headers["user-agent"].startswith("ISV|Steward|Steward/test")
    assert credential.scopes == [("https://graph.microsoft.com/.default",)]


async def test_kiota_models_work_through_the_same_client(graph: GraphClient, graph_api: respx.MockRouter) -> None:
    graph_api.get("/users/u1").respond(json={"id": "u1", "displayName": "Lan Nguyễn"})
    user = await graph.sdk.users.by_user_id("u1").get()
    assert user is not None
    assert user.display_name == "Lan Nguyễn"


async def test_iter_values_follows_next_links(graph: GraphClient, graph_api: respx.MockRouter) -> None:
    graph_api.get("/users", params={"$skiptoken": "p2"}).respond(json={"value": [{"id": "u3"}]})
    graph_api.get("/users").respond(
        json={"value": [{"id": "u1"}, {"id": "u2"}], "@odata.nextLink": f"{GRAPH}/users?$skiptoken=p2"}
    )
    ids = [user["id"] async for user in graph.iter_values(graph.sdk.users.to_get_request_information())]
    assert ids == ["u1", "u2", "u3"]


@pytest.mark.parametrize(
    "next_link", ["https://evil.example.com/v1.0/users?$skiptoken=p2", "http://graph.example.test/v1.0/users"]
)
async def test_next_link_to_another_host_or_scheme_is_refused(
    graph: GraphClient, graph_api: respx.MockRouter, next_link: str
) -> None:
    graph_api.get("/users").respond(json={"value": [{"id": "u1"}], "@odata.nextLink": next_link})
    with pytest.raises(ConnectorError, match="refusing to follow"):
        [user async for user in graph.iter_values(graph.sdk.users.to_get_request_information())]


async def test_graph_errors_become_connector_errors_with_the_request_id(
    graph: GraphClient, graph_api: respx.MockRouter
) -> None:
    graph_api.get("/users/nobody").respond(
        404,
        json={
            "error": {
                "code": "Request_ResourceNotFound",
                "message": "Resource 'nobody' does not exist.",
                "innerError": {"request-id": "req-123", "date": "2026-11-25T10:00:00"},
            }
        },
    )
    with pytest.raises(NotFound) as raised:
        await graph.get_json(graph.sdk.users.by_user_id("nobody").to_get_request_information())
    assert raised.value.code == "Request_ResourceNotFound"
    assert raised.value.request_id == "req-123"
    assert raised.value.status_code == 404


async def test_throttling_keeps_retry_after(graph: GraphClient, graph_api: respx.MockRouter) -> None:
    graph_api.get("/users").respond(
        429,
        headers={"Retry-After": "7", "request-id": "req-9"},
        json={"error": {"code": "TooManyRequests", "message": "Slow down."}},
    )
    with pytest.raises(Throttled) as raised:
        await graph.get_json(graph.sdk.users.to_get_request_information())
    assert raised.value.retry_after_s == 7
    assert raised.value.request_id == "req-9"


async def test_the_sdk_retry_middleware_is_installed(credential: FakeCredential) -> None:
    with respx.mock(base_url=GRAPH) as router:
        route = router.get("/users").mock(
            side_effect=[
                httpx.Response(503, headers={"Retry-After": "1"}, json={"error": {"code": "x", "message": "y"}}),
                httpx.Response(200, json={"value": []}),
            ]
        )
        client = build_graph_client(credential, base_url=GRAPH, allowed_hosts=["graph.example.test"])
        async with client:
            request = client.sdk.users.to_get_request_information()
            request.add_request_options([RetryHandlerOption(delay=0, max_retries=1)])
            assert await client.get_json(request) == {"value": []}
        assert route.call_count == 2


@pytest.mark.parametrize(
    ("base_url", "allowed", "complaint"),
    [
        ("http://graph.example.test/v1.0", ["graph.example.test"], "https"),
        (GRAPH, ["graph.microsoft.com"], "allowed_hosts must include"),
    ],
)
def test_misconfiguration_is_refused(
    credential: FakeCredential, base_url: str, allowed: list[str], complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        build_graph_client(credential, base_url=base_url, allowed_hosts=allowed)

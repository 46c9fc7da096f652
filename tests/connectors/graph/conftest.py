"""Fixtures for the Graph connector: a fake clock, a scripted Graph (httpx.MockTransport), and the local tenant
served over real HTTPS with the connector signed in through the real MSAL credential."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.core.credentials import AccessToken

from connectors.graph.auth import ClientSecret, MsalCredential
from connectors.graph.budget import ThrottleBudget
from connectors.graph.client import GraphClient, build_graph_client
from connectors.graph.connector import GraphConnector
from connectors.graph.park import InMemoryParkStore
from connectors.graph.transport import RetryPolicy, steward_user_agent
from emulator.seed import SeedConfig, build_tenant
from emulator.server import EmulatorServer
from emulator.state import Tenant

GRAPH_HOST = "graph.test"
GRAPH_BASE = f"https://{GRAPH_HOST}/v1.0"
USER_AGENT = steward_user_agent("Contoso Reseller", "0.1.0")


class FakeClock:
    """Time that passes only when someone sleeps: throttling tests run instantly and deterministically."""

    def __init__(self) -> None:
        self.t = 1_000.0
        self.wall = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.t

    def now(self) -> datetime:
        return self.wall + timedelta(seconds=self.t - 1_000.0)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += max(seconds, 0.0)


class FakeCredential:
    """An AsyncTokenCredential that counts token requests and can be told to issue a new token."""

    def __init__(self) -> None:
        self.generation = 1
        self.calls = 0
        self.refreshes = 0

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls += 1
        return AccessToken(f"token-{self.generation}", int(time.time()) + 3600)

    async def refresh(self) -> None:
        self.refreshes += 1
        self.generation += 1

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> FakeCredential:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None


@dataclass
class ScriptedGraph:
    """A fake Graph: a handler per test, every request recorded."""

    handler: Callable[[httpx.Request], httpx.Response]
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)

    def paths(self) -> list[str]:
        return [request.url.path for request in self.requests]


def graph_error(
    status: int, code: str, message: str = "failed", headers: dict[str, str] | None = None
) -> httpx.Response:
    body = {"error": {"code": code, "message": message, "innerError": {"request-id": f"req-{status}-{code}"}}}
    return httpx.Response(status, json=body, headers=headers)


def page(items: list[dict[str, Any]], *, next_link: str | None = None, delta_link: str | None = None) -> httpx.Response:
    body: dict[str, Any] = {"value": items}
    if next_link:
        body["@odata.nextLink"] = next_link
    if delta_link:
        body["@odata.deltaLink"] = delta_link
    return httpx.Response(200, json=body)


def json_body(request: httpx.Request) -> Any:
    return json.loads(request.content)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake_credential() -> FakeCredential:
    return FakeCredential()


@pytest.fixture
def park_store() -> InMemoryParkStore:
    return InMemoryParkStore()


@pytest.fixture
async def mock_graph(
    clock: FakeClock, fake_credential: FakeCredential, park_store: InMemoryParkStore
) -> AsyncIterator[Callable[..., tuple[GraphConnector, ScriptedGraph]]]:
    """`mock_graph(handler, **budget_args)` -> a connector over a scripted Graph, and the script."""
    clients: list[GraphClient] = []

    def build(
        handler: Callable[[httpx.Request], httpx.Response],
        *,
        retry: RetryPolicy | None = None,
        allowed_hosts: tuple[str, ...] = (GRAPH_HOST, "monitor.test", "download.test"),
        **budget_args: Any,
    ) -> tuple[GraphConnector, ScriptedGraph]:
        script = ScriptedGraph(handler)
        client = build_graph_client(
            fake_credential, base_url=GRAPH_BASE, allowed_hosts=[GRAPH_HOST], transport=httpx.MockTransport(script)
        )
        clients.append(client)
        connector = GraphConnector(
            client,
            budget=ThrottleBudget(clock=clock, **budget_args),
            user_agent=USER_AGENT,
            allowed_hosts=list(allowed_hosts),
            park_store=park_store,
            retry=retry,
            token_refresh=fake_credential.refresh,
            clock=clock,
        )
        return connector, script

    yield build
    for client in clients:
        await client.aclose()


# The local tenant over real HTTPS ------------------------------------------------------------------------

SMALL = SeedConfig(
    seed=23,
    customers=6,
    staff=5,
    threads_per_customer=3,
    messages_per_thread=3,
    internal_messages_per_mailbox=4,
    files_per_customer=3,
    internal_files_per_drive=2,
)


@pytest.fixture
def tenant() -> Tenant:
    return build_tenant(SMALL)


@pytest.fixture
def live(tenant: Tenant) -> Iterator[EmulatorServer]:
    with EmulatorServer(tenant) as server:
        yield server


@dataclass
class LiveGraph:
    """The connector signed in to the local tenant, plus what tests need to steer and inspect it."""

    connector: GraphConnector
    credential: MsalCredential
    server: EmulatorServer
    control: httpx.AsyncClient
    clock: FakeClock
    park_store: InMemoryParkStore

    @property
    def tenant(self) -> Tenant:
        return self.server.tenant

    async def fault(self, **spec: Any) -> dict[str, Any]:
        response = await self.control.post("/faults", json=spec)
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def profile(self, **fields: Any) -> None:
        response = await self.control.put("/profile", json=fields)
        assert response.status_code == 200, response.text

    async def requests(self, **filters: Any) -> list[dict[str, Any]]:
        """The emulator's request log (Graph and token requests), following its paging."""
        records: list[dict[str, Any]] = []
        response = await self.control.get("/requests", params={"top": 1000, **filters})
        while True:
            assert response.status_code == 200, response.text
            body = response.json()
            records.extend(body["value"])
            if not body.get("nextLink"):
                return records
            # The nextLink carries its own query; passing params (even empty ones) would replace it.
            response = await self.control.get(body["nextLink"])

    async def clear_requests(self) -> None:
        await self.control.delete("/requests")


@pytest.fixture
async def live_graph(live: EmulatorServer, clock: FakeClock, park_store: InMemoryParkStore) -> AsyncIterator[LiveGraph]:
    """The connector on the emulator: real MSAL sign-in, real msgraph-sdk client, real HTTPS, fake clock for
    the layer's own waits (so Retry-After never costs wall time)."""
    endpoints = live.endpoints
    credential = MsalCredential(
        tenant_id=endpoints.tenant_id,
        client_id=endpoints.client_id,
        credential=ClientSecret(endpoints.client_secret),
        authority_host=endpoints.base_url,
        ca_bundle=Path(endpoints.ca_bundle),
    )
    client = build_graph_client(
        credential, base_url=endpoints.graph_url, allowed_hosts=["127.0.0.1"], ca_bundle=Path(endpoints.ca_bundle)
    )
    connector = GraphConnector(
        client,
        budget=ThrottleBudget(clock=clock),
        user_agent=USER_AGENT,
        allowed_hosts=["127.0.0.1"],
        park_store=park_store,
        token_refresh=credential.force_refresh,
        clock=clock,
    )
    control = httpx.AsyncClient(base_url=endpoints.control_url, verify=endpoints.ca_bundle, timeout=30)
    try:
        yield LiveGraph(connector, credential, live, control, clock, park_store)
    finally:
        await control.aclose()
        await client.aclose()
        await credential.close()

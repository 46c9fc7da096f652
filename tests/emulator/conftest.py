"""Fixtures for the emulator's own tests: a small seeded tenant, in-process and over real HTTPS."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from emulator.app import create_app
from emulator.seed import SeedConfig, build_tenant
from emulator.server import EmulatorServer
from emulator.state import Tenant
from emulator.tokens import app_access_token_claims

SMALL = SeedConfig(
    seed=11,
    customers=6,
    staff=4,
    threads_per_customer=2,
    messages_per_thread=2,
    internal_messages_per_mailbox=2,
    files_per_customer=2,
    internal_files_per_drive=1,
)


@pytest.fixture
def tenant() -> Tenant:
    """A fresh small tenant per test: tests mutate state freely."""
    return build_tenant(SMALL)


@pytest.fixture
def mint(tenant: Tenant) -> Callable[..., str]:
    """Mint a Graph access token as the emulator's token endpoint would, for the given roles."""

    def _mint(roles: list[str] | None = None, client_id: str | None = None, **overrides: Any) -> str:
        app = tenant.apps[client_id or tenant.extra["steward_app_id"]]
        claims = app_access_token_claims(
            tenant_id=tenant.tenant_id,
            client_id=app.client_id,
            app_object_id=app.object_id,
            roles=sorted(app.graph_roles) if roles is None else roles,
        )
        claims.update(overrides)
        return tenant.keys.sign(claims)

    return _mint


@pytest.fixture
async def graph(tenant: Tenant, mint: Callable[..., str]) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client (no socket) for the Graph routes, signed in as Steward's daemon app."""
    app = create_app(tenant)
    app.state.base_url = "https://emulator.test"
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="https://emulator.test/v1.0",
        headers={"Authorization": f"Bearer {mint()}"},
    ) as client:
        yield client


@pytest.fixture
def live(tenant: Tenant) -> Iterator[EmulatorServer]:
    """The emulator served over real HTTPS on 127.0.0.1, for the real Microsoft clients."""
    with EmulatorServer(tenant) as server:
        yield server


@pytest.fixture
def live_tls(live: EmulatorServer) -> ssl.SSLContext:
    """Trusts the live emulator's CA only: REQUESTS_CA_BUNDLE and friends are set on this machine."""
    return ssl.create_default_context(cafile=live.endpoints.ca_bundle)

"""Steward's API on a fresh store, trusting the local tenant's tokens; callers sign in with PKCE as real staff.

Other domains' API tests import these fixtures from here.
"""

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from app.auth.dependencies import ADMIN, AUDITOR, LEGAL
from emulator.seed import SeedConfig, build_tenant
from emulator.server import EmulatorServer
from emulator.state import Tenant
from tests.app.apps import RunningApp, app_settings
from tests.app.auth.flows import sign_in
from tests.conftest import Database, migrate

API_SEED = SeedConfig(
    seed=21,
    customers=6,
    staff=6,
    threads_per_customer=1,
    messages_per_thread=1,
    internal_messages_per_mailbox=1,
    files_per_customer=1,
    internal_files_per_drive=1,
)


@dataclass
class StaffTokens:
    """Access tokens for Steward's API, one sign-in per role for the whole module."""

    tenant: Tenant
    emulator: EmulatorServer
    _cache: dict[str, str] = field(default_factory=dict)

    async def headers(self, role: str) -> dict[str, str]:
        if role not in self._cache:
            user = next(u for u in self.tenant.staff if u.password and u.steward_roles == {role})
            assert user.password is not None
            self._cache[role] = await sign_in(self.emulator.endpoints, user.user_principal_name, user.password)
        return {"Authorization": f"Bearer {self._cache[role]}"}

    async def admin(self) -> dict[str, str]:
        return await self.headers(ADMIN)

    async def auditor(self) -> dict[str, str]:
        return await self.headers(AUDITOR)

    async def legal(self) -> dict[str, str]:
        return await self.headers(LEGAL)


@pytest.fixture(scope="module")
def api_tenant() -> Tenant:
    return build_tenant(API_SEED)


@pytest.fixture(scope="module")
def api_emulator(api_tenant: Tenant) -> Iterator[EmulatorServer]:
    with EmulatorServer(api_tenant) as server:
        yield server


@pytest.fixture(scope="module")
def staff_tokens(api_tenant: Tenant, api_emulator: EmulatorServer) -> StaffTokens:
    return StaffTokens(api_tenant, api_emulator)


@pytest.fixture
async def steward(api_emulator: EmulatorServer, empty_database: Database) -> AsyncIterator[httpx.AsyncClient]:
    """The app on an empty migrated store (its requests really commit), validating the tenant's tokens."""
    await migrate(empty_database)
    endpoints = api_emulator.endpoints
    settings = app_settings(
        tenant_id=endpoints.tenant_id,
        authority_host=endpoints.base_url,
        ca_bundle=endpoints.ca_bundle,
        api_audience=[endpoints.web_client_id],
    )
    async with RunningApp(settings, empty_database) as client:
        yield client

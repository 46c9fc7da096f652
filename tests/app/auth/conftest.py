"""The local tenant over HTTPS, and Steward's app configured to trust its tokens."""

from collections.abc import AsyncIterator, Iterator
from typing import Annotated

import httpx
import pytest
from fastapi import Depends

from app.auth.dependencies import ADMIN, APPROVER, Principal, require_roles
from emulator.seed import SeedConfig, build_tenant
from emulator.server import EmulatorServer
from emulator.state import Tenant, User
from tests.app.apps import RunningApp, app_settings

TINY = SeedConfig(
    seed=21,
    customers=2,
    staff=7,  # the seventh has no Steward role
    threads_per_customer=1,
    messages_per_thread=1,
    internal_messages_per_mailbox=1,
    files_per_customer=1,
    internal_files_per_drive=1,
)


@pytest.fixture(scope="module")
def tenant() -> Tenant:
    return build_tenant(TINY)


@pytest.fixture(scope="module")
def emulator(tenant: Tenant) -> Iterator[EmulatorServer]:
    with EmulatorServer(tenant) as server:
        yield server


def staff_with_roles(tenant: Tenant, roles: set[str]) -> User:
    return next(user for user in tenant.staff if user.password and user.steward_roles == roles)


@pytest.fixture
def admin(tenant: Tenant) -> User:
    return staff_with_roles(tenant, {ADMIN})


@pytest.fixture
def nobody(tenant: Tenant) -> User:
    return staff_with_roles(tenant, set())


@pytest.fixture
async def api(emulator: EmulatorServer) -> AsyncIterator[httpx.AsyncClient]:
    """Steward's app validating tokens against the local tenant, plus two role-protected probe routes."""
    endpoints = emulator.endpoints
    settings = app_settings(
        tenant_id=endpoints.tenant_id,
        authority_host=endpoints.base_url,
        ca_bundle=endpoints.ca_bundle,
        api_audience=[endpoints.web_client_id],
    )
    running = RunningApp(settings)

    async def admins_only(principal: Annotated[Principal, Depends(require_roles(ADMIN))]) -> dict[str, str]:
        return {"subject": principal.subject}

    async def approvers_or_admins(
        principal: Annotated[Principal, Depends(require_roles(APPROVER, ADMIN))],
    ) -> dict[str, str]:
        return {"subject": principal.subject}

    running.app.add_api_route("/v1/probe/admin", admins_only)
    running.app.add_api_route("/v1/probe/approve", approvers_or_admins)
    async with running as client:
        yield client

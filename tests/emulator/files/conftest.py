"""Fixtures for the files area: a customer drive to work on, and msgraph-sdk pointed at the live emulator."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator

import httpx
import pytest
from azure.identity.aio import ClientSecretCredential
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from kiota_http.middleware.options import RetryHandlerOption
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_request_adapter import options as graph_default_options
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory

from emulator.files.store import Drive
from emulator.server import EmulatorServer
from emulator.state import Customer, Tenant


@pytest.fixture
def guest_customer(tenant: Tenant) -> Customer:
    """The first customer with a guest account in the tenant (files on its site are shared with the guest)."""
    return next(c for c in tenant.customers if c.guest_user_ids and c.site_id)


@pytest.fixture
def customer_drive(tenant: Tenant, guest_customer: Customer) -> Drive:
    assert guest_customer.site_id is not None
    site = tenant.files.sites[guest_customer.site_id]
    return tenant.files.drives[site.drive_ids[0]]


@pytest.fixture
async def sdk(live: EmulatorServer) -> AsyncIterator[GraphServiceClient]:
    """GraphServiceClient built as sdk-notes.md section 3 prescribes, signed in with the app's client secret."""
    endpoints = live.endpoints
    credential = ClientSecretCredential(
        endpoints.tenant_id,
        endpoints.client_id,
        endpoints.client_secret,
        authority=endpoints.base_url,
        connection_verify=endpoints.ca_bundle,
    )
    http = httpx.AsyncClient(verify=ssl.create_default_context(cafile=endpoints.ca_bundle), timeout=30, trust_env=False)
    pool = http._transport
    options = dict(graph_default_options)
    options[RetryHandlerOption.get_key()] = RetryHandlerOption(max_retries=0, delay=0)
    http = GraphClientFactory.create_with_default_middleware(client=http, options=options)
    provider = AzureIdentityAuthenticationProvider(
        credential, scopes=["https://graph.microsoft.com/.default"], allowed_hosts=["127.0.0.1"]
    )
    adapter = GraphRequestAdapter(provider, client=http)
    adapter.base_url = endpoints.graph_url.rstrip("/")
    try:
        yield GraphServiceClient(request_adapter=adapter)
    finally:
        await pool.aclose()  # the middleware transport does not close the pool it wraps
        await credential.close()


@pytest.fixture
async def anonymous(live: EmulatorServer) -> AsyncIterator[httpx.AsyncClient]:
    """A plain client with no Authorization header, for pre-authenticated URLs and the control plane."""
    async with httpx.AsyncClient(verify=live.endpoints.ca_bundle, timeout=30, trust_env=False) as client:
        yield client

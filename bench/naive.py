"""What a first msgraph-sdk integration looks like: the baseline Steward is compared with.

GraphServiceClient with the SDK's default middleware (its RetryHandler: 3 retries honouring Retry-After),
azure-identity for the token, one request at a time, default page sizes, Kiota models for every item, and
msgraph-core's PageIterator over each mailbox's messages and each drive's children (folders walked one by one).

On a large tenant this loop takes hours, so it can run on a sample: `sample_mailboxes` of the tenant's mailboxes
(with their OneDrives) and the same share of the SharePoint sites. Mail and file time are then scaled separately
by the ground-truth counts (the loop is sequential, so its time is linear in what it reads); discovery (the user and
site listings) is paid once and not scaled. The result says what was measured and what was extrapolated.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from azure.identity.aio import ClientSecretCredential
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_request_adapter import options as graph_default_options
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory
from msgraph_core.tasks.page_iterator import PageIterator

from bench.tenant import TenantInfo

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


@dataclass(frozen=True)
class NaiveRun:
    mailboxes: int  # mailboxes read
    sites: int  # SharePoint sites read
    messages: int
    files: int
    discovery_s: float
    mail_s: float
    files_s: float
    unhandled_429: int  # 429s the SDK's retry gave up on: what they held was not read

    @property
    def seconds(self) -> float:
        return self.discovery_s + self.mail_s + self.files_s

    @property
    def items(self) -> int:
        return self.messages + self.files


def _sdk(info: TenantInfo) -> tuple[GraphServiceClient, ClientSecretCredential, httpx.AsyncClient]:
    """The SDK as its README builds it, plus the four settings the local tenant needs (sdk-notes.md, section 3)."""
    endpoints = info.endpoints
    credential = ClientSecretCredential(
        endpoints["tenant_id"],
        endpoints["client_id"],
        endpoints["client_secret"],
        authority=info.base_url,
        connection_verify=endpoints["ca_bundle"],
    )
    http = httpx.AsyncClient(verify=ssl.create_default_context(cafile=endpoints["ca_bundle"]), timeout=100)
    http = GraphClientFactory.create_with_default_middleware(client=http, options=dict(graph_default_options))
    auth = AzureIdentityAuthenticationProvider(credential, scopes=[GRAPH_SCOPE], allowed_hosts=["127.0.0.1"])
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = endpoints["graph_url"].rstrip("/")
    return GraphServiceClient(request_adapter=adapter), credential, http


class _Loop:
    def __init__(self, sdk: GraphServiceClient) -> None:
        self.sdk = sdk
        self.unhandled_429 = 0

    async def each(self, first_page: Any, visit: Callable[[Any], None]) -> None:
        """Every item of a collection through PageIterator (its callback must answer True to go on)."""
        if first_page is None or not first_page.value:
            return

        def callback(item: Any) -> bool:
            visit(item)
            return True

        try:
            await PageIterator(first_page, self.sdk.request_adapter).iterate(callback)
        except ODataError as error:
            if error.response_status_code != 429:
                raise
            self.unhandled_429 += 1

    async def get(self, builder: Any, config: RequestConfiguration[Any] | None = None) -> Any:
        try:
            return await builder.get(request_configuration=config)
        except ODataError as error:
            if error.response_status_code != 429:
                raise
            self.unhandled_429 += 1
            return None

    async def messages(self, user_id: str) -> int:
        count = 0

        def visit(_message: Any) -> None:
            nonlocal count
            count += 1

        await self.each(await self.get(self.sdk.users.by_user_id(user_id).messages), visit)
        return count

    async def drive_files(self, drive_id: str) -> int:
        """Walk the drive folder by folder: children of the root, then of each folder found."""
        files = 0
        pending = ["root"]

        def visit(item: Any) -> None:
            nonlocal files
            if item.folder is not None:
                pending.append(item.id)
            elif item.file is not None:
                files += 1

        while pending:
            children = self.sdk.drives.by_drive_id(drive_id).items.by_drive_item_id(pending.pop()).children
            await self.each(await self.get(children), visit)
        return files


async def naive_sync(info: TenantInfo, sample_mailboxes: int | None = None) -> NaiveRun:
    """Read the tenant (or a sample of it, see the module docstring) the naive way."""
    sdk, credential, http = _sdk(info)
    loop = _Loop(sdk)
    try:
        started = time.perf_counter()
        members = RequestConfiguration(
            query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
                filter="userType eq 'Member'", select=["id", "mail"]
            )
        )
        users: list[Any] = []
        await loop.each(await loop.get(sdk.users, members), lambda user: users.append(user) if user.mail else None)
        sites: list[Any] = []
        await loop.each(
            await loop.get(sdk.sites.get_all_sites),
            lambda site: sites.append(site) if "-my.sharepoint.com" not in (site.web_url or "") else None,
        )
        chosen_users = users if sample_mailboxes is None else users[:sample_mailboxes]
        # The same share of the sites as of the mailboxes, spread over the list.
        stride = max(1, round(len(users) / max(1, len(chosen_users))))
        chosen_sites = sites[::stride]
        discovered = time.perf_counter()

        messages = 0
        for user in chosen_users:
            messages += await loop.messages(user.id)
        mail_done = time.perf_counter()

        files = 0
        for user in chosen_users:
            drive = await loop.get(sdk.users.by_user_id(user.id).drive)
            if drive is not None and drive.id:
                files += await loop.drive_files(drive.id)
        for site in chosen_sites:
            drives: list[Any] = []
            await loop.each(await loop.get(sdk.sites.by_site_id(site.id).drives), drives.append)
            for drive in drives:
                files += await loop.drive_files(drive.id)
        finished = time.perf_counter()
    finally:
        await http.aclose()
        await credential.close()
    return NaiveRun(
        mailboxes=len(chosen_users),
        sites=len(chosen_sites),
        messages=messages,
        files=files,
        discovery_s=discovered - started,
        mail_s=mail_done - discovered,
        files_s=finished - mail_done,
        unhandled_429=loop.unhandled_429,
    )


def extrapolated_seconds(run: NaiveRun, *, messages: int, files: int) -> float:
    """The whole tenant's time at the sample's per-item rates (see the module docstring)."""
    mail = run.mail_s * messages / run.messages if run.messages else 0.0
    file_time = run.files_s * files / run.files if run.files else 0.0
    return run.discovery_s + mail + file_time

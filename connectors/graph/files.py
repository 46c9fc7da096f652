"""OneDrive and SharePoint operations: sites, drives, drive delta, download, retention label, delete.

Every request is charged to the tenant's SharePoint resource-unit budget at SharePoint's published costs:
1 RU for a single item, a delta with a token or a download; 2 RU for a list, a delta without a token or a write.
"""

from collections.abc import AsyncIterator, Sequence

from kiota_abstractions.request_information import RequestInformation
from msgraph.generated.drives.item.items.item.delta.delta_request_builder import DeltaRequestBuilder
from msgraph.generated.drives.item.items.item.drive_item_item_request_builder import DriveItemItemRequestBuilder
from msgraph.generated.sites.get_all_sites.get_all_sites_request_builder import GetAllSitesRequestBuilder
from msgraph.graph_service_client import GraphServiceClient

from connectors.base import ConnectorError, NotFound
from connectors.graph.budget import Claim
from connectors.graph.errors import TooLarge
from connectors.graph.models import Drive, DriveItem, ItemRetentionLabel, Site
from connectors.graph.paging import Cursor, DeltaPage, Page, iterate_delta, iterate_pages
from connectors.graph.requests import configured, sharepoint_claims
from connectors.graph.transport import GraphResponse, GraphTransport
from connectors.graph.writes import WriteResult, confirm_absent, write_once

SINGLE_ITEM_RU = 1
COLLECTION_RU = 2
DELTA_WITH_TOKEN_RU = 1
WRITE_RU = 2
DEFAULT_ITEM_FIELDS = (
    "id",
    "name",
    "size",
    "eTag",
    "cTag",
    "file",
    "folder",
    "deleted",
    "parentReference",
    "createdDateTime",
    "lastModifiedDateTime",
    "createdBy",
    "lastModifiedBy",
    "shared",
    "webUrl",
)
DOWNLOAD_CHUNK = 64 * 1024


def _delta_cost(_request: RequestInformation, is_first: bool) -> Sequence[Claim]:
    # The first request of an enumeration has no token (2 RU); every link after it carries one (1 RU).
    return sharepoint_claims(COLLECTION_RU if is_first else DELTA_WITH_TOKEN_RU)


def _list_cost(_request: RequestInformation, _is_first: bool) -> Sequence[Claim]:
    return sharepoint_claims(COLLECTION_RU)


class FileOperations:
    def __init__(self, transport: GraphTransport, sdk: GraphServiceClient) -> None:
        self._transport = transport
        self._sdk = sdk

    def _item(self, drive_id: str, item_id: str) -> DriveItemItemRequestBuilder:
        return self._sdk.drives.by_drive_id(drive_id).items.by_drive_item_id(item_id)

    # Sites and drives --------------------------------------------------------------------------------------

    def sites(self, *, cursor: Cursor | None = None) -> AsyncIterator[Page[Site]]:
        """Every site of the tenant (getAllSites: application permissions only)."""
        query = GetAllSitesRequestBuilder.GetAllSitesRequestBuilderGetQueryParameters(
            select=["id", "name", "displayName", "webUrl"]
        )
        first = self._sdk.sites.get_all_sites.to_get_request_information(configured(query))
        return iterate_pages(self._transport, first, Site, claims=_list_cost, cursor=cursor)

    async def site_drives(self, site_id: str) -> list[Drive]:
        first = self._sdk.sites.by_site_id(site_id).drives.to_get_request_information()
        return [
            drive
            async for page in iterate_pages(self._transport, first, Drive, claims=_list_cost)
            for drive in page.items
        ]

    async def user_drive(self, user_id: str) -> Drive | None:
        """The user's OneDrive, or None when it was never provisioned."""
        request = self._sdk.users.by_user_id(user_id).drive.to_get_request_information()
        try:
            response = await self._transport.send(request, claims=sharepoint_claims(SINGLE_ITEM_RU))
        except NotFound:
            return None
        return response.parse(Drive)

    def drive_delta(
        self, drive_id: str, *, cursor: Cursor | None = None, select: Sequence[str] = DEFAULT_ITEM_FIELDS
    ) -> AsyncIterator[DeltaPage[DriveItem]]:
        """Pages of drive changes (deleted items carry the `deleted` facet); see paging.py for the contract."""
        builder = self._item(drive_id, "root").delta

        def initial() -> RequestInformation:
            query = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(select=list(select))
            return builder.to_get_request_information(configured(query))

        return iterate_delta(self._transport, initial, DriveItem, claims=_delta_cost, cursor=cursor)

    # Items -------------------------------------------------------------------------------------------------

    async def get_item(self, drive_id: str, item_id: str, *, select: Sequence[str] = DEFAULT_ITEM_FIELDS) -> DriveItem:
        query = DriveItemItemRequestBuilder.DriveItemItemRequestBuilderGetQueryParameters(select=list(select))
        request = self._item(drive_id, item_id).to_get_request_information(configured(query))
        response = await self._transport.send(request, claims=sharepoint_claims(SINGLE_ITEM_RU))
        return response.parse(DriveItem)

    async def item_exists(self, drive_id: str, item_id: str) -> bool:
        try:
            await self.get_item(drive_id, item_id, select=("id",))
        except NotFound:
            return False
        return True

    async def download(self, drive_id: str, item_id: str, *, max_bytes: int) -> AsyncIterator[bytes]:
        """Stream the file's content in chunks; TooLarge before reading past `max_bytes` (declared or actual)."""
        item = await self.get_item(drive_id, item_id, select=("id", "size", "file", "@microsoft.graph.downloadUrl"))
        if item.size is not None and item.size > max_bytes:
            raise TooLarge(f"file {item_id} is {item.size} bytes, over the {max_bytes}-byte cap")
        response = await self._open_content(drive_id, item, max_bytes)
        stream = response.stream
        if stream is None:
            raise ConnectorError(f"the content of {item_id} answered HTTP {response.status} without a body to read")
        read = 0
        try:
            async for chunk in stream.aiter_bytes(DOWNLOAD_CHUNK):
                read += len(chunk)
                if read > max_bytes:
                    raise TooLarge(f"file {item_id} sent more than the {max_bytes}-byte cap")
                yield chunk
        finally:
            await stream.aclose()

    async def _open_content(self, drive_id: str, item: DriveItem, max_bytes: int) -> GraphResponse:
        claims = sharepoint_claims(SINGLE_ITEM_RU)
        if item.download_url:
            # Pre-authenticated and short-lived: sent without our token, and only to an allowed host.
            return await self._transport.send_unauthenticated("GET", item.download_url, claims=claims, stream=True)
        request = self._item(drive_id, item.id).content.to_get_request_information()
        response = await self._transport.send_streamed(request, claims=claims)
        location = response.headers.get("location")
        if response.status in (301, 302, 303, 307, 308) and location:
            if response.stream is not None:
                await response.stream.aclose()
            return await self._transport.send_unauthenticated("GET", location, claims=claims, stream=True)
        return response

    async def retention_label(self, drive_id: str, item_id: str) -> ItemRetentionLabel | None:
        """The item's retention label (explicit or inherited), or None when it has none."""
        request = self._item(drive_id, item_id).retention_label.to_get_request_information()
        try:
            response = await self._transport.send(request, claims=sharepoint_claims(SINGLE_ITEM_RU))
        except NotFound:
            return None
        label = response.parse(ItemRetentionLabel)
        return label if label.name else None

    async def delete(self, drive_id: str, item_id: str, *, etag: str | None = None) -> WriteResult:
        """Move to the recycle bin. With `etag`, a changed item answers 412 (PreconditionFailed) and is kept."""
        request = self._item(drive_id, item_id).to_delete_request_information()
        if etag:
            request.headers["If-Match"] = etag
        try:
            response = await self._transport.send(request, claims=sharepoint_claims(WRITE_RU))
        except NotFound as error:
            return await confirm_absent(lambda: self._absent(drive_id, item_id), error, what=f"delete {item_id}")
        return WriteResult("applied", client_request_id=response.client_request_id, request_id=response.request_id)

    async def permanent_delete(self, drive_id: str, item_id: str, *, etag: str | None = None) -> WriteResult:
        """Delete for good (no recycle bin). Never replayed blindly: an ambiguous failure is settled by a GET."""
        request = self._item(drive_id, item_id).permanent_delete.to_post_request_information()
        if etag:
            request.headers["If-Match"] = etag
        what = f"permanentDelete {item_id}"
        try:
            return await write_once(
                lambda: self._transport.send(request, claims=sharepoint_claims(WRITE_RU), idempotent=False),
                lambda: self._absent(drive_id, item_id),
                what=what,
            )
        except NotFound as error:
            return await confirm_absent(lambda: self._absent(drive_id, item_id), error, what=what)

    async def _absent(self, drive_id: str, item_id: str) -> bool:
        return not await self.item_exists(drive_id, item_id)

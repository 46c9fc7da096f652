"""The real msgraph-sdk against the emulator over HTTPS: sites, paging, delta, downloads, deletes and labels."""

from __future__ import annotations

import asyncio
import io
import zipfile
from typing import Any

import httpx
import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_http.middleware.options import HeadersInspectionHandlerOption
from msgraph.generated.drives.item.items.item.assign_sensitivity_label import (
    assign_sensitivity_label_post_request_body as assign_body,
)
from msgraph.generated.drives.item.items.item.children.children_request_builder import ChildrenRequestBuilder
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.sensitivity_label_assignment_method import SensitivityLabelAssignmentMethod
from msgraph.graph_service_client import GraphServiceClient

from emulator.files.content import content_bytes
from emulator.files.store import Drive
from emulator.server import EmulatorServer
from emulator.state import Customer, Tenant


async def test_all_sites_and_their_drives(sdk: GraphServiceClient, tenant: Tenant, guest_customer: Customer) -> None:
    sites = await sdk.sites.get_all_sites.get()
    assert sites is not None
    assert sites.value
    by_id = {site.id: site for site in sites.value}
    assert guest_customer.site_id in by_id
    site = by_id[guest_customer.site_id]
    assert site.name
    assert site.name.startswith("KH-")
    assert site.web_url
    assert sum(1 for s in sites.value if s.is_personal_site) == len(tenant.staff)
    drives = await sdk.sites.by_site_id(guest_customer.site_id or "").drives.get()
    assert drives is not None
    assert drives.value
    assert drives.value[0].drive_type == "documentLibrary"
    user = tenant.staff[0]
    onedrive = await sdk.users.by_user_id(user.id).drive.get()
    assert onedrive is not None
    assert onedrive.id == user.drive_id
    assert onedrive.drive_type == "business"


async def test_children_paging(sdk: GraphServiceClient, tenant: Tenant) -> None:
    user = tenant.staff[0]
    drive = tenant.files.drives[user.drive_id or ""]
    expected = [c.id for c in tenant.files.live_children(tenant.files.items[drive.root_id])]
    config = RequestConfiguration(
        query_parameters=ChildrenRequestBuilder.ChildrenRequestBuilderGetQueryParameters(top=1, select=["id", "name"])
    )
    children = sdk.drives.by_drive_id(drive.id).items.by_drive_item_id("root").children
    page = await children.get(request_configuration=config)
    seen: list[str] = []
    while page is not None:
        seen += [item.id for item in page.value or [] if item.id]
        page = await children.with_url(page.odata_next_link).get() if page.odata_next_link else None
    assert seen == expected
    assert len(expected) >= 2


async def _drain(builder: object, first: object) -> tuple[list, str]:
    """Loop by hand on nextLink until a page carries the deltaLink (sdk-notes: PageIterator can't)."""
    items: list = []
    page = first
    while True:
        items += page.value or []  # type: ignore[attr-defined]
        if page.odata_delta_link:  # type: ignore[attr-defined]
            return items, page.odata_delta_link  # type: ignore[attr-defined]
        page = await builder.with_url(page.odata_next_link).get()  # type: ignore[attr-defined]


async def test_delta_initial_latest_changes_and_resync(
    sdk: GraphServiceClient,
    tenant: Tenant,
    customer_drive: Drive,
    guest_customer: Customer,
    live: EmulatorServer,
    anonymous: httpx.AsyncClient,
) -> None:
    root = sdk.drives.by_drive_id(customer_drive.id).items.by_drive_item_id("root")
    delta = root.delta
    config: RequestConfiguration[Any] = RequestConfiguration()
    config.headers.add("Prefer", "odata.maxpagesize=2")
    items, _ = await _drain(delta, await delta.get(request_configuration=config))
    live_ids = {i.id for i in tenant.files.items.values() if i.drive_id == customer_drive.id and i.alive}
    assert {item.id for item in items} == live_ids

    latest = await root.delta_with_token("latest").get()
    assert latest is not None
    assert latest.value == []
    assert latest.odata_delta_link
    files = [i for i in tenant.files.items.values() if i.drive_id == customer_drive.id and not i.is_folder]
    edited = files[0]
    doomed = next(i for i in files if not i.retention_label)
    guest = guest_customer.guest_user_ids[0]
    reply = await anonymous.patch(
        f"{live.endpoints.control_url}/files/items/{edited.id}", json={"asUser": guest, "text": "Khách sửa"}
    )
    assert reply.status_code == 200
    await sdk.drives.by_drive_id(customer_drive.id).items.by_drive_item_id(doomed.id).delete()
    changes, next_delta = await _drain(delta, await delta.with_url(latest.odata_delta_link).get())
    by_id = {item.id: item for item in changes}
    assert by_id[edited.id].last_modified_by.user.id == guest
    assert by_id[doomed.id].deleted is not None
    assert by_id[edited.id].deleted is None

    expired = await anonymous.post(f"{live.endpoints.control_url}/files/drives/{customer_drive.id}/expireDeltaTokens")
    assert expired.status_code == 204
    with pytest.raises(ODataError) as gone:
        await delta.with_url(next_delta).get()
    assert gone.value.response_status_code == 410
    assert gone.value.error is not None
    assert gone.value.error.code == "resyncRequired"
    assert gone.value.response_headers is not None
    location = gone.value.response_headers["location"]
    location = location if isinstance(location, str) else next(iter(location))
    resynced, _ = await _drain(delta, await delta.with_url(location).get())
    assert {item.id for item in resynced} == live_ids - {doomed.id}


async def test_download_follows_the_redirect(sdk: GraphServiceClient, tenant: Tenant) -> None:
    item = next(i for i in tenant.files.items.values() if i.name.endswith(".xlsx") and i.truth_identifiers)
    data = await sdk.drives.by_drive_id(item.drive_id).items.by_drive_item_id(item.id).content.get()
    assert data == content_bytes(tenant, item)
    assert len(data) == item.size
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        sheet = package.read("xl/worksheets/sheet1.xml").decode()
    assert all(identifier in sheet for identifier in item.truth_identifiers)


async def test_assign_label_then_poll_the_monitor_then_extract(
    sdk: GraphServiceClient, tenant: Tenant, anonymous: httpx.AsyncClient
) -> None:
    tenant.files.label_delay_seconds = 0.3
    confidential = tenant.label_by_name("Confidential")
    assert confidential is not None
    item = next(
        i
        for i in tenant.files.items.values()
        if i.name.endswith(".docx") and i.truth_customers and not (i.label or i.locked or i.retention_label)
    )
    builder = sdk.drives.by_drive_id(item.drive_id).items.by_drive_item_id(item.id)
    inspect = HeadersInspectionHandlerOption(inspect_response_headers=True)
    body = assign_body.AssignSensitivityLabelPostRequestBody(
        sensitivity_label_id=confidential.id,
        assignment_method=SensitivityLabelAssignmentMethod.Standard,
        justification_text="Customer data",
    )
    await builder.assign_sensitivity_label.post(body, request_configuration=RequestConfiguration(options=[inspect]))
    locations = inspect.response_headers.get("location")
    monitor = next(iter(locations)) if not isinstance(locations, str) else locations
    status = 202
    for _ in range(100):
        reply = await anonymous.get(monitor)
        status = reply.status_code
        if status == 200:
            break
        assert reply.json()["status"] == "inProgress"
        await asyncio.sleep(0.05)
    assert status == 200
    assert reply.json()["status"] == "completed"
    assert reply.json()["resourceId"] == item.id
    result = await builder.extract_sensitivity_labels.post()
    assert result is not None
    # The SDK's model has no "value" wrapper, so the documented body lands in additional_data (GUIDs parsed).
    labels = [{k: str(v) for k, v in label.items()} for label in result.additional_data["value"]["labels"]]
    assert labels == [
        {"sensitivityLabelId": confidential.id, "assignmentMethod": "standard", "tenantId": tenant.tenant_id}
    ]


async def test_label_errors_reach_the_sdk(sdk: GraphServiceClient, tenant: Tenant) -> None:
    confidential = tenant.label_by_name("Confidential")
    assert confidential is not None
    body = assign_body.AssignSensitivityLabelPostRequestBody(sensitivity_label_id=confidential.id)
    encrypted = tenant.files.items[tenant.files.special["double_key_encrypted"][0]]
    locked = sdk.drives.by_drive_id(encrypted.drive_id).items.by_drive_item_id(encrypted.id)
    with pytest.raises(ODataError) as refused:
        await locked.assign_sensitivity_label.post(body)
    assert refused.value.response_status_code == 423
    assert refused.value.error is not None
    assert refused.value.error.code == "fileDoubleKeyEncrypted"
    tenant.metered_billing_enabled = False
    other = next(i for i in tenant.files.items.values() if i.name.endswith(".docx") and not i.locked)
    with pytest.raises(ODataError) as unpaid:
        await (
            sdk.drives.by_drive_id(other.drive_id).items.by_drive_item_id(other.id).assign_sensitivity_label.post(body)
        )
    assert unpaid.value.response_status_code == 402
    assert unpaid.value.error is not None
    assert unpaid.value.error.code == "paymentRequired"


async def test_delete_with_if_match_and_permanent_delete(sdk: GraphServiceClient, tenant: Tenant) -> None:
    first, second = [i for i in tenant.files.items.values() if not i.is_folder and not i.retention_label][:2]
    target = sdk.drives.by_drive_id(first.drive_id).items.by_drive_item_id(first.id)
    stale: RequestConfiguration[Any] = RequestConfiguration()
    stale.headers.add("If-Match", first.etag.replace(",1", ",9"))
    with pytest.raises(ODataError) as mismatch:
        await target.delete(request_configuration=stale)
    assert mismatch.value.response_status_code == 412
    assert mismatch.value.error is not None
    assert mismatch.value.error.code == "resourceModified"
    assert first.alive
    current: RequestConfiguration[Any] = RequestConfiguration()
    current.headers.add("If-Match", first.etag)
    await target.delete(request_configuration=current)
    assert not first.alive
    purge = sdk.drives.by_drive_id(second.drive_id).items.by_drive_item_id(second.id)
    await purge.permanent_delete.post()
    assert second.purged
    with pytest.raises(ODataError) as missing:
        await purge.get()
    assert missing.value.response_status_code == 404
    assert missing.value.error is not None
    assert missing.value.error.code == "itemNotFound"

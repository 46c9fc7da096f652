"""Graph v1.0 files routes in process: shapes, paging, delta, deletes, labels and every bad-input path."""

from __future__ import annotations

import asyncio
import io
import zipfile
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from emulator.app import create_app
from emulator.files.content import content_bytes
from emulator.files.store import Drive, DriveItem
from emulator.state import ChangeEvent, Customer, Tenant

CONTROL = "https://emulator.test/_emulator/files"


def assert_graph_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert {"date", "request-id", "client-request-id"} <= set(error["innerError"])
    return error


def first_file(tenant: Tenant, drive: Drive, predicate: Callable[[DriveItem], bool] = lambda i: True) -> DriveItem:
    return next(
        i
        for i in tenant.files.items.values()
        if i.drive_id == drive.id and not i.is_folder and i.alive and predicate(i)
    )


async def collect_delta(graph: httpx.AsyncClient, url: str, **kwargs: Any) -> tuple[list[dict[str, Any]], str, int]:
    """Follow nextLinks to the deltaLink; returns (items, deltaLink, pages)."""
    items: list[dict[str, Any]] = []
    pages = 0
    while True:
        response = await graph.get(url, **kwargs)
        assert response.status_code == 200, response.text
        body = response.json()
        pages += 1
        items += body["value"]
        if "@odata.deltaLink" in body:
            assert "@odata.nextLink" not in body
            return items, body["@odata.deltaLink"], pages
        url = body["@odata.nextLink"]


# Sites and drives --------------------------------------------------------------------------------------


async def test_get_all_sites_pages_and_filters(graph: httpx.AsyncClient, tenant: Tenant) -> None:
    names: list[str] = []
    url = "/sites/getAllSites?$top=4"
    while url:
        body = (await graph.get(url)).json()
        assert body["@odata.context"].endswith("$metadata#sites")
        names += [s["name"] for s in body["value"]]
        url = body.get("@odata.nextLink", "")
        assert not url or url.startswith("https://emulator.test/v1.0/sites/getAllSites")
    assert sorted(names) == sorted(s.name for s in tenant.files.sites.values())
    shared = (await graph.get("/sites/getAllSites()", params={"$filter": "isPersonalSite eq false"})).json()["value"]
    assert shared
    assert not any(s["isPersonalSite"] for s in shared)
    assert {c.site_id for c in tenant.customers} <= {s["id"] for s in shared}
    personal = (await graph.get("/sites/getAllSites", params={"$filter": "isPersonalSite ne false"})).json()
    assert len(personal["value"]) == len(tenant.staff)
    bad = await graph.get("/sites/getAllSites", params={"$filter": "name eq 'x'"})
    assert_graph_error(bad, 400, "invalidRequest")


async def test_get_all_sites_needs_a_sites_permission(
    graph: httpx.AsyncClient, mint: Callable[..., str], tenant: Tenant, customer_drive: Drive
) -> None:
    token = mint(roles=["Files.Read.All"])
    denied = await graph.get("/sites/getAllSites", headers={"Authorization": f"Bearer {token}"})
    assert_graph_error(denied, 403, "accessDenied")
    allowed = await graph.get(f"/drives/{customer_drive.id}/root", headers={"Authorization": f"Bearer {token}"})
    assert allowed.status_code == 200


async def test_site_and_drive_shapes(graph: httpx.AsyncClient, tenant: Tenant, guest_customer: Customer) -> None:
    site_id = guest_customer.site_id
    site = (await graph.get(f"/sites/{site_id}")).json()
    assert site["id"] == site_id
    assert site["name"].startswith("KH-")
    assert site["siteCollection"]["hostName"]
    by_guid = await graph.get(f"/sites/{site_id.split(',')[1]}")  # type: ignore[union-attr]
    assert by_guid.json()["id"] == site_id
    drives = (await graph.get(f"/sites/{site_id}/drives")).json()["value"]
    assert len(drives) == 1
    assert drives[0]["driveType"] == "documentLibrary"
    assert drives[0]["id"].startswith("b!")
    assert (await graph.get(f"/sites/{site_id}/drive")).json()["id"] == drives[0]["id"]
    drive = (await graph.get(f"/drives/{drives[0]['id']}")).json()
    assert drive["quota"]["total"] > drive["quota"]["used"] > 0
    staff = tenant.staff[0]
    mine = (await graph.get(f"/users/{staff.user_principal_name}/drive")).json()
    assert mine["driveType"] == "business"
    assert mine["owner"]["user"]["id"] == staff.id
    root = (await graph.get("/sites/root")).json()
    assert "root" in root["siteCollection"]


async def test_bad_ids_get_graph_errors(graph: httpx.AsyncClient, tenant: Tenant, customer_drive: Drive) -> None:
    assert_graph_error(await graph.get("/drives/not-a-drive"), 400, "invalidRequest")
    assert_graph_error(await graph.get("/drives/b!AAAAAAAAAAAAAAAAAAAAAAAA"), 404, "itemNotFound")
    assert_graph_error(await graph.get(f"/drives/{customer_drive.id}/items/01NOPE"), 404, "itemNotFound")
    assert_graph_error(await graph.get(f"/drives/{customer_drive.id}/items/01NOPE/children"), 404, "itemNotFound")
    assert_graph_error(await graph.get(f"/drives/{customer_drive.id}/root:/Nope/x.docx"), 404, "itemNotFound")
    assert_graph_error(await graph.get(f"/drives/{customer_drive.id}/bogus"), 400, "BadRequest")
    other_drive = next(d for d in tenant.files.drives.values() if d.id != customer_drive.id)
    foreign = first_file(tenant, customer_drive)
    assert_graph_error(await graph.get(f"/drives/{other_drive.id}/items/{foreign.id}"), 404, "itemNotFound")
    assert_graph_error(await graph.get("/sites/vnreseller.sharepoint.com,1,2"), 404, "itemNotFound")
    assert_graph_error(await graph.get("/sites/contoso.sharepoint.com,1,2"), 400, "invalidRequest")
    guest = tenant.users[tenant.customers[0].guest_user_ids[0]]
    assert_graph_error(await graph.get(f"/users/{guest.id}/drive"), 404, "ResourceNotFound")
    assert_graph_error(await graph.get("/users/nobody@example.com/drive"), 404, "Request_ResourceNotFound")
    unauthenticated = await graph.get(f"/drives/{customer_drive.id}", headers={"Authorization": ""})
    assert_graph_error(unauthenticated, 401, "InvalidAuthenticationToken")


# Items, children, content -------------------------------------------------------------------------------


async def test_item_shapes_and_addressing(graph: httpx.AsyncClient, tenant: Tenant, customer_drive: Drive) -> None:
    item = first_file(tenant, customer_drive, lambda i: bool(i.permissions))
    body = (await graph.get(f"/drives/{customer_drive.id}/items/{item.id}")).json()
    assert body["id"] == item.id
    assert body["name"] == item.name
    assert body["size"] == item.size
    assert body["eTag"] == item.etag
    assert body["eTag"].startswith('"{')
    assert body["eTag"].endswith(',1"')
    assert body["cTag"].startswith('"c:{')
    assert body["file"]["mimeType"] == item.mime_type
    assert body["shared"] == {"scope": "users"}
    assert body["parentReference"]["driveId"] == customer_drive.id
    assert body["parentReference"]["path"].startswith(f"/drives/{customer_drive.id}/root:/")
    assert body["lastModifiedBy"]["user"]["id"] == item.modified_by
    assert body["@microsoft.graph.downloadUrl"].startswith("https://emulator.test/_emulator/files/")
    path = body["parentReference"]["path"].split("root:", 1)[1] + "/" + item.name
    by_path = (await graph.get(f"/drives/{customer_drive.id}/root:{path}")).json()
    assert by_path["id"] == item.id
    site_form = await graph.get(f"/sites/{customer_drive.site_id}/drive/items/{item.id}")
    assert site_form.json()["id"] == item.id
    selected = (await graph.get(f"/drives/{customer_drive.id}/items/{item.id}", params={"$select": "id,name"})).json()
    assert set(selected) == {"@odata.context", "id", "name"}
    assert_graph_error(
        await graph.get(f"/drives/{customer_drive.id}/items/{item.id}", params={"$select": "id,bogus"}),
        400,
        "invalidRequest",
    )
    not_modified = await graph.get(f"/drives/{customer_drive.id}/items/{item.id}", headers={"If-None-Match": item.etag})
    assert not_modified.status_code == 304
    root = (await graph.get(f"/drives/{customer_drive.id}/root", params={"$expand": "children"})).json()
    assert root["root"] == {}
    assert root["folder"]["childCount"] == len(root["children"]) == 2
    assert_graph_error(
        await graph.get(f"/drives/{customer_drive.id}/root", params={"$expand": "thumbnails"}), 400, "invalidRequest"
    )


async def test_children_page_with_absolute_next_links(graph: httpx.AsyncClient, tenant: Tenant) -> None:
    user = tenant.staff[0]
    drive = tenant.files.drives[user.drive_id or ""]
    work = next(i for i in tenant.files.items.values() if i.drive_id == drive.id and i.name == "Tài liệu công việc")
    for n in range(5):
        await graph.post(
            f"{CONTROL}/drives/{drive.id}/items",
            json={"name": f"Ghi chú {n}.txt", "asUser": user.id, "parentId": work.id},
        )
    expected = [c.name for c in tenant.files.live_children(work)]
    seen: list[str] = []
    url = f"/users/{user.id}/drive/items/{work.id}/children?$top=2&$select=id,name"
    pages = 0
    while url:
        response = await graph.get(url)
        body = response.json()
        pages += 1
        assert all(set(v) == {"id", "name"} for v in body["value"])
        seen += [v["name"] for v in body["value"]]
        url = body.get("@odata.nextLink", "")
        assert not url or (url.startswith("https://emulator.test/v1.0/users/") and "$select=id,name" in url)
    assert seen == expected
    assert pages == 3
    ordered = (await graph.get(f"/drives/{drive.id}/items/{work.id}/children", params={"$orderby": "name desc"})).json()
    assert [v["name"] for v in ordered["value"]] == sorted(expected, key=str.lower, reverse=True)
    preferred = await graph.get(
        f"/drives/{drive.id}/items/{work.id}/children", headers={"Prefer": "odata.maxpagesize=1"}
    )
    assert len(preferred.json()["value"]) == 1
    assert preferred.headers["Preference-Applied"] == "odata.maxpagesize=1"
    for bad in ({"$top": "0"}, {"$top": "x"}, {"$skiptoken": "!!!"}, {"$orderby": "bogus"}, {"$filter": "a eq 1"}):
        assert_graph_error(
            await graph.get(f"/drives/{drive.id}/items/{work.id}/children", params=bad), 400, "invalidRequest"
        )


async def test_content_redirects_to_a_preauthenticated_url(
    graph: httpx.AsyncClient, tenant: Tenant, customer_drive: Drive
) -> None:
    item = first_file(tenant, customer_drive, lambda i: i.name.endswith(".docx") and not i.locked)
    response = await graph.get(f"/drives/{customer_drive.id}/items/{item.id}/content")
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith("https://emulator.test/_emulator/files/_layouts/15/download.aspx?")
    download = await graph.get(location, headers={"Authorization": ""})
    assert download.status_code == 200
    assert download.content == content_bytes(tenant, item)
    with zipfile.ZipFile(io.BytesIO(download.content)) as package:
        assert "word/document.xml" in package.namelist()
    ranged = await graph.get(location, headers={"Authorization": "", "Range": "bytes=0-3"})
    assert ranged.status_code == 206
    assert ranged.content == b"PK\x03\x04"
    assert ranged.headers["content-range"] == f"bytes 0-3/{item.size}"
    tampered = location.replace("tempauth=", "tempauth=x")
    assert (await graph.get(tampered, headers={"Authorization": ""})).status_code == 401
    folder = tenant.files.items[customer_drive.root_id]
    assert_graph_error(await graph.get(f"/drives/{customer_drive.id}/items/{folder.id}/content"), 400, "invalidRequest")


async def test_permissions_and_retention_label(graph: httpx.AsyncClient, tenant: Tenant) -> None:
    store = tenant.files
    shared = next(i for i in store.items.values() if i.permissions and i.permissions[0].user_id)
    grants = (await graph.get(f"/drives/{shared.drive_id}/items/{shared.id}/permissions")).json()["value"]
    assert grants[0]["roles"] == ["owner"]
    assert "inheritedFrom" in grants[0]
    assert grants[1]["grantedToV2"]["user"]["id"] == shared.permissions[0].user_id
    by_email = next(i for i in store.items.values() if i.permissions and i.permissions[0].email)
    invited = (await graph.get(f"/drives/{by_email.drive_id}/items/{by_email.id}/permissions")).json()["value"][1]
    assert invited["invitation"]["email"] == by_email.permissions[0].email
    retained = store.items[store.special["retention_no_delete"][0]]
    label = (await graph.get(f"/drives/{retained.drive_id}/items/{retained.id}/retentionLabel")).json()
    assert label["name"] == "Contract - 10 years"
    assert label["retentionSettings"]["isDeleteAllowed"] is False
    assert label["retentionSettings"]["behaviorDuringRetentionPeriod"] == "retain"
    record = store.items[store.special["record_locked"][0]]
    locked = (await graph.get(f"/drives/{record.drive_id}/items/{record.id}/retentionLabel")).json()
    assert locked["retentionSettings"]["isRecordLocked"] is True
    plain = next(i for i in store.items.values() if not i.retention_label and not i.is_folder)
    assert_graph_error(
        await graph.get(f"/drives/{plain.drive_id}/items/{plain.id}/retentionLabel"), 404, "itemNotFound"
    )


# Delta -------------------------------------------------------------------------------------------------


async def test_delta_initial_enumeration_pages_then_delta_link(
    graph: httpx.AsyncClient, tenant: Tenant, customer_drive: Drive
) -> None:
    live = [i.id for i in tenant.files.items.values() if i.drive_id == customer_drive.id and i.alive]
    items, delta_link, pages = await collect_delta(
        graph, f"/drives/{customer_drive.id}/root/delta", headers={"Prefer": "odata.maxpagesize=2"}
    )
    assert [i["id"] for i in items] == live
    assert pages == (len(live) + 1) // 2
    assert items[0]["root"] == {}
    assert "cTag" not in items[-1]
    assert "path" not in items[-1]["parentReference"]
    assert delta_link.startswith(f"https://emulator.test/v1.0/drives/{customer_drive.id}/root/delta?token=")
    assert (await graph.get(delta_link)).json()["value"] == []
    # The SDK's forms reach the same feed.
    for url in (
        f"/drives/{customer_drive.id}/items/root/delta()",
        f"/drives/{customer_drive.id}/root/delta()",
        f"/sites/{customer_drive.site_id}/drive/root/delta",
    ):
        found, _, _ = await collect_delta(graph, url)
        assert [i["id"] for i in found] == live, url
    top, _, top_pages = await collect_delta(graph, f"/drives/{customer_drive.id}/root/delta?$top=3&$select=id,name")
    assert top_pages == (len(live) + 2) // 3
    assert all(set(i) <= {"id", "name"} for i in top)


async def test_delta_latest_then_changes_with_deleted_facet(
    graph: httpx.AsyncClient, tenant: Tenant, customer_drive: Drive, guest_customer: Customer
) -> None:
    latest = (await graph.get(f"/drives/{customer_drive.id}/root/delta", params={"token": "latest"})).json()
    assert latest["value"] == []
    assert "@odata.deltaLink" in latest
    token = latest["@odata.deltaLink"].split("token=", 1)[1]
    guest = guest_customer.guest_user_ids[0]
    edited, doomed = [i for i in tenant.files.items.values() if i.drive_id == customer_drive.id and not i.is_folder][:2]
    assert (
        await graph.patch(f"{CONTROL}/items/{edited.id}", json={"asUser": guest, "text": "Sửa bởi khách"})
    ).status_code == 200
    assert (await graph.delete(f"/drives/{customer_drive.id}/items/{doomed.id}")).status_code == 204
    changes, next_link, _ = await collect_delta(graph, f"/drives/{customer_drive.id}/items/root/delta(token='{token}')")
    by_id = {c["id"]: c for c in changes}
    assert by_id[edited.id]["lastModifiedBy"]["user"]["id"] == guest
    assert by_id[edited.id]["eTag"].endswith(',2"')
    assert by_id[doomed.id]["deleted"] == {}
    assert "@removed" not in by_id[doomed.id]
    assert by_id[customer_drive.root_id]["root"] == {}, "parents of changed items come along"
    assert len(changes) == len(by_id), "one entry per item per round: its latest state"
    without_parents, _, _ = await collect_delta(
        graph, f"/drives/{customer_drive.id}/root/delta?token={token}", headers={"deltaExcludeParent": "true"}
    )
    assert {c["id"] for c in without_parents} == {edited.id, doomed.id}
    assert (await graph.get(next_link)).json()["value"] == []
    # A scoped delta sees only its folder.
    folder_id = edited.parent_id
    scoped, _, _ = await collect_delta(graph, f"/drives/{customer_drive.id}/items/{folder_id}/delta?token={token}")
    assert edited.id in {c["id"] for c in scoped}
    assert customer_drive.root_id not in {c["id"] for c in scoped}


async def test_delta_from_a_timestamp(graph: httpx.AsyncClient, tenant: Tenant, customer_drive: Drive) -> None:
    item = first_file(tenant, customer_drive)
    before = (await graph.get(f"/drives/{customer_drive.id}/root/delta?token=latest")).json()
    del before
    stamp = "2099-01-01T00:00:00Z"
    empty, _, _ = await collect_delta(graph, f"/drives/{customer_drive.id}/root/delta", params={"token": stamp})
    assert empty == []
    await graph.patch(f"{CONTROL}/items/{item.id}", json={"asUser": tenant.staff[0].id})
    recent, _, _ = await collect_delta(
        graph, f"/drives/{customer_drive.id}/root/delta", params={"token": "2000-01-01T00:00:00Z"}
    )
    assert item.id in {c["id"] for c in recent}


async def test_unknown_or_expired_tokens_get_410_with_a_fresh_location(
    graph: httpx.AsyncClient, tenant: Tenant, customer_drive: Drive
) -> None:
    garbage = await graph.get(f"/drives/{customer_drive.id}/root/delta", params={"token": "not-a-token"})
    error = assert_graph_error(garbage, 410, "resyncRequired")
    assert error["innerError"]["code"] == "resyncChangesApplyDifferences"
    assert garbage.headers["location"] == f"https://emulator.test/v1.0/drives/{customer_drive.id}/root/delta"
    _, delta_link, _ = await collect_delta(graph, f"/drives/{customer_drive.id}/root/delta")
    expired = await graph.post(f"{CONTROL}/drives/{customer_drive.id}/expireDeltaTokens")
    assert expired.status_code == 204
    gone = await graph.get(delta_link)
    assert_graph_error(gone, 410, "resyncRequired")
    fresh, _, _ = await collect_delta(graph, gone.headers["location"])
    assert len(fresh) == sum(1 for i in tenant.files.items.values() if i.drive_id == customer_drive.id and i.alive)
    other = next(d for d in tenant.files.drives.values() if d.id != customer_drive.id)
    _, other_link, _ = await collect_delta(graph, f"/drives/{other.id}/root/delta")
    token = other_link.split("token=", 1)[1]
    assert_graph_error(await graph.get(f"/drives/{customer_drive.id}/root/delta?token={token}"), 410, "resyncRequired")


# Deleting ----------------------------------------------------------------------------------------------


async def test_delete_honours_if_match(graph: httpx.AsyncClient, tenant: Tenant) -> None:
    item, other = [i for i in tenant.files.items.values() if not i.is_folder and not i.retention_label][:2]
    url = f"/drives/{item.drive_id}/items/{item.id}"
    stale = item.etag.replace(",1", ",7")
    error = assert_graph_error(await graph.delete(url, headers={"If-Match": stale}), 412, "resourceModified")
    assert error["innerError"]["code"] == "entityTagDoesNotMatch"
    assert item.alive
    assert (await graph.delete(url, headers={"If-Match": item.etag})).status_code == 204
    assert not item.alive
    assert not item.purged
    assert_graph_error(await graph.get(url), 404, "itemNotFound")
    assert_graph_error(await graph.delete(url), 404, "itemNotFound")
    by_ctag = await graph.delete(
        f"/drives/{other.drive_id}/items/{other.id}", headers={"If-Match": f"{stale}, {other.ctag}"}
    )
    assert by_ctag.status_code == 204


async def test_permanent_delete(graph: httpx.AsyncClient, tenant: Tenant, customer_drive: Drive) -> None:
    latest = (await graph.get(f"/drives/{customer_drive.id}/root/delta?token=latest")).json()["@odata.deltaLink"]
    item = first_file(tenant, customer_drive, lambda i: not i.retention_label)
    before = customer_drive.used
    response = await graph.post(f"/drives/{customer_drive.id}/items/{item.id}/permanentDelete")
    assert response.status_code == 204
    assert item.purged
    assert customer_drive.used == before - item.size
    assert customer_drive.deleted_bytes == 0
    changes, _, _ = await collect_delta(graph, latest)
    assert next(c for c in changes if c["id"] == item.id)["deleted"] == {}
    assert_graph_error(
        await graph.post(f"/drives/{customer_drive.id}/items/{item.id}/permanentDelete"), 404, "itemNotFound"
    )


async def test_retention_blocks_deleting_files_and_their_folders(graph: httpx.AsyncClient, tenant: Tenant) -> None:
    store = tenant.files
    for role in ("retention_no_delete", "record_locked"):
        item = store.items[store.special[role][0]]
        blocked = await graph.delete(f"/drives/{item.drive_id}/items/{item.id}")
        assert "hold" in assert_graph_error(blocked, 403, "accessDenied")["message"]
        assert item.alive
        purge = await graph.post(f"/drives/{item.drive_id}/items/{item.id}/permanentDelete")
        assert_graph_error(purge, 403, "accessDenied")
    retained = store.items[store.special["retention_no_delete"][0]]
    folder = store.items[retained.parent_id or ""]
    assert_graph_error(await graph.delete(f"/drives/{folder.drive_id}/items/{folder.id}"), 403, "accessDenied")
    allowed = store.items[store.special["retention_delete_allowed"][0]]
    assert (await graph.delete(f"/drives/{allowed.drive_id}/items/{allowed.id}")).status_code == 204


async def test_deleting_a_folder_deletes_its_subtree(graph: httpx.AsyncClient, tenant: Tenant) -> None:
    store = tenant.files
    user = tenant.staff[1]
    drive = store.drives[user.drive_id or ""]
    work = next(i for i in store.items.values() if i.drive_id == drive.id and i.name == "Tài liệu công việc")
    inside = store.descendants(work)
    latest = (await graph.get(f"/users/{user.id}/drive/root/delta?token=latest")).json()["@odata.deltaLink"]
    assert (await graph.delete(f"/users/{user.id}/drive/items/{work.id}")).status_code == 204
    assert all(not i.alive for i in inside)
    changes, _, _ = await collect_delta(graph, latest)
    deleted = {c["id"] for c in changes if "deleted" in c}
    assert deleted == {work.id, *(i.id for i in inside)}


async def test_writes_need_a_readwrite_permission(
    graph: httpx.AsyncClient, mint: Callable[..., str], tenant: Tenant, customer_drive: Drive
) -> None:
    token = mint(roles=["Files.Read.All", "Sites.Read.All"])
    headers = {"Authorization": f"Bearer {token}"}
    item = first_file(tenant, customer_drive)
    url = f"/drives/{customer_drive.id}/items/{item.id}"
    assert_graph_error(await graph.delete(url, headers=headers), 403, "accessDenied")
    assert_graph_error(await graph.post(f"{url}/permanentDelete", headers=headers), 403, "accessDenied")
    assert_graph_error(await graph.post(f"{url}/assignSensitivityLabel", headers=headers, json={}), 403, "accessDenied")
    assert item.alive
    assert (await graph.post(f"{url}/extractSensitivityLabels", headers=headers)).status_code in (200, 400, 423)


# Sensitivity labels ------------------------------------------------------------------------------------


def set_delay(tenant: Tenant, seconds: float) -> None:
    tenant.files.label_delay_seconds = seconds


async def poll(graph: httpx.AsyncClient, monitor: str) -> dict[str, Any]:
    for _ in range(200):
        response = await graph.get(monitor, headers={"Authorization": ""})
        if response.status_code == 200:
            return response.json()
        assert response.status_code == 202
        assert response.json()["status"] == "inProgress"
        await asyncio.sleep(0.02)
    raise AssertionError("the label job never finished")


async def test_assign_label_completes_after_the_delay(
    graph: httpx.AsyncClient, tenant: Tenant, customer_drive: Drive
) -> None:
    events: list[ChangeEvent] = []
    tenant.change_listeners.append(events.append)
    set_delay(tenant, 0.3)
    confidential = tenant.label_by_name("Confidential")
    assert confidential is not None
    item = next(
        i
        for i in tenant.files.items.values()
        if i.name.endswith(".docx") and i.truth_customers and not (i.label or i.locked or i.retention_label)
    )
    url = f"/drives/{item.drive_id}/items/{item.id}"
    response = await graph.post(
        f"{url}/assignSensitivityLabel",
        json={"sensitivityLabelId": confidential.id, "assignmentMethod": "standard", "justificationText": "policy"},
    )
    assert response.status_code == 202
    assert response.content == b""
    monitor = response.headers["location"]
    assert monitor.startswith("https://emulator.test/_emulator/files/_api/v2.0/monitor/")
    assert "tempAuth=" in monitor
    running = await graph.get(monitor, headers={"Authorization": ""})
    assert running.status_code == 202
    assert running.json()["status"] == "inProgress"
    assert 0 <= running.json()["percentageComplete"] < 100
    extracted = (await graph.post(f"{url}/extractSensitivityLabels")).json()
    assert extracted["value"]["labels"] == [], "the label lands only when the job completes"
    assert (await graph.get(url)).json()["eTag"] == item.etag.replace(",2", ",1")
    done = await poll(graph, monitor)
    assert done == {"percentageComplete": 100.0, "resourceId": item.id, "status": "completed"}
    result = (await graph.post(f"{url}/extractSensitivityLabels")).json()["value"]
    assert result["@odata.type"] == "microsoft.graph.extractSensitivityLabelsResult"
    assert result["labels"] == [
        {"sensitivityLabelId": confidential.id, "assignmentMethod": "standard", "tenantId": tenant.tenant_id}
    ]
    body = (await graph.get(url)).json()
    assert body["eTag"].endswith(',2"')
    assert body["lastModifiedBy"]["application"]["id"] == tenant.extra["steward_app_id"]
    assert [e.resource_id for e in events] == [item.id]
    assert events[0].resource == f"drives/{item.drive_id}/root"
    with zipfile.ZipFile(io.BytesIO(content_bytes(tenant, item))) as package:
        assert confidential.id in package.read("docProps/custom.xml").decode()
    state = (await graph.get(f"{CONTROL}/items/{item.id}")).json()
    assert state["sensitivityLabel"]["name"] == "Confidential"


async def test_assign_label_errors(graph: httpx.AsyncClient, tenant: Tenant, customer_drive: Drive) -> None:
    confidential = tenant.label_by_name("Confidential")
    assert confidential is not None
    item = first_file(tenant, customer_drive, lambda i: not i.locked and not i.label)
    url = f"/drives/{customer_drive.id}/items/{item.id}/assignSensitivityLabel"
    bad_json = await graph.post(url, content=b"{not json", headers={"Content-Type": "application/json"})
    assert_graph_error(bad_json, 400, "BadRequest")
    assert_graph_error(await graph.post(url, json=["x"]), 400, "BadRequest")
    assert_graph_error(await graph.post(url, json={}), 400, "invalidRequest")
    assert_graph_error(await graph.post(url, json={"sensitivityLabelId": 5}), 400, "invalidRequest")
    unknown = await graph.post(url, json={"sensitivityLabelId": "00000000-0000-0000-0000-000000000000"})
    assert_graph_error(unknown, 400, "invalidRequest")
    method = await graph.post(url, json={"sensitivityLabelId": confidential.id, "assignmentMethod": "bogus"})
    assert_graph_error(method, 400, "invalidRequest")
    tenant.metered_billing_enabled = False
    unpaid = assert_graph_error(
        await graph.post(url, json={"sensitivityLabelId": confidential.id}), 402, "paymentRequired"
    )
    assert "metered" in unpaid["message"]
    tenant.metered_billing_enabled = True
    encrypted = tenant.files.items[tenant.files.special["double_key_encrypted"][0]]
    locked_url = f"/drives/{encrypted.drive_id}/items/{encrypted.id}"
    assert_graph_error(
        await graph.post(f"{locked_url}/assignSensitivityLabel", json={"sensitivityLabelId": confidential.id}),
        423,
        "fileDoubleKeyEncrypted",
    )
    assert_graph_error(await graph.post(f"{locked_url}/extractSensitivityLabels"), 423, "fileDoubleKeyEncrypted")
    assert_graph_error(await graph.get(url), 405, "Request_BadRequest")


async def test_manual_label_is_not_downgraded(graph: httpx.AsyncClient, tenant: Tenant) -> None:
    set_delay(tenant, 0)
    store = tenant.files
    item = store.items[store.special["manual_highly_confidential"][0]]
    confidential, highly = tenant.label_by_name("Confidential"), tenant.label_by_name("Highly Confidential")
    assert confidential is not None
    assert highly is not None
    url = f"/drives/{item.drive_id}/items/{item.id}/assignSensitivityLabel"
    no_reason = await graph.post(url, json={"sensitivityLabelId": confidential.id})
    assert "justification" in assert_graph_error(no_reason, 400, "invalidRequest")["message"]
    removal = await graph.post(url, json={"sensitivityLabelId": ""})
    assert_graph_error(removal, 400, "invalidRequest")
    standard = await graph.post(url, json={"sensitivityLabelId": confidential.id, "justificationText": "cleanup"})
    failed = await poll(graph, standard.headers["location"])
    assert failed["status"] == "failed"
    assert failed["errorCode"] == "notAllowed"
    assert item.label is not None
    assert item.label.label_id == highly.id
    privileged = await graph.post(
        url,
        json={"sensitivityLabelId": confidential.id, "assignmentMethod": "privileged", "justificationText": "legal"},
    )
    assert (await poll(graph, privileged.headers["location"]))["status"] == "completed"
    assert item.label.label_id == confidential.id
    assert item.label.justification == "legal"


async def test_unsupported_items_fail_in_the_monitor(graph: httpx.AsyncClient, tenant: Tenant) -> None:
    set_delay(tenant, 0)
    confidential = tenant.label_by_name("Confidential")
    assert confidential is not None
    text_file = next(i for i in tenant.files.items.values() if i.name.endswith(".txt") and i.alive)
    accepted = await graph.post(
        f"/drives/{text_file.drive_id}/items/{text_file.id}/assignSensitivityLabel",
        json={"sensitivityLabelId": confidential.id},
    )
    assert accepted.status_code == 202
    assert (await poll(graph, accepted.headers["location"]))["errorCode"] == "notSupported"
    assert text_file.label is None
    extract = await graph.post(f"/drives/{text_file.drive_id}/items/{text_file.id}/extractSensitivityLabels")
    assert_graph_error(extract, 400, "notSupported")
    record = tenant.files.items[tenant.files.special["record_locked"][0]]
    on_record = await graph.post(
        f"/drives/{record.drive_id}/items/{record.id}/assignSensitivityLabel",
        json={"sensitivityLabelId": confidential.id},
    )
    assert (await poll(graph, on_record.headers["location"]))["errorCode"] == "notAllowed"
    forged = accepted.headers["location"].replace("tempAuth=", "tempAuth=x")
    assert (await graph.get(forged, headers={"Authorization": ""})).status_code == 404


async def test_assign_label_is_throttled_per_tenant(
    graph: httpx.AsyncClient, tenant: Tenant, customer_drive: Drive
) -> None:
    response = await graph.patch(f"{CONTROL}/settings", json={"labelAssignLimit": 2, "labelOperationDelaySeconds": 0})
    assert response.json()["labelAssignLimit"] == 2
    general = tenant.label_by_name("General")
    assert general is not None
    items = [i for i in tenant.files.items.values() if i.name.endswith(".docx") and not i.locked and not i.label][:3]
    statuses = []
    for item in items:
        reply = await graph.post(
            f"/drives/{item.drive_id}/items/{item.id}/assignSensitivityLabel", json={"sensitivityLabelId": general.id}
        )
        statuses.append(reply.status_code)
    assert statuses == [202, 202, 429]
    assert int(reply.headers["retry-after"]) >= 1
    assert_graph_error(reply, 429, "activityLimitReached")
    for bad in ({"labelAssignLimit": 0}, {"labelOperationDelaySeconds": "soon"}, {"nope": 1}):
        assert (await graph.patch(f"{CONTROL}/settings", json=bad)).status_code == 400


async def test_tenant_label_list(graph: httpx.AsyncClient, tenant: Tenant, mint: Callable[..., str]) -> None:
    body = (await graph.get("/security/dataSecurityAndGovernance/sensitivityLabels")).json()
    assert body["@odata.context"].endswith("security/dataSecurityAndGovernance/sensitivityLabels")
    names = {label["name"]: label for label in body["value"]}
    assert set(names) == {"Public", "General", "Confidential", "Highly Confidential"}
    assert names["Highly Confidential"]["priority"] > names["Confidential"]["priority"]
    assert {"id", "toolTip", "isEnabled", "applicableTo", "sublabels"} <= set(names["General"])
    general = names["General"]["id"]
    filtered = await graph.get(
        "/security/dataSecurityAndGovernance/sensitivityLabels",
        params={"$filter": f"applicableTo has 'file' and id in ('{general}')"},
    )
    assert [label["id"] for label in filtered.json()["value"]] == [general]
    one = await graph.get(f"/security/dataSecurityAndGovernance/sensitivityLabels/{general}")
    assert one.json()["name"] == "General"
    assert_graph_error(
        await graph.get("/security/dataSecurityAndGovernance/sensitivityLabels/nope"), 404, "itemNotFound"
    )
    bad = await graph.get("/security/dataSecurityAndGovernance/sensitivityLabels", params={"$filter": "x eq 1"})
    assert_graph_error(bad, 400, "BadRequest")
    no_role = await graph.get(
        "/security/dataSecurityAndGovernance/sensitivityLabels",
        headers={"Authorization": f"Bearer {mint(roles=['Files.Read.All'])}"},
    )
    assert no_role.status_code == 403


async def test_beta_label_list(tenant: Tenant, mint: Callable[..., str]) -> None:
    app = create_app(tenant)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="https://emulator.test/beta",
        headers={"Authorization": f"Bearer {mint(roles=['InformationProtectionPolicy.Read.All'])}"},
    ) as beta:
        body = (await beta.get("/security/informationProtection/sensitivityLabels")).json()
        assert {label["name"] for label in body["value"]} == {label.name for label in tenant.labels}
        assert all("sensitivity" in label and "isActive" in label for label in body["value"])
        denied = await beta.get(
            "/security/informationProtection/sensitivityLabels",
            headers={"Authorization": f"Bearer {mint(roles=['SensitivityLabel.Read'])}"},
        )
        assert denied.status_code == 403


# Control plane ------------------------------------------------------------------------------------------


async def test_control_plane_truth_and_acting_as_a_guest(
    graph: httpx.AsyncClient, tenant: Tenant, customer_drive: Drive, guest_customer: Customer
) -> None:
    events: list[ChangeEvent] = []
    tenant.change_listeners.append(events.append)
    truth = (await graph.get(f"{CONTROL}/truth")).json()
    expected = {i.id for i in tenant.files.customer_items(guest_customer.id)}
    assert set(truth["customers"][guest_customer.id]["itemIds"]) == expected
    assert truth["special"]["double_key_encrypted"]
    one = (await graph.get(f"{CONTROL}/truth/{guest_customer.id}")).json()
    assert {f["id"] for f in one["files"]} <= expected
    assert one["siteId"] == guest_customer.site_id
    guest = tenant.users[guest_customer.guest_user_ids[0]]
    added = await graph.post(
        f"{CONTROL}/drives/{customer_drive.id}/items",
        json={
            "name": "Yêu cầu mới.docx",
            "asUser": guest.mail,
            "text": f"Yêu cầu hỗ trợ\nMã số thuế: {guest_customer.tax_code}",
            "shareWith": [tenant.staff[0].id],
        },
    )
    assert added.status_code == 201
    item = tenant.files.items[added.json()["id"]]
    assert item.truth_customers == (guest_customer.id,)
    assert item.truth_identifiers == (guest_customer.tax_code,)
    graph_view = (await graph.get(f"/drives/{customer_drive.id}/items/{item.id}")).json()
    assert graph_view["createdBy"]["user"]["id"] == guest.id
    assert graph_view["shared"] == {"scope": "users"}
    download = await graph.get(f"/drives/{customer_drive.id}/items/{item.id}/content", follow_redirects=True)
    with zipfile.ZipFile(io.BytesIO(download.content)) as package:
        assert guest_customer.tax_code in package.read("word/document.xml").decode()
    assert {e.change_type for e in events} == {"created", "updated"}
    duplicate = await graph.post(
        f"{CONTROL}/drives/{customer_drive.id}/items", json={"name": "Yêu cầu mới.docx", "asUser": guest.id}
    )
    assert duplicate.status_code == 409
    for bad in (
        {"name": "x.docx"},
        {"name": "x.exe", "asUser": guest.id},
        {"name": "a/b.docx", "asUser": guest.id},
        {"name": "x.docx", "asUser": guest.id, "customerId": "C9999"},
    ):
        assert (await graph.post(f"{CONTROL}/drives/{customer_drive.id}/items", json=bad)).status_code == 400
    assert (
        await graph.post(f"{CONTROL}/drives/b!nope/items", json={"name": "x.docx", "asUser": guest.id})
    ).status_code == 404
    assert (await graph.post(f"{CONTROL}/drives/{customer_drive.id}/items", content=b"[")).status_code == 400
    locked = await graph.put(f"{CONTROL}/items/{item.id}/lock", json={"reason": "fileDecryptionDeferred"})
    assert locked.json()["locked"] == "fileDecryptionDeferred"
    confidential = tenant.label_by_name("Confidential")
    assert confidential is not None
    refused = await graph.post(
        f"/drives/{customer_drive.id}/items/{item.id}/assignSensitivityLabel",
        json={"sensitivityLabelId": confidential.id},
    )
    assert_graph_error(refused, 423, "fileDecryptionDeferred")
    assert (await graph.put(f"{CONTROL}/items/{item.id}/lock", json={"reason": "bogus"})).status_code == 400
    assert (await graph.delete(f"{CONTROL}/items/{item.id}/lock")).json()["locked"] is None
    assert (await graph.delete(f"{CONTROL}/items/{item.id}?permanent=true")).status_code == 204
    assert (await graph.get(f"{CONTROL}/items/{item.id}")).json()["purged"] is True
    assert (await graph.get(f"{CONTROL}/items/nope")).status_code == 404


@pytest.mark.parametrize("path", ["/drives/{drive}/items/{item}", "/drives/{drive}/items/{item}/children"])
async def test_unsupported_methods(graph: httpx.AsyncClient, tenant: Tenant, customer_drive: Drive, path: str) -> None:
    item = first_file(tenant, customer_drive)
    url = path.format(drive=customer_drive.id, item=item.id)
    response = await graph.post(url)
    assert response.status_code == 405


async def test_run_time_file_is_rewritten_with_its_label(
    graph: httpx.AsyncClient, tenant: Tenant, customer_drive: Drive, guest_customer: Customer
) -> None:
    set_delay(tenant, 0)
    guest = guest_customer.guest_user_ids[0]
    added = await graph.post(
        f"{CONTROL}/drives/{customer_drive.id}/items",
        json={"name": "Biên bản.pdf", "asUser": guest, "text": f"Biên bản\nMST {guest_customer.tax_code}"},
    )
    item = tenant.files.items[added.json()["id"]]
    before = item.size
    general = tenant.label_by_name("General")
    assert general is not None
    accepted = await graph.post(
        f"/drives/{customer_drive.id}/items/{item.id}/assignSensitivityLabel", json={"sensitivityLabelId": general.id}
    )
    assert (await poll(graph, accepted.headers["location"]))["status"] == "completed"
    docx = await graph.post(
        f"{CONTROL}/drives/{customer_drive.id}/items",
        json={"name": "Ghi nhớ.docx", "asUser": guest, "text": "Ghi nhớ\nnội dung"},
    )
    memo = tenant.files.items[docx.json()["id"]]
    plain_size = memo.size
    accepted = await graph.post(
        f"/drives/{customer_drive.id}/items/{memo.id}/assignSensitivityLabel", json={"sensitivityLabelId": general.id}
    )
    assert (await poll(graph, accepted.headers["location"]))["status"] == "completed"
    download = await graph.get(f"/drives/{customer_drive.id}/items/{memo.id}/content", follow_redirects=True)
    assert len(download.content) == memo.size
    assert memo.size > plain_size
    with zipfile.ZipFile(io.BytesIO(download.content)) as package:
        assert general.id in package.read("docProps/custom.xml").decode()
    pdf = await graph.get(f"/drives/{customer_drive.id}/items/{item.id}/content", follow_redirects=True)
    assert pdf.content.startswith(b"%PDF")
    assert guest_customer.tax_code.encode() in pdf.content
    assert len(pdf.content) == item.size == before

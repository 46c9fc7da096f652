"""Files outside Graph: pre-authenticated downloads, label-job monitors, and the test/demo control plane.

Mounted under /_emulator/files. Downloads and monitors need no Authorization header (a signed, short-lived
query parameter stands in for it, as on SharePoint). The control endpoints let tests and the demo inspect the
ground truth and act as a person in the tenant: add, edit or delete a file as a customer guest, lock a file,
expire a drive's delta tokens, or change how long label jobs take.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from emulator.auth import tenant_of
from emulator.errors import GraphError
from emulator.files import render, service
from emulator.files.content import content_bytes
from emulator.files.store import DriveItem, FileStore
from emulator.state import Tenant

router = APIRouter(prefix="/files")

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def download_url(request: Request, store: FileStore, item: DriveItem) -> str:
    token = service.download_token(store, item.id)
    return (
        f"{render.public_base(request)}/_emulator/files/_layouts/15/download.aspx?UniqueId={item.guid}&tempauth={token}"
    )


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


@router.get("/_layouts/15/download.aspx")
async def download(request: Request) -> Response:
    tenant = tenant_of(request)
    store = tenant.files
    item_id = service.verify_download_token(store, request.query_params.get("tempauth", ""))
    with tenant.lock:
        item = store.items.get(item_id) if item_id else None
        if item is None or item.guid != request.query_params.get("UniqueId"):
            return _error(401, "accessDenied", "The download link is invalid or has expired.")
        if not item.alive or item.is_folder:
            return _error(404, "itemNotFound", "The file was deleted.")
        data = content_bytes(tenant, item)
        etag, mime = item.etag, item.mime_type or "application/octet-stream"
    headers = {"ETag": etag, "Accept-Ranges": "bytes"}
    match = _RANGE.match(request.headers.get("range", "").strip())
    if match and (match.group(1) or match.group(2)) and data:
        first, last = match.groups()
        if first:
            start, end = int(first), min(int(last) if last else len(data) - 1, len(data) - 1)
        else:
            start, end = max(0, len(data) - int(last)), len(data) - 1
        if start <= end:
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            return Response(data[start : end + 1], status_code=206, media_type=mime, headers=headers)
        # An unsatisfiable range: the docs allow ignoring the header and returning the whole file.
    return Response(data, media_type=mime, headers=headers)


@router.get("/_api/v2.0/monitor/{operation_id}")
async def monitor(request: Request, operation_id: str) -> JSONResponse:
    tenant = tenant_of(request)
    store = tenant.files
    with tenant.lock:
        operation = store.operations.get(operation_id)
        if operation is None or request.query_params.get("tempAuth", "") != service.sign(store, operation_id):
            return _error(404, "itemNotFound", "The monitor URL is unknown or has expired.")
        service.settle_operations(tenant)
        status, body = service.operation_status(operation)
    return JSONResponse(body, status_code=status)


# Ground truth -------------------------------------------------------------------------------------------


def truth_of(tenant: Tenant, customer_id: str) -> dict[str, Any]:
    customer = tenant.customer(customer_id)
    if customer is None:
        raise GraphError(404, "itemNotFound", f"Unknown customer '{customer_id}'.")
    items = tenant.files.customer_items(customer_id)
    return {
        "customerId": customer_id,
        "siteId": customer.site_id,
        "itemIds": [i.id for i in items],
        "files": [
            {"id": i.id, "driveId": i.drive_id, "name": i.name, "identifiers": list(i.truth_identifiers)}
            for i in items
            if not i.is_folder
        ],
    }


@router.get("/truth")
async def truth(request: Request) -> JSONResponse:
    tenant = tenant_of(request)
    with tenant.lock:
        by_customer = tenant.files.truth()
        return JSONResponse(
            {
                "customers": {
                    c.id: {"siteId": c.site_id, "itemIds": by_customer.get(c.id, [])} for c in tenant.customers
                },
                "special": tenant.files.special,
            }
        )


@router.get("/truth/{customer_id}")
async def customer_truth(request: Request, customer_id: str) -> JSONResponse:
    tenant = tenant_of(request)
    with tenant.lock:
        return JSONResponse(truth_of(tenant, customer_id))


def item_state(tenant: Tenant, item: DriveItem) -> dict[str, Any]:
    """Everything a test may want to check about one item, including what Graph doesn't expose."""
    label = item.label
    pending = [op.id for op in tenant.files.operations.values() if op.item_id == item.id and op.status == "inProgress"]
    label_state = None
    if label is not None:
        definition = service.label_by_id(tenant, label.label_id)
        label_state = {
            "sensitivityLabelId": label.label_id,
            "name": definition.name if definition else None,
            "assignmentMethod": label.method,
            "assignedBy": label.assigned_by,
            "manual": label.manual,
            "justificationText": label.justification,
        }
    return {
        "id": item.id,
        "driveId": item.drive_id,
        "name": item.name,
        "eTag": item.etag,
        "deleted": item.deleted is not None,
        "purged": item.purged,
        "locked": item.locked,
        "retentionLabel": item.retention_label,
        "sensitivityLabel": label_state,
        "pendingLabelOperations": pending,
        "truthCustomers": list(item.truth_customers),
        "truthIdentifiers": list(item.truth_identifiers),
    }


def _item(tenant: Tenant, item_id: str) -> DriveItem:
    item = tenant.files.items.get(item_id)
    if item is None:
        raise GraphError(404, "itemNotFound", f"Unknown item '{item_id}'.")
    return item


@router.get("/items/{item_id}")
async def get_item_state(request: Request, item_id: str) -> JSONResponse:
    tenant = tenant_of(request)
    with tenant.lock:
        service.settle_operations(tenant)
        return JSONResponse(item_state(tenant, _item(tenant, item_id)))


@router.get("/labels")
async def label_states(request: Request) -> JSONResponse:
    """item id -> label state, for every labelled item."""
    tenant = tenant_of(request)
    with tenant.lock:
        service.settle_operations(tenant)
        labelled = [i for i in tenant.files.items.values() if i.label is not None and i.alive]
        return JSONResponse({i.id: item_state(tenant, i)["sensitivityLabel"] for i in labelled})


# Acting as a person -------------------------------------------------------------------------------------


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise GraphError(400, "BadRequest", "The body must be a JSON object.") from None
    if not isinstance(body, dict):
        raise GraphError(400, "BadRequest", "The body must be a JSON object.")
    return body


def _person(tenant: Tenant, ref: Any) -> str:
    user = tenant.user(ref) if isinstance(ref, str) and ref else None
    if user is None:
        raise GraphError(400, "invalidRequest", "asUser must name a user of the tenant (id, UPN or mail).")
    return user.id


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise GraphError(400, "invalidRequest", f"{key} must be a string.")
    return value


@router.post("/drives/{drive_id}/items")
async def add_item(request: Request, drive_id: str) -> JSONResponse:
    """Body: {"name", "asUser", "parentId"? (default root), "folder"?, "customerId"?, "text"?, "shareWith"?: [user]}"""
    tenant = tenant_of(request)
    body = await _body(request)
    name = body.get("name")
    if not isinstance(name, str):
        raise GraphError(400, "invalidRequest", "name is required.")
    with tenant.lock:
        store = tenant.files
        drive = store.drives.get(drive_id)
        if drive is None:
            raise GraphError(404, "itemNotFound", f"Unknown drive '{drive_id}'.")
        parent = store.live_item(drive, _optional_str(body, "parentId") or "root")
        if parent is None:
            raise GraphError(404, "itemNotFound", "The parent folder doesn't exist.")
        customer_id = _optional_str(body, "customerId")
        if customer_id is not None and tenant.customer(customer_id) is None:
            raise GraphError(400, "invalidRequest", f"Unknown customer '{customer_id}'.")
        as_user = _person(tenant, body.get("asUser"))
        item = service.add_item(
            tenant,
            drive,
            parent,
            name,
            as_user=as_user,
            folder=bool(body.get("folder")),
            customer_id=customer_id,
            text=_optional_str(body, "text"),
        )
        share_with = body.get("shareWith") or []
        if not isinstance(share_with, list):
            raise GraphError(400, "invalidRequest", "shareWith must be a list of users.")
        for ref in share_with:
            service.share_item(tenant, item, user_id=_person(tenant, ref), email=None, roles=("write",))
        return JSONResponse(render.item_json(tenant, item), status_code=201)


@router.patch("/items/{item_id}")
async def modify_item(request: Request, item_id: str) -> JSONResponse:
    """Body: {"asUser", "text"?, "name"?}: an edit by that person (new version, modified time and modifier)."""
    tenant = tenant_of(request)
    body = await _body(request)
    with tenant.lock:
        item = _item(tenant, item_id)
        if not item.alive:
            raise GraphError(404, "itemNotFound", "The item is deleted.")
        service.modify_item(
            tenant,
            item,
            as_user=_person(tenant, body.get("asUser")),
            text=_optional_str(body, "text"),
            name=_optional_str(body, "name"),
        )
        return JSONResponse(render.item_json(tenant, item))


@router.delete("/items/{item_id}")
async def delete_item(request: Request, item_id: str) -> Response:
    """?permanent=true skips the recycle bin. Retention rules apply as they do for Graph callers."""
    tenant = tenant_of(request)
    with tenant.lock:
        item = _item(tenant, item_id)
        if not item.alive:
            raise GraphError(404, "itemNotFound", "The item is already deleted.")
        service.delete_item(tenant, item, permanently=request.query_params.get("permanent") == "true")
    return Response(status_code=204)


@router.put("/items/{item_id}/lock")
async def lock_item(request: Request, item_id: str) -> JSONResponse:
    """Body: {"reason": "fileDoubleKeyEncrypted" | "fileDecryptionNotSupported" | "fileDecryptionDeferred"}."""
    tenant = tenant_of(request)
    body = await _body(request)
    with tenant.lock:
        item = _item(tenant, item_id)
        service.set_lock(item, _optional_str(body, "reason") or "fileDoubleKeyEncrypted")
        return JSONResponse(item_state(tenant, item))


@router.delete("/items/{item_id}/lock")
async def unlock_item(request: Request, item_id: str) -> JSONResponse:
    tenant = tenant_of(request)
    with tenant.lock:
        item = _item(tenant, item_id)
        service.set_lock(item, None)
        return JSONResponse(item_state(tenant, item))


@router.post("/drives/{drive_id}/expireDeltaTokens")
async def expire_delta_tokens(request: Request, drive_id: str) -> Response:
    """Every delta token of the drive now gets 410 Gone (resyncRequired) with a fresh enumeration URL."""
    tenant = tenant_of(request)
    with tenant.lock:
        drive = tenant.files.drives.get(drive_id)
        if drive is None:
            raise GraphError(404, "itemNotFound", f"Unknown drive '{drive_id}'.")
        service.expire_delta_tokens(drive)
    return Response(status_code=204)


def _settings(store: FileStore) -> dict[str, Any]:
    return {
        "labelOperationDelaySeconds": store.label_delay_seconds,
        "labelAssignLimit": store.label_assign_limit,
        "labelAssignWindowSeconds": store.label_assign_window_seconds,
    }


@router.get("/settings")
async def get_settings(request: Request) -> JSONResponse:
    return JSONResponse(_settings(tenant_of(request).files))


@router.patch("/settings")
async def update_settings(request: Request) -> JSONResponse:
    """Body: any of labelOperationDelaySeconds (>= 0), labelAssignLimit (>= 1), labelAssignWindowSeconds (> 0)."""
    tenant = tenant_of(request)
    body = await _body(request)
    rules = {
        "labelOperationDelaySeconds": ("label_delay_seconds", 0.0),
        "labelAssignLimit": ("label_assign_limit", 1),
        "labelAssignWindowSeconds": ("label_assign_window_seconds", 0.001),
    }
    unknown = set(body) - set(rules)
    if unknown:
        raise GraphError(400, "invalidRequest", f"Unknown setting '{sorted(unknown)[0]}'.")
    with tenant.lock:
        store = tenant.files
        for key, value in body.items():
            attribute, minimum = rules[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
                raise GraphError(400, "invalidRequest", f"{key} must be a number >= {minimum}.")
            setattr(store, attribute, int(value) if attribute == "label_assign_limit" else float(value))
        return JSONResponse(_settings(store))

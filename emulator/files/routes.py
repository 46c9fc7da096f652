"""Graph v1.0 for SharePoint and OneDrive: sites, drives, driveItems, delta, deletes and sensitivity labels.

Every drive route exists under /drives/{id}, /users/{id}/drive and /sites/{id}/drive and is served by one
dispatcher, which also accepts the forms the SDK sends (items/root, delta(), delta(token='...')) next to the
documented ones (root/delta?token=...). The pre-authenticated download URLs and the label-job monitor URLs live
on the control router (no Graph prefix, no Authorization), as SharePoint serves them outside Graph too.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

from emulator.auth import authenticate, require_roles, tenant_of
from emulator.errors import GraphError
from emulator.files import control as files_control
from emulator.files import delta, render, service
from emulator.files.render import public_base
from emulator.files.store import LABELABLE_EXTENSIONS, Drive, DriveItem, FileStore, Site, extension_of
from emulator.state import Tenant

router = APIRouter()
# Beta-only endpoints; app.py mounts this router under /beta.
beta_router = APIRouter()
# Test and demo controls, download and monitor URLs: mounted under /_emulator (no Graph prefix, no auth).
control_router = files_control.router

READ_ROLES = ("Files.Read.All", "Files.ReadWrite.All", "Sites.Read.All", "Sites.ReadWrite.All")
WRITE_ROLES = ("Files.ReadWrite.All", "Sites.ReadWrite.All")
_read = require_roles(*READ_ROLES, workload="files")
_write = require_roles(*WRITE_ROLES, workload="files")
_sites = require_roles("Sites.Read.All", "Sites.ReadWrite.All", workload="files")
_labels = require_roles("SensitivityLabel.Read", "SensitivityLabels.Read.All")
_beta_labels = require_roles("InformationProtectionPolicy.Read.All")

CHILDREN_PAGE_SIZE = 200
MAX_TOP = 1000
_DELTA_SEGMENT = re.compile(r"^(?:microsoft\.graph\.)?delta(?:\((?:token=)?'?(?P<token>[^')]*)'?\))?$")
# What can follow an item in a path (any method); a known action with the wrong method is a 405.
_ITEM_ACTIONS = frozenset(
    {
        "",
        "children",
        "content",
        "permissions",
        "retentionLabel",
        "permanentDelete",
        "assignSensitivityLabel",
        "extractSensitivityLabels",
    }
)
_ENTITY_TAGS = re.compile(r'(?:W/)?"[^"]*"|\*')
_METERED_MESSAGE = (
    "Payment Required. Ensure that your application is able to call this premium API."
    "For details see https://aka.ms/graph-metered-overview"
)


# Helpers ------------------------------------------------------------------------------------------------


def _link(request: Request, path: str, params: dict[str, str]) -> str:
    query = urlencode(params, safe="$,'()=", quote_via=quote) if params else ""
    return public_base(request) + quote(path, safe="/,!()'=:$") + (f"?{query}" if query else "")


def _context(request: Request, fragment: str) -> str:
    return f"{public_base(request)}/v1.0/$metadata#{fragment}"


def _query(request: Request, name: str) -> str | None:
    """An OData option, with or without its "$" (Graph accepts both on v1.0)."""
    return request.query_params.get(f"${name}") or request.query_params.get(name)


def _select(request: Request, allowed: frozenset[str], type_name: str) -> tuple[str, ...] | None:
    raw = _query(request, "select")
    if raw is None:
        return None
    fields = tuple(part.strip() for part in raw.split(",") if part.strip())
    for name in fields:
        if name not in allowed:
            raise GraphError(
                400,
                "invalidRequest",
                f"Could not find a property named '{name}' on type 'microsoft.graph.{type_name}'.",
            )
    return fields or None


def _top(request: Request) -> int | None:
    raw = _query(request, "top")
    if raw is None:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise GraphError(400, "invalidRequest", f"Invalid value '{raw}' for $top: it must be a positive integer.")
    return min(int(raw), MAX_TOP)


def _max_page_size(request: Request) -> int | None:
    for preference in request.headers.get("prefer", "").split(","):
        name, _, value = preference.strip().partition("=")
        if name.strip().lower() == "odata.maxpagesize" and value.strip().isdigit() and int(value) > 0:
            return min(int(value), MAX_TOP)
    return None


def _page_response(body: dict[str, Any], page_size_from_prefer: int | None) -> JSONResponse:
    headers = {"Preference-Applied": f"odata.maxpagesize={page_size_from_prefer}"} if page_size_from_prefer else {}
    return JSONResponse(body, headers=headers)


def _encode_skip(offset: int) -> str:
    # Shaped like SharePoint's paging tokens; clients must treat it as opaque.
    return base64.urlsafe_b64encode(f"Paged=TRUE&p_ID={offset}".encode()).decode().rstrip("=")


def _decode_skip(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        offset = int(text.rsplit("p_ID=", 1)[1])
    except (binascii.Error, ValueError, IndexError, UnicodeDecodeError):
        raise GraphError(400, "invalidRequest", "The $skiptoken is malformed.") from None
    if offset < 0:
        raise GraphError(400, "invalidRequest", "The $skiptoken is malformed.")
    return offset


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise GraphError(
            400,
            "BadRequest",
            "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid "
            "JSON format.",
        ) from None
    if not isinstance(body, dict):
        raise GraphError(400, "BadRequest", "The request payload must be a JSON object.")
    return body


def _download_url(request: Request, store: FileStore) -> Callable[[DriveItem], str]:
    return lambda item: files_control.download_url(request, store, item)


def _item_not_found() -> GraphError:
    return GraphError(404, "itemNotFound", "The resource could not be found.")


def _drive_or_error(store: FileStore, drive_id: str) -> Drive:
    drive = store.drives.get(drive_id)
    if drive is not None:
        return drive
    if not drive_id.startswith("b!"):
        raise GraphError(
            400, "invalidRequest", "The provided drive id appears to be malformed, or does not represent a valid drive."
        )
    raise _item_not_found()


def _site_or_error(store: FileStore, site_ref: str) -> Site:
    site = store.site(site_ref)
    if site is not None:
        return site
    host = site_ref.split(",", 1)[0]
    known_hosts = {s.host for s in store.sites.values()}
    if "," in site_ref and host not in known_hosts:
        raise GraphError(400, "invalidRequest", "Invalid hostname for this tenancy")
    raise GraphError(404, "itemNotFound", "Requested site could not be found")


# Sites -------------------------------------------------------------------------------------------------


def _site_filter(raw: str | None) -> Callable[[Site], bool]:
    """getAllSites' $filter, as scanners use it: isPersonalSite eq|ne true|false (joined with "and")."""
    wanted: list[bool] = []
    for clause in re.split(r"\s+and\s+", raw.strip(), flags=re.IGNORECASE) if raw else ():
        match = re.fullmatch(r"isPersonalSite\s+(eq|ne)\s+(true|false)", clause.strip(), flags=re.IGNORECASE)
        if match is None:
            raise GraphError(400, "invalidRequest", f"Invalid filter clause: '{clause.strip()}' is not supported.")
        wanted.append((match.group(2).lower() == "true") == (match.group(1).lower() == "eq"))
    return lambda site: all(site.is_personal == value for value in wanted)


@router.get("/sites/getAllSites")
@router.get("/sites/getAllSites()")
async def get_all_sites(request: Request) -> JSONResponse:
    await _sites(request)
    tenant = tenant_of(request)
    select = _select(request, render.SITE_PROPERTIES, "site")
    keep = _site_filter(_query(request, "filter"))
    prefer = _max_page_size(request)
    page_size = _top(request) or prefer or CHILDREN_PAGE_SIZE
    skip = request.query_params.get("$skiptoken")
    offset = _decode_skip(skip) if skip else 0
    with tenant.lock:
        sites = [s for s in tenant.files.sites.values() if keep(s)]
        page = sites[offset : offset + page_size]
        body: dict[str, Any] = {
            "@odata.context": _context(request, "sites"),
            "value": [render.apply_select(render.site_json(s), select) for s in page],
        }
    if offset + page_size < len(sites):
        params = {k: v for k, v in request.query_params.items() if k != "$skiptoken"}
        params["$skiptoken"] = _encode_skip(offset + page_size)
        body["@odata.nextLink"] = _link(request, request.url.path, params)
    return _page_response(body, prefer)


@router.get("/sites/root")
async def get_root_site(request: Request) -> JSONResponse:
    await _sites(request)
    tenant = tenant_of(request)
    site = tenant.files.root_site()
    if site is None:
        raise GraphError(404, "itemNotFound", "Requested site could not be found")
    return JSONResponse({"@odata.context": _context(request, "sites/$entity"), **render.site_json(site)})


@router.get("/sites/{site_id}")
async def get_site(request: Request, site_id: str) -> JSONResponse:
    await _sites(request)
    tenant = tenant_of(request)
    select = _select(request, render.SITE_PROPERTIES, "site")
    site = _site_or_error(tenant.files, site_id)
    body = render.apply_select(render.site_json(site), select)
    return JSONResponse({"@odata.context": _context(request, "sites/$entity"), **body})


@router.get("/sites/{site_id}/drives")
async def list_site_drives(request: Request, site_id: str) -> JSONResponse:
    await _read(request)
    tenant = tenant_of(request)
    select = _select(request, render.DRIVE_PROPERTIES, "drive")
    with tenant.lock:
        site = _site_or_error(tenant.files, site_id)
        drives = [tenant.files.drives[d] for d in site.drive_ids]
        value = [render.apply_select(render.drive_json(tenant, d), select) for d in drives]
    return JSONResponse({"@odata.context": _context(request, "drives"), "value": value})


@router.get("/sites/{site_id}/drive")
async def get_site_drive(request: Request, site_id: str) -> JSONResponse:
    await _read(request)
    tenant = tenant_of(request)
    site = _site_or_error(tenant.files, site_id)
    if not site.drive_ids:
        raise _item_not_found()
    return _drive_response(request, tenant, tenant.files.drives[site.drive_ids[0]])


@router.api_route("/sites/{site_id}/drive/{rest:path}", methods=["GET", "POST", "DELETE"])
async def site_drive_path(request: Request, site_id: str, rest: str) -> Response:
    tenant = tenant_of(request)
    authenticate(request)
    site = _site_or_error(tenant.files, site_id)
    if not site.drive_ids:
        raise _item_not_found()
    return await _drive_path(request, tenant, tenant.files.drives[site.drive_ids[0]], rest)


# Drives -------------------------------------------------------------------------------------------------


def _user_drive(tenant: Tenant, user_ref: str) -> Drive:
    user = tenant.user(user_ref)
    if user is None:
        raise GraphError(
            404,
            "Request_ResourceNotFound",
            f"Resource '{user_ref}' does not exist or one of its queried reference-property objects are not present.",
        )
    if user.drive_id is None or user.drive_id not in tenant.files.drives:
        raise GraphError(404, "ResourceNotFound", "User's mysite not found.")
    return tenant.files.drives[user.drive_id]


def _drive_response(request: Request, tenant: Tenant, drive: Drive) -> JSONResponse:
    select = _select(request, render.DRIVE_PROPERTIES, "drive")
    with tenant.lock:
        body = render.apply_select(render.drive_json(tenant, drive), select)
    return JSONResponse({"@odata.context": _context(request, "drives/$entity"), **body})


@router.get("/users/{user_ref}/drive")
async def get_user_drive(request: Request, user_ref: str) -> JSONResponse:
    await _read(request)
    tenant = tenant_of(request)
    return _drive_response(request, tenant, _user_drive(tenant, user_ref))


@router.api_route("/users/{user_ref}/drive/{rest:path}", methods=["GET", "POST", "DELETE"])
async def user_drive_path(request: Request, user_ref: str, rest: str) -> Response:
    tenant = tenant_of(request)
    authenticate(request)
    return await _drive_path(request, tenant, _user_drive(tenant, user_ref), rest)


@router.get("/drives/{drive_id}")
async def get_drive(request: Request, drive_id: str) -> JSONResponse:
    await _read(request)
    tenant = tenant_of(request)
    return _drive_response(request, tenant, _drive_or_error(tenant.files, drive_id))


@router.api_route("/drives/{drive_id}/{rest:path}", methods=["GET", "POST", "DELETE"])
async def drive_path(request: Request, drive_id: str, rest: str) -> Response:
    tenant = tenant_of(request)
    authenticate(request)
    return await _drive_path(request, tenant, _drive_or_error(tenant.files, drive_id), rest)


# The drive dispatcher ----------------------------------------------------------------------------------


def _resolve(store: FileStore, drive: Drive, rest: str) -> tuple[DriveItem, str]:
    """Split "items/{id}/children", "root:/a/b:/content", "root/delta()", ... into (item, action)."""
    rest = rest.strip("/")
    if rest.startswith("root:"):
        path, colon, action = rest[len("root:") :].partition(":")
        item = store.by_path(drive, path)
        if item is None or not item.alive:
            raise _item_not_found()
        return item, action.strip("/") if colon else ""
    if rest == "root" or rest.startswith("root/"):
        return store.items[drive.root_id], rest[len("root") :].strip("/")
    if rest.startswith("items/"):
        item_ref, _, action = rest[len("items/") :].partition("/")
        item = store.live_item(drive, item_ref)
        if item is None:
            raise _item_not_found()
        return item, action
    if _DELTA_SEGMENT.match(rest):
        return store.items[drive.root_id], rest
    segment = rest.split("/", 1)[0]
    raise GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")


async def _drive_path(request: Request, tenant: Tenant, drive: Drive, rest: str) -> Response:
    store = tenant.files
    if not rest.strip("/"):
        await _read(request)
        if request.method != "GET":
            raise GraphError(405, "Request_BadRequest", "The requested HTTP method is not supported for this resource.")
        return _drive_response(request, tenant, drive)
    method = request.method
    if method == "GET":
        await _read(request)
    with tenant.lock:
        service.settle_operations(tenant)
        item, action = _resolve(store, drive, rest)
    action = action.removeprefix("microsoft.graph.")
    delta_match = _DELTA_SEGMENT.match(action)
    if method == "GET":
        if delta_match:
            return _delta(request, tenant, drive, item, delta_match.group("token"))
        handlers: dict[str, Callable[[Request, Tenant, DriveItem], Response]] = {
            "": _get_item,
            "children": _list_children,
            "content": _get_content,
            "permissions": _list_permissions,
            "retentionLabel": _get_retention_label,
        }
        handler = handlers.get(action)
        if handler is not None:
            return handler(request, tenant, item)
    elif method == "DELETE" and action == "":
        await _write(request)
        return _delete(request, tenant, item)
    elif method == "POST":
        if action == "permanentDelete":
            await _write(request)
            with tenant.lock:
                service.delete_item(tenant, item, permanently=True)
            return Response(status_code=204)
        if action == "assignSensitivityLabel":
            return await _assign_label(request, tenant, item)
        if action == "extractSensitivityLabels":
            await _read(request)
            return _extract_labels(tenant, item)
    if action in _ITEM_ACTIONS or delta_match:
        raise GraphError(405, "Request_BadRequest", "The requested HTTP method is not supported for this resource.")
    raise GraphError(400, "BadRequest", f"Resource not found for the segment '{action.split('/', 1)[0]}'.")


def _if_none_match(request: Request, item: DriveItem) -> bool:
    tag = request.headers.get("if-none-match")
    return tag is not None and tag.removeprefix("W/") in (item.etag, item.ctag, "*")


def _get_item(request: Request, tenant: Tenant, item: DriveItem) -> Response:
    select = _select(request, render.DRIVE_ITEM_PROPERTIES, "driveItem")
    expand = {part.strip() for part in (_query(request, "expand") or "").split(",") if part.strip()}
    unsupported = expand - {"children", "retentionLabel"}
    if unsupported:
        raise GraphError(400, "invalidRequest", f"Unsupported $expand: '{sorted(unsupported)[0]}'.")
    if _if_none_match(request, item):
        return Response(status_code=304)
    with tenant.lock:
        body = render.item_json(tenant, item, download_url=_download_url(request, tenant.files))
        if "children" in expand:
            children = tenant.files.live_children(item)[:CHILDREN_PAGE_SIZE]
            body["children"] = [render.item_json(tenant, child) for child in children]
        if "retentionLabel" in expand and item.retention_label:
            body["retentionLabel"] = render.retention_label_json(tenant, item)
    body = render.apply_select(body, (*select, *expand) if select else None)
    context = _context(request, f"drives('{item.drive_id}')/items/$entity")
    return JSONResponse({"@odata.context": context, **body}, headers={"ETag": item.etag})


_ORDERABLE = {
    "name": lambda item: item.name.lower(),
    "lastModifiedDateTime": lambda item: item.modified,
    "createdDateTime": lambda item: item.created,
    "size": lambda item: item.size,
}


def _list_children(request: Request, tenant: Tenant, item: DriveItem) -> Response:
    select = _select(request, render.DRIVE_ITEM_PROPERTIES, "driveItem")
    if _query(request, "filter") is not None:
        raise GraphError(400, "invalidRequest", "$filter is not supported on this collection.")
    order = _query(request, "orderby")
    sort_key: Callable[[DriveItem], Any] | None = None
    descending = False
    if order:
        field_name, _, direction = order.strip().partition(" ")
        sort_key = _ORDERABLE.get(field_name)
        if sort_key is None or direction.strip().lower() not in ("", "asc", "desc"):
            raise GraphError(400, "invalidRequest", f"Unsupported $orderby: '{order}'.")
        descending = direction.strip().lower() == "desc"
    if not item.is_folder:
        return JSONResponse({"@odata.context": _context(request, "Collection(driveItem)"), "value": []})
    prefer = _max_page_size(request)
    page_size = _top(request) or prefer or CHILDREN_PAGE_SIZE
    skip = request.query_params.get("$skiptoken")
    offset = _decode_skip(skip) if skip else 0
    store = tenant.files
    download_url = _download_url(request, store)
    with tenant.lock:
        if sort_key is not None:
            ordered = sorted(store.live_children(item), key=sort_key, reverse=descending)
            page = ordered[offset : offset + page_size]
            next_offset = offset + page_size if offset + page_size < len(ordered) else None
        else:
            # Default order walks the raw child list (deleted entries stay in it), so offsets never shift.
            children = item.children or []
            page, position = [], offset
            while position < len(children) and len(page) < page_size:
                child = store.items[children[position]]
                position += 1
                if child.alive:
                    page.append(child)
            more = any(store.items[c].alive for c in children[position:])
            next_offset = position if more else None
        value = [render.apply_select(render.item_json(tenant, c, download_url=download_url), select) for c in page]
    body: dict[str, Any] = {
        "@odata.context": _context(request, f"drives('{item.drive_id}')/items('{item.id}')/children"),
        "value": value,
    }
    if next_offset is not None:
        params = {k: v for k, v in request.query_params.items() if k != "$skiptoken"}
        params["$skiptoken"] = _encode_skip(next_offset)
        body["@odata.nextLink"] = _link(request, request.url.path, params)
    return _page_response(body, prefer)


def _get_content(request: Request, tenant: Tenant, item: DriveItem) -> Response:
    if item.is_folder:
        raise GraphError(400, "invalidRequest", "Only files can be downloaded; this item is a folder.")
    if _if_none_match(request, item):
        return Response(status_code=304)
    return RedirectResponse(_download_url(request, tenant.files)(item), status_code=302)


def _list_permissions(request: Request, tenant: Tenant, item: DriveItem) -> Response:
    select = _select(
        request,
        frozenset({"id", "roles", "grantedTo", "grantedToV2", "invitation", "link", "inheritedFrom", "shareId"}),
        "permission",
    )
    with tenant.lock:
        grants = [render.owner_permission_json(tenant, item)]
        grants += [render.permission_json(tenant, p) for p in item.permissions]
    return JSONResponse(
        {
            "@odata.context": _context(request, f"drives('{item.drive_id}')/items('{item.id}')/permissions"),
            "value": [render.apply_select(g, select) for g in grants],
        }
    )


def _get_retention_label(request: Request, tenant: Tenant, item: DriveItem) -> Response:
    if not item.retention_label:
        raise GraphError(404, "itemNotFound", "No retention label is applied to this item.")
    context = _context(request, f"drives('{item.drive_id}')/items('{item.id}')/retentionLabel/$entity")
    return JSONResponse({"@odata.context": context, **render.retention_label_json(tenant, item)})


def _delete(request: Request, tenant: Tenant, item: DriveItem) -> Response:
    expected = request.headers.get("if-match")
    with tenant.lock:
        if expected is not None:
            # eTags contain commas ("{GUID},N"), so split the list on its quoted tags, not on commas.
            tags = {tag.removeprefix("W/") for tag in _ENTITY_TAGS.findall(expected)}
            if "*" not in tags and not tags & {item.etag, item.ctag}:
                raise GraphError(
                    412,
                    "resourceModified",
                    "ETag does not match current item's value",
                    inner_code="entityTagDoesNotMatch",
                )
        service.delete_item(tenant, item)
    return Response(status_code=204)


# Delta --------------------------------------------------------------------------------------------------


def _delta(request: Request, tenant: Tenant, drive: Drive, scope: DriveItem, path_token: str | None) -> Response:
    store = tenant.files
    token = path_token if path_token else request.query_params.get("token")
    # Links keep the caller's form (drive, user or site; root or folder) with the token as a query parameter.
    link_path = request.url.path.rsplit("/", 1)[0] + "/delta"
    fresh = _link(request, link_path, {})

    def gone() -> GraphError:
        return GraphError(
            410,
            "resyncRequired",
            "The delta token is no longer valid; start a new enumeration from the Location URL.",
            headers={"Location": fresh},
            inner_code="resyncChangesApplyDifferences",
        )

    select = _select(request, render.DRIVE_ITEM_PROPERTIES, "driveItem")
    top = _top(request)
    prefer = _max_page_size(request)
    with tenant.lock:
        if not token:
            cursor = delta.Cursor(drive.id, scope.id, "i", store.last_seq, drive.token_epoch, select=select, top=top)
        elif token == "latest":
            latest = delta.Cursor(drive.id, scope.id, "c", store.last_seq, drive.token_epoch, select=select, top=top)
            return JSONResponse(
                {
                    "@odata.context": _context(request, "Collection(driveItem)"),
                    "value": [],
                    "@odata.deltaLink": _link(request, link_path, {"token": delta.encode(latest)}),
                }
            )
        elif (since := delta.parse_timestamp(token)) is not None:
            cursor = delta.Cursor(
                drive.id,
                scope.id,
                "t",
                store.last_seq,
                drive.token_epoch,
                since=since.isoformat(),
                select=select,
                top=top,
            )
        else:
            decoded = delta.decode(token)
            if decoded is None or decoded.drive_id != drive.id or decoded.epoch != drive.token_epoch:
                raise gone()
            # The URL names the scope (root or a folder); the token only says where the feed stands.
            cursor = replace(decoded, scope_id=scope.id)
        page_size = cursor.top or prefer or delta.DEFAULT_PAGE_SIZE
        result = delta.page(store, drive, cursor, page_size, exclude_parents="deltaexcludeparent" in request.headers)
        download_url = _download_url(request, store)
        value = [
            render.apply_select(
                render.item_json(tenant, i, download_url=download_url if i.alive else None, in_delta=True),
                cursor.select,
            )
            for i in result.items
        ]
    body: dict[str, Any] = {"@odata.context": _context(request, "Collection(driveItem)"), "value": value}
    if result.next_cursor is not None:
        body["@odata.nextLink"] = _link(request, link_path, {"token": delta.encode(result.next_cursor)})
    elif result.delta_cursor is not None:
        body["@odata.deltaLink"] = _link(request, link_path, {"token": delta.encode(result.delta_cursor)})
    return _page_response(body, prefer)


# Sensitivity labels -------------------------------------------------------------------------------------


async def _assign_label(request: Request, tenant: Tenant, item: DriveItem) -> Response:
    caller = await _write(request)
    if not tenant.metered_billing_enabled:
        raise GraphError(402, "paymentRequired", _METERED_MESSAGE)
    body = await _json_body(request)
    label_id = body.get("sensitivityLabelId")
    if not isinstance(label_id, str):
        raise GraphError(400, "invalidRequest", "sensitivityLabelId is required and must be a string.")
    method = body.get("assignmentMethod", "standard")
    if not isinstance(method, str) or method not in service.ASSIGNMENT_METHODS:
        raise GraphError(
            400, "invalidRequest", f"Invalid assignmentMethod '{method}': use standard, privileged or auto."
        )
    justification = body.get("justificationText")
    if justification is not None and not isinstance(justification, str):
        raise GraphError(400, "invalidRequest", "justificationText must be a string.")
    with tenant.lock:
        operation = service.accept_label_assignment(
            tenant, item, label_id=label_id, method=method, justification=justification, client_id=caller.client_id
        )
        signature = service.sign(tenant.files, operation.id)
    monitor = f"{public_base(request)}/_emulator/files/_api/v2.0/monitor/{operation.id}?tempAuth={signature}"
    return Response(status_code=202, headers={"Location": monitor})


def _extract_labels(tenant: Tenant, item: DriveItem) -> Response:
    if item.locked:
        raise GraphError(423, item.locked, "The file is locked: its content can't be opened to read labels.")
    if item.is_folder or extension_of(item.name) not in LABELABLE_EXTENSIONS:
        # The docs limit the API to supported file types without naming the error; UNCONFIRMED status and code.
        raise GraphError(400, "notSupported", "Sensitivity labels can't be extracted from this type of item.")
    labels = []
    if item.label is not None:
        labels.append(
            {
                "sensitivityLabelId": item.label.label_id,
                "assignmentMethod": item.label.method,
                "tenantId": tenant.tenant_id,
            }
        )
    return JSONResponse({"value": {"@odata.type": "microsoft.graph.extractSensitivityLabelsResult", "labels": labels}})


def _label_filter(raw: str | None) -> Callable[[Any], bool]:
    """The documented $filter forms: applicableTo has 'x' and id in ('a','b'), joined with "and"."""
    targets: list[str] = []
    id_sets: list[set[str]] = []
    for clause in re.split(r"\s+and\s+", raw.strip(), flags=re.IGNORECASE) if raw else ():
        clause = clause.strip()
        has = re.fullmatch(r"applicableTo\s+has\s+'([^']*)'", clause, flags=re.IGNORECASE)
        within = re.fullmatch(r"id\s+in\s+\(([^)]*)\)", clause, flags=re.IGNORECASE)
        if has:
            targets.append(has.group(1).lower())
        elif within:
            id_sets.append({part.strip().strip("'").lower() for part in within.group(1).split(",")})
        else:
            raise GraphError(400, "BadRequest", f"Invalid filter clause: '{clause}' is not supported.")

    def keep(label: Any) -> bool:
        workloads = label.applicable_to.lower().split(",")
        return all(t in workloads for t in targets) and all(label.id.lower() in ids for ids in id_sets)

    return keep


@router.get("/security/dataSecurityAndGovernance/sensitivityLabels")
async def list_sensitivity_labels(request: Request) -> JSONResponse:
    await _labels(request)
    tenant = tenant_of(request)
    keep = _label_filter(_query(request, "filter"))
    return JSONResponse(
        {
            "@odata.context": _context(request, "security/dataSecurityAndGovernance/sensitivityLabels"),
            "value": [render.sensitivity_label_json(label) for label in tenant.labels if keep(label)],
        }
    )


@router.get("/security/dataSecurityAndGovernance/sensitivityLabels/{label_id}")
async def get_sensitivity_label(request: Request, label_id: str) -> JSONResponse:
    await _labels(request)
    label = service.label_by_id(tenant_of(request), label_id)
    if label is None:
        raise GraphError(404, "itemNotFound", f"Sensitivity label '{label_id}' was not found.")
    context = _context(request, "security/dataSecurityAndGovernance/sensitivityLabels/$entity")
    return JSONResponse({"@odata.context": context, **render.sensitivity_label_json(label)})


@beta_router.get("/security/informationProtection/sensitivityLabels")
async def list_beta_sensitivity_labels(request: Request) -> JSONResponse:
    await _beta_labels(request)
    tenant = tenant_of(request)
    context = f"{public_base(request)}/beta/$metadata#security/informationProtection/sensitivityLabels"
    return JSONResponse(
        {"@odata.context": context, "value": [render.beta_sensitivity_label_json(label) for label in tenant.labels]}
    )


@beta_router.get("/security/informationProtection/sensitivityLabels/{label_id}")
async def get_beta_sensitivity_label(request: Request, label_id: str) -> JSONResponse:
    await _beta_labels(request)
    label = service.label_by_id(tenant_of(request), label_id)
    if label is None:
        raise GraphError(404, "itemNotFound", f"Sensitivity label '{label_id}' was not found.")
    context = f"{public_base(request)}/beta/$metadata#security/informationProtection/sensitivityLabels/$entity"
    return JSONResponse({"@odata.context": context, **render.beta_sensitivity_label_json(label)})

"""JSON shapes of sites, drives, driveItems, permissions and labels as Graph v1.0 returns them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fastapi import Request

from emulator.files.service import retention_settings
from emulator.files.store import Drive, DriveItem, FileStore, Permission, Site
from emulator.state import iso

if TYPE_CHECKING:
    from emulator.state import SensitivityLabel, Tenant

DRIVE_ITEM_PROPERTIES = frozenset(
    {
        "id",
        "name",
        "size",
        "createdBy",
        "createdDateTime",
        "lastModifiedBy",
        "lastModifiedDateTime",
        "eTag",
        "cTag",
        "file",
        "folder",
        "root",
        "parentReference",
        "webUrl",
        "fileSystemInfo",
        "shared",
        "deleted",
        "description",
        "sharepointIds",
        "package",
        "image",
        "photo",
        "video",
        "audio",
        "remoteItem",
        "specialFolder",
        "searchResult",
        "malware",
        "publication",
        "listItem",
        "children",
        "permissions",
        "retentionLabel",
        "thumbnails",
        "versions",
        "content",
        "webDavUrl",
        "createdByUser",
        "lastModifiedByUser",
        "@microsoft.graph.downloadUrl",
    }
)
SITE_PROPERTIES = frozenset(
    {
        "id",
        "name",
        "displayName",
        "webUrl",
        "description",
        "createdDateTime",
        "lastModifiedDateTime",
        "isPersonalSite",
        "root",
        "siteCollection",
        "sharepointIds",
        "eTag",
        "drive",
        "drives",
        "lists",
    }
)
DRIVE_PROPERTIES = frozenset(
    {
        "id",
        "name",
        "description",
        "driveType",
        "createdDateTime",
        "lastModifiedDateTime",
        "webUrl",
        "owner",
        "quota",
        "createdBy",
        "lastModifiedBy",
        "sharePointIds",
        "system",
        "root",
        "items",
        "list",
        "special",
    }
)


def public_base(request: Request) -> str:
    """The emulator's public origin, for absolute links (@odata.nextLink, Location, download URLs)."""
    configured = getattr(request.app.state, "base_url", None)
    return str(configured or request.base_url).rstrip("/")


def identity(tenant: Tenant, principal_id: str) -> dict[str, Any]:
    """An identitySet: a user of the directory (staff or guest) or an application."""
    user = tenant.users.get(principal_id)
    if user is not None:
        return {"user": {"email": user.mail, "id": user.id, "displayName": user.display_name}}
    app = tenant.apps.get(principal_id)
    if app is not None:
        return {"application": {"id": app.client_id, "displayName": app.display_name}}
    return {"user": {"displayName": "SharePoint App"}}


def apply_select(body: dict[str, Any], select: Iterable[str] | None) -> dict[str, Any]:
    if not select:
        return body
    wanted = set(select)
    return {k: v for k, v in body.items() if k in wanted or k.startswith("@odata.") or k == "deleted"}


def site_json(site: Site) -> dict[str, Any]:
    body: dict[str, Any] = {
        "createdDateTime": iso(site.created),
        "description": site.description,
        "id": site.id,
        "lastModifiedDateTime": iso(site.modified),
        "name": site.name,
        "webUrl": site.web_url,
        "displayName": site.display_name,
        "isPersonalSite": site.is_personal,
        "root": {},
        "siteCollection": {"hostName": site.host, **({"root": {}} if site.is_root else {})},
    }
    return body


def drive_json(tenant: Tenant, drive: Drive) -> dict[str, Any]:
    system = {"user": {"displayName": "System Account"}}
    owner = identity(tenant, drive.owner_user_id) if drive.owner_user_id else system
    root = tenant.files.items[drive.root_id]
    return {
        "createdDateTime": iso(drive.created),
        "description": drive.description,
        "id": drive.id,
        "lastModifiedDateTime": iso(max(root.modified, drive.created)),
        "name": drive.name,
        "webUrl": drive.web_url,
        "driveType": drive.drive_type,
        "createdBy": system,
        "owner": owner,
        "quota": {
            "deleted": drive.deleted_bytes,
            "remaining": max(0, drive.quota_total - drive.used - drive.deleted_bytes),
            "state": "normal",
            "total": drive.quota_total,
            "used": drive.used + drive.deleted_bytes,
        },
    }


def _parent_reference(tenant: Tenant, drive: Drive, item: DriveItem, *, with_path: bool) -> dict[str, Any]:
    reference: dict[str, Any] = {"driveType": drive.drive_type, "driveId": drive.id}
    if item.parent_id is None:
        return reference
    store = tenant.files
    parent = store.items[item.parent_id]
    reference["id"] = parent.id
    reference["name"] = drive.name if parent.is_root else parent.name
    if with_path:
        reference["path"] = f"/drives/{drive.id}/root:" + store.path_of(item)
    reference["siteId"] = drive.site_id
    return reference


def item_web_url(tenant: Tenant, drive: Drive, item: DriveItem) -> str:
    if item.is_root:
        return drive.web_url
    path = tenant.files.path_of(item) + "/" + item.name
    return drive.web_url + quote(path, safe="/")


def item_json(
    tenant: Tenant,
    item: DriveItem,
    *,
    download_url: Callable[[DriveItem], str] | None = None,
    in_delta: bool = False,
) -> dict[str, Any]:
    """A driveItem. In delta (OneDrive for Business / SharePoint): no parent path, no cTag, deletes stripped down."""
    store = tenant.files
    drive = store.drives[item.drive_id]
    reference = _parent_reference(tenant, drive, item, with_path=not in_delta)
    if not item.alive:
        body: dict[str, Any] = {
            "id": item.id,
            "lastModifiedDateTime": iso(item.deleted or item.modified),
            "parentReference": reference,
            "deleted": {},
        }
        body["folder" if item.is_folder else "file"] = {"childCount": 0} if item.is_folder else {}
        return body
    body = {}
    if download_url is not None and not item.is_folder:
        body["@microsoft.graph.downloadUrl"] = download_url(item)
    body.update(
        {
            "createdBy": identity(tenant, item.created_by),
            "createdDateTime": iso(item.created),
            "eTag": item.etag,
            "id": item.id,
            "lastModifiedBy": identity(tenant, item.modified_by),
            "lastModifiedDateTime": iso(item.modified),
            "name": "root" if item.is_root else item.name,
            "parentReference": reference,
            "webUrl": item_web_url(tenant, drive, item),
        }
    )
    if not item.is_folder and not in_delta:
        body["cTag"] = item.ctag
    if item.is_folder:
        body["folder"] = {"childCount": item.child_count}
    else:
        body["file"] = {"mimeType": item.mime_type}
    body["fileSystemInfo"] = {"createdDateTime": iso(item.created), "lastModifiedDateTime": iso(item.modified)}
    if item.is_root:
        body["root"] = {}
    if item.permissions:
        body["shared"] = {"scope": "users"}
    body["size"] = item.size if not item.is_folder else _folder_size(store, item)
    return body


def _folder_size(store: FileStore, folder: DriveItem) -> int:
    if folder.is_root:
        return store.drives[folder.drive_id].used
    return sum(child.size for child in store.live_children(folder) if not child.is_folder)


def permission_json(tenant: Tenant, permission: Permission) -> dict[str, Any]:
    if permission.user_id is not None:
        granted = identity(tenant, permission.user_id)
        return {"id": permission.id, "roles": list(permission.roles), "grantedTo": granted, "grantedToV2": granted}
    email = permission.email or ""
    return {
        "id": permission.id,
        "roles": list(permission.roles),
        "invitation": {"email": email, "signInRequired": True},
        "grantedToV2": {"siteUser": {"displayName": email, "email": email, "loginName": f"i:0#.f|membership|{email}"}},
    }


def owner_permission_json(tenant: Tenant, item: DriveItem) -> dict[str, Any]:
    """The permission every item inherits from its drive's owner (a user, or the site's owners group)."""
    drive = tenant.files.drives[item.drive_id]
    site = tenant.files.sites[drive.site_id]
    if drive.owner_user_id:
        granted = identity(tenant, drive.owner_user_id)
    else:
        name = f"{site.display_name} Owners"
        granted = {"siteGroup": {"displayName": name, "id": "3", "loginName": name}}
    body: dict[str, Any] = {"id": "aTowIy5mfG93bmVycw", "roles": ["owner"], "grantedToV2": granted}
    if not item.is_root:
        body["inheritedFrom"] = {"driveId": drive.id, "driveType": drive.drive_type, "id": drive.root_id}
    return body


def retention_label_json(tenant: Tenant, item: DriveItem) -> dict[str, Any]:
    assert item.retention_label is not None
    return {
        "name": item.retention_label,
        "retentionSettings": retention_settings(tenant, item.retention_label),
        "isLabelAppliedExplicitly": True,
        "labelAppliedDateTime": iso(item.created),
        "labelAppliedBy": identity(tenant, item.created_by),
    }


def sensitivity_label_json(label: SensitivityLabel) -> dict[str, Any]:
    """microsoft.graph.security.sensitivityLabel (v1.0, /security/dataSecurityAndGovernance)."""
    return {
        "id": label.id,
        "name": label.name,
        "description": label.description,
        "color": label.color,
        "priority": label.priority,
        "toolTip": label.tooltip,
        "isEnabled": label.is_enabled,
        "isEndpointProtectionEnabled": True,
        "autoTooltip": "",
        "actionSource": "manual",
        "applicableTo": label.applicable_to,
        "sublabels": [],
    }


def beta_sensitivity_label_json(label: SensitivityLabel) -> dict[str, Any]:
    """microsoft.graph.security.sensitivityLabel as beta's /security/informationProtection lists it."""
    return {
        "id": label.id,
        "name": label.name,
        "description": label.description,
        "color": label.color,
        "sensitivity": label.priority,
        "tooltip": label.tooltip,
        "isActive": label.is_enabled,
        "isAppliable": True,
        "contentFormats": [fmt for fmt in label.applicable_to.split(",") if fmt in ("file", "email", "site")],
        "hasProtection": label.has_protection,
        "parent": None,
    }

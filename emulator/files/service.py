"""Changes to files: every mutation takes a sequence number, lands in the drive's change log and is published.

Shared by the Graph routes and the /_emulator control plane (which acts as a person, e.g. a customer guest
editing a shared file). Graph-visible failures are raised as GraphError so both callers report them the same way.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import re
import time
import uuid
from typing import TYPE_CHECKING

from emulator.errors import GraphError
from emulator.files.content import CUSTOMER_TEMPLATES, TEMPLATE_INDEX, content_bytes, declared_size
from emulator.files.store import (
    LABELABLE_EXTENSIONS,
    LOCK_REASONS,
    MIME_TYPES,
    Drive,
    DriveItem,
    FileStore,
    LabelAssignment,
    LabelOperation,
    Permission,
    drive_prefix,
    extension_of,
    make_item_id,
)
from emulator.state import ChangeEvent, utc_now

if TYPE_CHECKING:
    from emulator.state import SensitivityLabel, Tenant

ASSIGNMENT_METHODS = frozenset({"standard", "privileged", "auto"})
_INVALID_NAME = re.compile(r'["*:<>?/\\|]')


# Change log and notifications ---------------------------------------------------------------------------


def record_change(tenant: Tenant, item: DriveItem, change_type: str) -> None:
    """Log the change (ancestors first, as the delta feed includes an item's parents) and publish it."""
    store = tenant.files
    for ancestor in store.ancestors(item):
        store.log_change(ancestor, tenant.next_seq(), own=False)
    store.log_change(item, tenant.next_seq(), own=True)
    tenant.emit_change(
        ChangeEvent(
            resource=f"drives/{item.drive_id}/root",
            change_type=change_type,
            resource_id=item.id,
            owner=item.drive_id,
            data={"driveId": item.drive_id, "itemId": item.id},
        )
    )


# Creating and editing (the control plane acts as a person) --------------------------------------------------


def validate_name(name: str) -> str:
    cleaned = name.strip()
    if not cleaned or _INVALID_NAME.search(cleaned) or cleaned in (".", ".."):
        raise GraphError(400, "invalidRequest", "The name contains invalid characters or is empty.")
    return cleaned


def add_item(
    tenant: Tenant,
    drive: Drive,
    parent: DriveItem,
    name: str,
    *,
    as_user: str,
    folder: bool = False,
    customer_id: str | None = None,
    text: str | None = None,
) -> DriveItem:
    """Create a file or folder as `as_user`. Without `text` a file gets generated content for its customer."""
    store = tenant.files
    name = validate_name(name)
    if not parent.is_folder:
        raise GraphError(400, "invalidRequest", "The parent item is not a folder.")
    if store.child_by_name(parent, name) is not None:
        raise GraphError(409, "nameAlreadyExists", "The specified item name already exists.")
    extension = extension_of(name)
    if not folder and extension not in MIME_TYPES:
        raise GraphError(400, "invalidRequest", f"Files of type '.{extension}' can't be generated.")
    now = utc_now()
    guid = uuid.uuid4()
    site_customer = store.sites[drive.site_id].customer_id
    if customer_id:
        truth_customers: tuple[str, ...] = (customer_id,)
    elif parent.truth_customers:
        truth_customers = parent.truth_customers
    else:
        truth_customers = (site_customer,) if site_customer else ()
    template = next((t for t in CUSTOMER_TEMPLATES if t.extension == extension), CUSTOMER_TEMPLATES[0])
    identifiers: tuple[str, ...] = ()
    ids = store.customer_identifiers.get(truth_customers[0]) if truth_customers else None
    if ids is not None and not folder:
        identifiers = template.picks(ids, random.Random(guid.int).randrange(6))
    item = DriveItem(
        id=make_item_id(drive_prefix(drive.id), guid),
        drive_id=drive.id,
        parent_id=parent.id,
        name=name,
        size=0 if folder else declared_size(random.Random(guid.int), extension),
        mime_type=None if folder else MIME_TYPES[extension],
        created=now,
        modified=now,
        created_by=as_user,
        modified_by=as_user,
        template=TEMPLATE_INDEX[template.key],
        children=[] if folder else None,
        truth_customers=truth_customers,
        truth_identifiers=identifiers,
    )
    if text is not None and not folder:
        _store_text(tenant, item, text)
    store.add(item)
    record_change(tenant, item, "created")
    return item


def _store_text(tenant: Tenant, item: DriveItem, text: str) -> None:
    """Explicit text replaces generated content; the ground truth follows what the text contains."""
    store = tenant.files
    store.uploaded[item.id] = text
    known = [store.customer_identifiers[c] for c in item.truth_customers if c in store.customer_identifiers]
    candidates = {value for ids in known for value in (ids.tax_code, *ids.citizen_ids, *ids.phones, *ids.contracts)}
    item.truth_identifiers = tuple(sorted(value for value in candidates if value in text))
    _resize(tenant, item)


def _resize(tenant: Tenant, item: DriveItem) -> None:
    """Files written at run time are as long as their bytes (seeded ones are padded to their declared size)."""
    store = tenant.files
    if item.id not in store.uploaded:
        return
    size = len(content_bytes(tenant, item))
    if store.items.get(item.id) is item:
        store.drives[item.drive_id].used += size - item.size
    item.size = size


def modify_item(
    tenant: Tenant, item: DriveItem, *, as_user: str, text: str | None = None, name: str | None = None
) -> DriveItem:
    """An edit by a person: new version, new last-modified time and modifier (the activity signals)."""
    store = tenant.files
    if item.retention_label:
        settings = retention_settings(tenant, item.retention_label)
        if settings["isRecordLocked"] or not settings["isContentUpdateAllowed"]:
            raise GraphError(403, "accessDenied", "The item is a locked record and can't be edited.")
    if name is not None and item.parent_id is not None:
        name = validate_name(name)
        parent = store.items[item.parent_id]
        clash = store.child_by_name(parent, name)
        if clash is not None and clash is not item:
            raise GraphError(409, "nameAlreadyExists", "The specified item name already exists.")
        item.name = name
    if text is not None and not item.is_folder:
        _store_text(tenant, item, text)
    item.version += 1
    item.modified = utc_now()
    item.modified_by = as_user
    record_change(tenant, item, "updated")
    return item


def share_item(
    tenant: Tenant, item: DriveItem, *, user_id: str | None, email: str | None, roles: tuple[str, ...]
) -> None:
    grant = Permission(
        id=f"aTowIy5mf{uuid.uuid4().hex[:16]}", roles=roles, granted=utc_now(), user_id=user_id, email=email
    )
    item.permissions = (*item.permissions, grant)
    item.version += 1
    record_change(tenant, item, "updated")


def set_lock(item: DriveItem, reason: str | None) -> None:
    if reason is not None and reason not in LOCK_REASONS:
        raise GraphError(400, "invalidRequest", f"Unknown lock reason '{reason}'.")
    item.locked = reason


def expire_delta_tokens(drive: Drive) -> None:
    drive.token_epoch += 1


# Deleting ------------------------------------------------------------------------------------------------


def retention_settings(tenant: Tenant, label_name: str) -> dict[str, object]:
    """retentionLabelSettings as Graph reports them for a retention label of the tenant."""
    label = tenant.retention_labels.get(label_name)
    behavior = label.behavior_during_retention_period if label else "doNotRetain"
    is_record = behavior in ("retainAsRecord", "retainAsRegulatoryRecord")
    locked = bool(label and label.is_record_locked) or behavior == "retainAsRegulatoryRecord"
    return {
        "behaviorDuringRetentionPeriod": behavior,
        "isDeleteAllowed": bool(label.is_delete_allowed) if label else True,
        "isRecordLocked": locked,
        "isMetadataUpdateAllowed": not locked,
        "isContentUpdateAllowed": not (is_record and locked),
        "isLabelUpdateAllowed": not locked,
    }


def _deletion_blocker(tenant: Tenant, item: DriveItem) -> DriveItem | None:
    store = tenant.files
    for candidate in [item, *store.descendants(item)]:
        if candidate.alive and candidate.retention_label:
            settings = retention_settings(tenant, candidate.retention_label)
            if not settings["isDeleteAllowed"] or settings["isRecordLocked"]:
                return candidate
    return None


def _check_deletable(tenant: Tenant, item: DriveItem) -> None:
    if item.is_root:
        raise GraphError(403, "accessDenied", "The root folder of a drive can't be deleted.")
    if _deletion_blocker(tenant, item) is not None:
        # What SharePoint answers when a retention label or record blocks the delete (seen in the field; the
        # exact text for Graph is UNCONFIRMED, see graph-facts.md section 7).
        raise GraphError(
            403,
            "accessDenied",
            "Request was cancelled by event received. If attempting to delete a non-empty folder, it's possible "
            "that it's on hold",
        )


def delete_item(tenant: Tenant, item: DriveItem, *, permanently: bool = False) -> None:
    """To the recycle bin (or gone for good): the item and everything under it show as deleted in delta."""
    store = tenant.files
    _check_deletable(tenant, item)
    now = utc_now()
    drive = store.drives[item.drive_id]
    doomed = [d for d in store.descendants(item) if d.alive] + [item]
    for target in doomed:
        target.deleted = now
        target.purged = permanently
        drive.used -= target.size
        if permanently:
            store.uploaded.pop(target.id, None)
        else:
            drive.deleted_bytes += target.size
    if item.parent_id is not None:
        store.items[item.parent_id].child_count -= 1
    for target in doomed:
        record_change(tenant, target, "deleted")


# Sensitivity labels --------------------------------------------------------------------------------------


def label_by_id(tenant: Tenant, label_id: str) -> SensitivityLabel | None:
    lowered = label_id.lower()
    return next((label for label in tenant.labels if label.id.lower() == lowered), None)


def _priority(tenant: Tenant, label_id: str | None) -> int:
    label = label_by_id(tenant, label_id) if label_id else None
    return label.priority if label else -1


def accept_label_assignment(
    tenant: Tenant, item: DriveItem, *, label_id: str, method: str, justification: str | None, client_id: str
) -> LabelOperation:
    """Validate what Graph validates up front; the rest is decided when the job runs."""
    store = tenant.files
    label = label_by_id(tenant, label_id) if label_id else None
    if label_id and label is None:
        raise GraphError(400, "invalidRequest", f"The sensitivity label '{label_id}' doesn't exist in this tenant.")
    current = item.label
    downgrading = current is not None and (label.priority if label else -1) < _priority(tenant, current.label_id)
    if downgrading and not (justification or "").strip():
        # The docs say justificationText is required to downgrade or remove a label; the status and code are
        # UNCONFIRMED.
        raise GraphError(
            400, "invalidRequest", "justificationText is required when downgrading or removing a sensitivity label."
        )
    if item.locked:
        raise GraphError(423, item.locked, "The file is locked: its content can't be opened to apply the label.")
    _take_assignment_budget(store)
    now = time.monotonic()
    operation = LabelOperation(
        id=uuid.uuid4().hex,
        item_id=item.id,
        label_id=label.id if label else "",
        method=method,
        justification=justification,
        requested_by=client_id,
        accepted_at=now,
        due_at=now + max(0.0, store.label_delay_seconds),
    )
    store.operations[operation.id] = operation
    store.pending_operations[operation.id] = operation
    settle_operations(tenant)
    return operation


def _take_assignment_budget(store: FileStore) -> None:
    now = time.monotonic()
    window = store.label_assign_times
    while window and now - window[0] >= store.label_assign_window_seconds:
        window.popleft()
    if len(window) >= store.label_assign_limit:
        retry_after = max(1, int(store.label_assign_window_seconds - (now - window[0])) + 1)
        raise GraphError(
            429,
            "activityLimitReached",
            "The request has been throttled: too many sensitivity label assignments in this tenant.",
            headers={"Retry-After": str(retry_after)},
        )
    window.append(now)


def settle_operations(tenant: Tenant) -> None:
    """Finish every label job whose time has come (called before any files request is answered)."""
    store = tenant.files
    now = time.monotonic()
    for operation in [op for op in store.pending_operations.values() if op.due_at <= now]:
        del store.pending_operations[operation.id]
        _run_label_operation(tenant, operation)


def _fail(operation: LabelOperation, code: str, message: str) -> None:
    operation.status = "failed"
    operation.error_code = code
    operation.error_message = message


def _run_label_operation(tenant: Tenant, operation: LabelOperation) -> None:
    item = tenant.files.items.get(operation.item_id)
    if item is None or not item.alive:
        _fail(operation, "itemNotFound", "The item was deleted before the label could be applied.")
        return
    if item.is_folder or extension_of(item.name) not in LABELABLE_EXTENSIONS:
        _fail(operation, "notSupported", "Sensitivity labels can't be applied to this type of item.")
        return
    # The failure codes below are modelled on MIP rules; Graph's exact monitor payloads are UNCONFIRMED.
    if item.retention_label and retention_settings(tenant, item.retention_label)["isRecordLocked"]:
        _fail(operation, "notAllowed", "The item is a locked record; its content can't be changed.")
        return
    label = label_by_id(tenant, operation.label_id) if operation.label_id else None
    if label is not None and label.has_protection:
        _fail(operation, "notSupported", "Labels that apply encryption can't be assigned with application permissions.")
        return
    current = item.label
    if current is not None and (current.manual or current.method == "privileged") and operation.method != "privileged":
        _fail(operation, "notAllowed", "A label applied by a user can only be replaced with the privileged method.")
        return
    if label is None:
        item.label = None
    elif current is None or current.label_id != label.id:
        item.label = LabelAssignment(
            label_id=label.id,
            method=operation.method,
            assigned_by=operation.requested_by,
            assigned_at=utc_now(),
            justification=operation.justification,
        )
    else:
        operation.status = "completed"
        return
    # SharePoint rewrites the file with the label metadata: a new version, modified by the calling app.
    item.version += 1
    item.modified = utc_now()
    item.modified_by = operation.requested_by
    _resize(tenant, item)
    operation.status = "completed"
    record_change(tenant, item, "updated")


def operation_status(operation: LabelOperation) -> tuple[int, dict[str, object]]:
    """The monitor's answer: 202 while running, 200 once completed or failed (asyncJobStatus shape)."""
    if operation.status == "inProgress":
        span = max(operation.due_at - operation.accepted_at, 1e-6)
        done = min(99.0, round((time.monotonic() - operation.accepted_at) / span * 100, 1))
        return 202, {"operation": "AssignSensitivityLabel", "percentageComplete": done, "status": "inProgress"}
    if operation.status == "completed":
        return 200, {"percentageComplete": 100.0, "resourceId": operation.item_id, "status": "completed"}
    return 200, {
        "percentageComplete": 100.0,
        "resourceId": operation.item_id,
        "status": "failed",
        "errorCode": operation.error_code,
        "statusDescription": operation.error_message,
    }


# Pre-authenticated URLs ----------------------------------------------------------------------------------

DOWNLOAD_URL_LIFETIME_S = 3600


def sign(store: FileStore, text: str) -> str:
    digest = hmac.new(store.url_key, text.encode(), hashlib.sha256).digest()[:18]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def download_token(store: FileStore, item_id: str, *, now: float | None = None) -> str:
    expires = int((now or time.time()) + DOWNLOAD_URL_LIFETIME_S)
    payload = f"{item_id}.{expires}"
    return f"{payload}.{sign(store, payload)}"


def verify_download_token(store: FileStore, token: str) -> str | None:
    """The item id the token grants, or None when it is forged or expired."""
    item_id, _, rest = token.partition(".")
    expires, _, signature = rest.partition(".")
    if not expires.isdigit() or not hmac.compare_digest(signature, sign(store, f"{item_id}.{expires}")):
        return None
    return item_id if int(expires) >= time.time() else None

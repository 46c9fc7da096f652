"""Sites, drives and driveItems as SharePoint / OneDrive for Business keeps them, plus each item's ground truth.

Items are slot records without content: the bytes of a seeded file are generated from the seed when someone
downloads it (emulator.files.content), so a tenant of 100k+ items stays small. Every run-time change takes a
tenant-wide sequence number and is appended to its drive's change log; delta tokens are positions in that log.
"""

from __future__ import annotations

import base64
import bisect
import secrets
import uuid
from array import array
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

FOLDER_MIME = None  # folders carry the folder facet instead of a mimeType

MIME_TYPES = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
    "txt": "text/plain",
}
# File types SharePoint can read and write sensitivity labels in (Office Open XML and PDF).
LABELABLE_EXTENSIONS = frozenset({"docx", "xlsx", "pptx", "pdf"})
LOCK_REASONS = frozenset({"fileDoubleKeyEncrypted", "fileDecryptionNotSupported", "fileDecryptionDeferred"})


def extension_of(name: str) -> str:
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


@dataclass(slots=True)
class Site:
    id: str  # "{hostname},{siteCollectionGuid},{webGuid}"
    name: str
    display_name: str
    web_url: str
    description: str
    created: datetime
    modified: datetime
    is_personal: bool = False
    is_root: bool = False
    customer_id: str | None = None
    owner_user_id: str | None = None
    drive_ids: list[str] = field(default_factory=list)

    @property
    def host(self) -> str:
        return self.id.split(",", 1)[0]

    @property
    def collection_guid(self) -> str:
        return self.id.split(",")[1]


@dataclass(slots=True)
class Drive:
    id: str  # "b!" + base64url(site collection, web and list GUIDs)
    name: str
    drive_type: str  # "business" (OneDrive for Business) | "documentLibrary" (SharePoint)
    site_id: str
    web_url: str
    description: str
    created: datetime
    owner_user_id: str | None  # OneDrive: the user; document libraries: None (owned by the site)
    root_id: str = ""
    quota_total: int = 1_099_511_627_776
    used: int = 0
    deleted_bytes: int = 0
    # Items in creation order (parents always precede children): the initial delta enumeration walks it.
    order: list[str] = field(default_factory=list)
    # Run-time changes: parallel arrays of (sequence number, item id), sorted by sequence number.
    log_seqs: array[int] = field(default_factory=lambda: array("q"))
    log_ids: list[str] = field(default_factory=list)
    # Bumped to invalidate every delta token handed out for this drive (tests force a 410 resync this way).
    token_epoch: int = 0

    def log(self, seq: int, item_id: str) -> None:
        self.log_seqs.append(seq)
        self.log_ids.append(item_id)

    def log_position_after(self, seq: int) -> int:
        return bisect.bisect_right(self.log_seqs, seq)


@dataclass(slots=True)
class Permission:
    """A sharing grant on an item: to a guest in the directory (user_id) or to an outside address (email)."""

    id: str
    roles: tuple[str, ...]
    granted: datetime
    user_id: str | None = None
    email: str | None = None


@dataclass(slots=True)
class LabelAssignment:
    label_id: str
    method: str  # standard | privileged | auto
    assigned_by: str  # user id or app client id
    assigned_at: datetime
    # Set when a person chose the label in an Office app: automated labelling must not override or downgrade it.
    manual: bool = False
    justification: str | None = None


@dataclass(slots=True)
class DriveItem:
    id: str
    drive_id: str
    parent_id: str | None  # None for the drive's root folder
    name: str
    size: int
    mime_type: str | None  # None for folders
    created: datetime
    modified: datetime
    created_by: str  # user id (staff or guest) or app client id
    modified_by: str
    template: int = 0  # which document the content generator writes (emulator.files.content)
    version: int = 1  # the N in eTag '"{GUID},N"' and cTag '"c:{GUID},N"'
    seq: int = 0  # sequence number of this item's latest change-log entry (0: seeded, never changed)
    changed_seq: int = 0  # sequence number of this item's own latest change (not an echo from a descendant)
    children: list[str] | None = None  # folders: child ids in creation order, deleted ones included
    child_count: int = 0  # live children
    permissions: tuple[Permission, ...] = ()
    label: LabelAssignment | None = None
    retention_label: str | None = None
    locked: str | None = None  # a 423 error code (e.g. fileDoubleKeyEncrypted) while the file can't be opened
    deleted: datetime | None = None  # in the recycle bin (or purged) since
    purged: bool = False  # permanently deleted: kept only so delta can report it
    # Ground truth: the customers whose data this file holds and the identifiers written in it.
    truth_customers: tuple[str, ...] = ()
    truth_identifiers: tuple[str, ...] = ()

    @property
    def is_folder(self) -> bool:
        return self.children is not None

    @property
    def is_root(self) -> bool:
        return self.parent_id is None

    @property
    def alive(self) -> bool:
        return self.deleted is None

    @property
    def guid(self) -> str:
        return item_guid(self.id)

    @property
    def etag(self) -> str:
        return f'"{{{self.guid.upper()}}},{self.version}"'

    @property
    def ctag(self) -> str:
        return f'"c:{{{self.guid.upper()}}},{self.version}"'


@dataclass(slots=True)
class LabelOperation:
    """An accepted assignSensitivityLabel job; the label lands on the item when it completes."""

    id: str
    item_id: str
    label_id: str  # "" removes the label
    method: str
    justification: str | None
    requested_by: str  # app client id
    accepted_at: float  # time.monotonic()
    due_at: float
    status: str = "inProgress"  # inProgress | completed | failed
    error_code: str | None = None
    error_message: str | None = None


@dataclass(slots=True)
class CustomerIdentifiers:
    """The identifiers the seed writes into a customer's documents (a subset per document)."""

    tax_code: str
    citizen_ids: tuple[str, ...]  # one CCCD per contact, same order as Customer.contacts
    phones: tuple[str, ...]  # contacts' mobiles, then the company line
    contracts: tuple[str, ...]


@dataclass
class FileStore:
    sites: dict[str, Site] = field(default_factory=dict)
    drives: dict[str, Drive] = field(default_factory=dict)
    items: dict[str, DriveItem] = field(default_factory=dict)
    # Text of files written at run time with explicit content; seeded files are generated on demand.
    uploaded: dict[str, str] = field(default_factory=dict)
    customer_identifiers: dict[str, CustomerIdentifiers] = field(default_factory=dict)
    company_tax_code: str = "0312345675"
    # Items the seed placed for policy edge cases, by role (e.g. "record_locked", "double_key_encrypted").
    special: dict[str, list[str]] = field(default_factory=dict)
    operations: dict[str, LabelOperation] = field(default_factory=dict)
    pending_operations: dict[str, LabelOperation] = field(default_factory=dict)
    label_delay_seconds: float = 1.0
    # SharePoint's documented tenant limit for "Assign Sensitivity Label": 100 calls per 5 minutes.
    label_assign_limit: int = 100
    label_assign_window_seconds: float = 300.0
    label_assign_times: deque[float] = field(default_factory=deque)
    # Highest sequence number this store has logged: delta tokens handed out now cover everything up to it.
    last_seq: int = 0
    # Signs pre-authenticated download and monitor URLs.
    url_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    # Lookups ----------------------------------------------------------------------------------------------

    def site(self, site_ref: str) -> Site | None:
        """By full id, by site collection GUID alone (Graph accepts both), case-insensitively."""
        found = self.sites.get(site_ref)
        if found is not None:
            return found
        lowered = site_ref.lower()
        for site in self.sites.values():
            if site.id.lower() == lowered or site.collection_guid.lower() == lowered:
                return site
        return None

    def root_site(self) -> Site | None:
        return next((s for s in self.sites.values() if s.is_root), None)

    def live_item(self, drive: Drive, item_ref: str) -> DriveItem | None:
        item_id = drive.root_id if item_ref == "root" else item_ref
        item = self.items.get(item_id)
        if item is None or item.drive_id != drive.id or not item.alive:
            return None
        return item

    def child_by_name(self, folder: DriveItem, name: str) -> DriveItem | None:
        lowered = name.lower()
        for child_id in folder.children or ():
            child = self.items[child_id]
            if child.alive and child.name.lower() == lowered:
                return child
        return None

    def by_path(self, drive: Drive, path: str) -> DriveItem | None:
        """Resolve "/Khách hàng/ACME/file.docx" from the root, as `root:/{path}` addressing does."""
        current = self.items[drive.root_id]
        for segment in (part for part in path.split("/") if part):
            if not current.is_folder:
                return None
            found = self.child_by_name(current, segment)
            if found is None:
                return None
            current = found
        return current

    def ancestors(self, item: DriveItem) -> list[DriveItem]:
        """From the root down to the item's parent."""
        chain: list[DriveItem] = []
        parent_id = item.parent_id
        while parent_id is not None:
            parent = self.items[parent_id]
            chain.append(parent)
            parent_id = parent.parent_id
        chain.reverse()
        return chain

    def path_of(self, item: DriveItem) -> str:
        """The item's folder path below the root, e.g. "/Khách hàng/ACME" ("" for items in the root)."""
        return "".join("/" + a.name for a in self.ancestors(item)[1:])

    def is_within(self, item: DriveItem, scope: DriveItem) -> bool:
        if scope.is_root or item.id == scope.id:
            return item.drive_id == scope.drive_id
        parent_id = item.parent_id
        while parent_id is not None:
            if parent_id == scope.id:
                return True
            parent_id = self.items[parent_id].parent_id
        return False

    def descendants(self, folder: DriveItem) -> list[DriveItem]:
        found: list[DriveItem] = []
        stack = list(folder.children or ())
        while stack:
            child = self.items[stack.pop()]
            found.append(child)
            stack.extend(child.children or ())
        return found

    def live_children(self, folder: DriveItem) -> list[DriveItem]:
        return [child for child in (self.items[i] for i in folder.children or ()) if child.alive]

    # Ground truth --------------------------------------------------------------------------------------------

    def customer_items(self, customer_id: str) -> list[DriveItem]:
        """Live items holding this customer's data (files and the folders made for that customer)."""
        return [i for i in self.items.values() if i.alive and customer_id in i.truth_customers]

    def truth(self) -> dict[str, list[str]]:
        """customer id -> ids of the live items holding that customer's data."""
        found: dict[str, list[str]] = {}
        for item in self.items.values():
            if item.alive:
                for customer_id in item.truth_customers:
                    found.setdefault(customer_id, []).append(item.id)
        return found

    # Mutation bookkeeping ----------------------------------------------------------------------------------

    def log_change(self, item: DriveItem, seq: int, *, own: bool) -> None:
        """Record a change in the item's drive log; `own` is False for an ancestor echoed ahead of a change."""
        self.drives[item.drive_id].log(seq, item.id)
        item.seq = seq
        if own:
            item.changed_seq = seq
        self.last_seq = max(self.last_seq, seq)

    def add(self, item: DriveItem) -> None:
        drive = self.drives[item.drive_id]
        self.items[item.id] = item
        drive.order.append(item.id)
        if item.parent_id is None:
            drive.root_id = item.id
        else:
            parent = self.items[item.parent_id]
            assert parent.children is not None, "items are added to folders only"
            parent.children.append(item.id)
            parent.child_count += 1
        drive.used += item.size


# Identifiers ----------------------------------------------------------------------------------------------


_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_BASE32_PAIRS = [a + b for a in _BASE32 for b in _BASE32]  # 10 bits -> 2 characters
_PAIR_SHIFTS = range(150, -1, -10)


def make_item_id(drive_prefix: bytes, guid: uuid.UUID) -> str:
    """A SharePoint-style item id: "01" + base32 of 4 drive bytes and the item's GUID (34 characters).

    Same output as base64.b32encode, computed 10 bits at a time because seeding makes 100k+ of them.
    """
    number = int.from_bytes(drive_prefix, "big") << 128 | guid.int
    return "01" + "".join([_BASE32_PAIRS[(number >> shift) & 1023] for shift in _PAIR_SHIFTS])


def item_guid(item_id: str) -> str:
    try:
        raw = base64.b32decode(item_id[2:])
    except ValueError:
        return str(uuid.UUID(int=0))
    return str(uuid.UUID(bytes=raw[4:20])) if len(raw) == 20 else str(uuid.UUID(int=0))


def make_drive_id(site_guid: uuid.UUID, web_guid: uuid.UUID, list_guid: uuid.UUID) -> str:
    return "b!" + base64.urlsafe_b64encode(site_guid.bytes + web_guid.bytes + list_guid.bytes).decode().rstrip("=")


def drive_prefix(drive_id: str) -> bytes:
    """4 bytes that tie item ids to their drive (SharePoint ids carry the list in the same way)."""
    return uuid.uuid5(uuid.NAMESPACE_URL, drive_id).bytes[:4]

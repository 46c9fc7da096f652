"""Mailboxes, folders and messages, with the per-folder change logs that message delta reads.

Memory is the constraint: a seeded tenant holds 100k+ messages, so a message is a slotted record of small ints
and references to shared objects (its thread, interned address tuples, the empty tuple). Subjects and bodies of
seeded mail are derived from the thread on demand (emulator.mail.content); only messages created at run time
(sendMail, control actions) carry their own text.

Ids follow Exchange's rules: a message has a REST id that changes when it moves and an immutable id that does not
(concepts/outlook-immutable-id.md); both resolve. Folder ids never change. Every create, update or move-in takes a
new tenant-wide change number (`Tenant.next_seq`) and appends the message to its folder's and its mailbox's log;
a move-out or delete appends a tombstone. Delta rounds read those logs between two change numbers.

All mutations go through `Mailbox` methods, which take the tenant (for change numbers and change events).
"""

from __future__ import annotations

import base64
import binascii
import bisect
import hashlib
import struct
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emulator.state import Tenant

Address = tuple[str, str]  # (display name, SMTP address)
NO_ADDRESSES: tuple[Address, ...] = ()
NO_STRINGS: tuple[str, ...] = ()

# The MAPI property set of Internet headers (PS_INTERNET_HEADERS); names in it are case-insensitive.
PS_INTERNET_HEADERS = "00020386-0000-0000-c000-000000000046"
MSIP_LABELS_PROPERTY = "String {00020386-0000-0000-C000-000000000046} Name msip_labels"

# How many sync states (delta tokens) one mailbox keeps before the oldest are evicted, as Exchange's token cache does.
SYNC_STATE_CAPACITY = 2_000

REST_PREFIX = "AAMkAG"
IMMUTABLE_PREFIX = "AAkALgAA"
FOLDER_PREFIX = "AQMkAD"
# Rest serials at or above this mark were assigned by a move; below it a rest serial equals the immutable serial.
MOVED_REST_BASE = 1 << 40


@dataclass(frozen=True, slots=True)
class FolderSpec:
    well_known: str
    display_name: str
    parent: str | None
    hidden: bool = False
    ipm: bool = True  # under "Top of Information Store", i.e. what mail clients (and /messages) see


# Display names are those of a Vietnamese-language mailbox: clients must address folders by well-known name.
DEFAULT_FOLDERS: tuple[FolderSpec, ...] = (
    FolderSpec("root", "", None, hidden=True, ipm=False),
    FolderSpec("msgfolderroot", "Top of Information Store", "root", ipm=False),
    FolderSpec("archive", "Lưu trữ", "msgfolderroot"),
    FolderSpec("deleteditems", "Mục đã Xóa", "msgfolderroot"),
    FolderSpec("drafts", "Thư nháp", "msgfolderroot"),
    FolderSpec("inbox", "Hộp thư đến", "msgfolderroot"),
    FolderSpec("junkemail", "Email Rác", "msgfolderroot"),
    FolderSpec("outbox", "Hộp thư đi", "msgfolderroot"),
    FolderSpec("sentitems", "Mục đã Gửi", "msgfolderroot"),
    FolderSpec("recoverableitemsroot", "Recoverable Items", "root", hidden=True, ipm=False),
    FolderSpec("recoverableitemsdeletions", "Deletions", "recoverableitemsroot", hidden=True, ipm=False),
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


def to_epoch(dt: datetime) -> int:
    return int(dt.timestamp())


def from_epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class MalformedId(ValueError):
    """An id that is not one this store issued (Graph answers ErrorInvalidIdMalformed)."""


# Records -----------------------------------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class Thread:
    """What the messages of one conversation share; seeded subjects and bodies are derived from it."""

    key: int
    kind: str  # "customer" | "internal" | "newsletter"
    language: str  # "vi" | "en"
    subject: str
    topic: int  # index of the body template
    product: str = ""
    customer_ids: tuple[str, ...] = NO_STRINGS
    tax_code: str | None = None  # the (first) customer's MST, quoted in some bodies
    phone: str | None = None  # the customer contact's mobile, quoted in some bodies
    contract_no: str | None = None

    @property
    def conversation_id(self) -> str:
        digest = hashlib.blake2b(f"conversation:{self.key}".encode(), digest_size=18).digest()
        return "AAQkAD" + _b64(digest)


@dataclass(slots=True)
class OwnContent:
    """Text of a message created at run time (sendMail, control actions); seeded mail derives it instead."""

    subject: str
    body_type: str  # "html" | "text"
    body: str
    internet_message_id: str
    conversation_id: str
    bcc: tuple[Address, ...] = NO_ADDRESSES
    reply_to: tuple[Address, ...] = NO_ADDRESSES
    headers: tuple[tuple[str, str], ...] = ()
    is_draft: bool = False


@dataclass(slots=True, eq=False)
class Message:
    serial: int  # per mailbox; the immutable id encodes it
    rest_serial: int  # the REST id encodes it; a move assigns a new one
    folder: MailFolder
    thread: Thread | None
    index: int  # position in the thread (drives derived content)
    sender: Address
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    received: int  # epoch seconds
    sent_lag: int  # seconds between sentDateTime and receivedDateTime
    is_read: bool
    importance: str = "normal"
    flag: str = "notFlagged"
    inference: str = "focused"
    categories: tuple[str, ...] = NO_STRINGS
    has_attachments: bool = False
    # singleValueExtendedProperties: normalised id -> (id as written, value); None while there are none.
    ext: dict[str, tuple[str, str]] | None = None
    receipt_requested: tuple[bool, bool] = (False, False)  # (delivery, read)
    seq: int = 0  # change number of the last create/update/move-in
    folder_seq: int = 0  # change number at which it entered its current folder
    modified: int = 0  # epoch seconds of lastModifiedDateTime
    idmask: int = 0  # which identifiers the derived body contains (emulator.mail.content.IDENTIFIER_KINDS)
    truth_customers: tuple[str, ...] = NO_STRINGS  # ground truth: whose customer data this is
    own: OwnContent | None = None

    @property
    def sent(self) -> int:
        return self.received - self.sent_lag

    @property
    def truth_identifiers(self) -> tuple[tuple[str, str], ...]:
        """Ground truth: the (kind, value) identifiers in the body, e.g. ("mst", "0101234567")."""
        from emulator.mail.content import identifiers_in

        return identifiers_in(self)

    def ext_value(self, property_id: str) -> str | None:
        if not self.ext:
            return None
        found = self.ext.get(normalise_property_id(property_id))
        return found[1] if found else None


@dataclass(slots=True, eq=False)
class Tombstone:
    """Left in a folder's log when a message leaves it (move-out, delete): the ids it had there."""

    serial: int
    rest_serial: int


@dataclass(slots=True)
class ChangeLog:
    """Entries in change-number order; a live entry is stale once its message changed again or left."""

    seqs: list[int] = field(default_factory=list)
    items: list[Message | Tombstone] = field(default_factory=list)

    def append(self, seq: int, item: Message | Tombstone) -> None:
        self.seqs.append(seq)
        self.items.append(item)

    def after(self, seq: int) -> int:
        """Index of the first entry whose change number is greater than `seq`."""
        return bisect.bisect_right(self.seqs, seq)


@dataclass(slots=True, eq=False)
class MailFolder:
    number: int
    id: str
    display_name: str
    well_known: str | None
    parent: MailFolder | None
    hidden: bool
    ipm: bool
    children: list[MailFolder] = field(default_factory=list)
    messages: dict[int, Message] = field(default_factory=dict)  # serial -> message, insertion order
    unread: int = 0
    log: ChangeLog = field(default_factory=ChangeLog)
    version: int = 0
    _sorted: tuple[int, list[Message]] | None = None

    @property
    def total(self) -> int:
        return len(self.messages)

    def newest_first(self) -> list[Message]:
        """Messages by receivedDateTime descending (cached until membership changes)."""
        if self._sorted is None or self._sorted[0] != self.version:
            ordered = sorted(self.messages.values(), key=lambda m: (m.received, m.serial), reverse=True)
            self._sorted = (self.version, ordered)
        return self._sorted[1]


@dataclass(slots=True)
class SyncState:
    """One delta token: what a round tracks, and how far it got."""

    folder: int | None  # folder number, or None for the whole mailbox (/messages/delta)
    select: tuple[str, ...] | None
    expand: str | None
    filter: str | None
    change_type: str | None
    since: int  # report changes with a change number above this...
    until: int  # ...up to this one (the round's snapshot)
    cursor: int  # the last change number already paged through in this round
    initial: bool


@dataclass(slots=True)
class SentRecord:
    """A message that left the tenant (sendMail to an external address): what a customer received."""

    at: datetime
    mailbox: str  # sender's user id
    sender: Address
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    bcc: tuple[Address, ...]
    external: tuple[str, ...]  # the external addresses among the recipients
    subject: str
    body_type: str
    body: str
    internet_message_id: str
    sent_copy_id: str | None  # immutable id of the Sent Items copy, when one was saved
    customers: tuple[str, ...]  # customers whose domains received it


# Extended property ids ---------------------------------------------------------------------------------------


def normalise_property_id(property_id: str) -> str:
    """The comparison key of a singleValueExtendedProperty id.

    Type names and GUIDs compare case-insensitively. Names compare case-sensitively (message-delta docs), except in
    PS_INTERNET_HEADERS, whose names are Internet header names and so case-insensitive (msip_labels == MSIP_Labels).
    Raises ValueError on a malformed id.
    """
    parts = property_id.strip().split(None, 3)
    if len(parts) == 2 and parts[1].lower().startswith("0x"):
        int(parts[1], 16)
        return f"{parts[0].lower()} {parts[1].lower()}"
    if len(parts) != 4 or not (parts[1].startswith("{") and parts[1].endswith("}")):
        raise ValueError(property_id)
    kind, guid, how, name = parts
    guid = guid[1:-1].lower()
    if len(guid) != 36 or any(ch not in "0123456789abcdef-" for ch in guid):
        raise ValueError(property_id)
    if how.lower() == "name":
        name = name.lower() if guid == PS_INTERNET_HEADERS else name
        return f"{kind.lower()} {{{guid}}} name {name}"
    if how.lower() == "id":
        return f"{kind.lower()} {{{guid}}} id {int(name, 16):#x}"
    raise ValueError(property_id)


# Mailboxes ---------------------------------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class Mailbox:
    user_id: str
    address: str
    guid: bytes  # 16 bytes; every id this mailbox issues embeds it
    rest_mask: int = 0
    immutable_mask: int = 0
    folders: dict[int, MailFolder] = field(default_factory=dict)
    by_name: dict[str, MailFolder] = field(default_factory=dict)  # well-known name -> folder
    by_id: dict[str, MailFolder] = field(default_factory=dict)
    by_serial: list[Message | None] = field(default_factory=lambda: [None])  # serials start at 1
    moved_rest: dict[int, Message] = field(default_factory=dict)
    next_rest: int = MOVED_REST_BASE
    log: ChangeLog = field(default_factory=ChangeLog)
    sync_states: OrderedDict[str, SyncState] = field(default_factory=OrderedDict)
    hold: bool = False  # set by a control action; eDiscovery custodianship also holds (see is_on_hold)
    purges: list[Message] = field(default_factory=list)  # permanently deleted while on hold: invisible to Graph
    version: int = 0
    _sorted: tuple[int, list[Message]] | None = None

    @classmethod
    def create(cls, user_id: str, address: str) -> Mailbox:
        guid = hashlib.blake2b(f"mailbox:{user_id}".encode(), digest_size=16).digest()
        mailbox = cls(
            user_id=user_id,
            address=address,
            guid=guid,
            rest_mask=int.from_bytes(hashlib.blake2b(guid + b"rest", digest_size=8).digest()),
            immutable_mask=int.from_bytes(hashlib.blake2b(guid + b"immutable", digest_size=8).digest()),
        )
        for spec in DEFAULT_FOLDERS:
            parent = mailbox.by_name[spec.parent] if spec.parent else None
            mailbox.add_folder(spec.display_name, parent, well_known=spec.well_known, hidden=spec.hidden, ipm=spec.ipm)
        return mailbox

    # Folders ---------------------------------------------------------------------------------------------

    def add_folder(
        self,
        display_name: str,
        parent: MailFolder | None,
        *,
        well_known: str | None = None,
        hidden: bool = False,
        ipm: bool | None = None,
    ) -> MailFolder:
        number = len(self.folders) + 1
        if ipm is None:
            ipm = parent is not None and (parent.ipm or parent.well_known == "msgfolderroot")
        folder = MailFolder(
            number=number,
            id=FOLDER_PREFIX + _b64(self.guid + hashlib.blake2b(self.guid + bytes([number]), digest_size=8).digest()),
            display_name=display_name,
            well_known=well_known,
            parent=parent,
            hidden=hidden,
            ipm=ipm,
        )
        self.folders[number] = folder
        self.by_id[folder.id] = folder
        if well_known:
            self.by_name[well_known] = folder
        if parent is not None:
            parent.children.append(folder)
        return folder

    def folder(self, key: str) -> MailFolder | None:
        """A folder by id or by well-known name (names are case-insensitive; ids are not)."""
        return self.by_id.get(key) or self.by_name.get(key.lower())

    @property
    def top_level(self) -> list[MailFolder]:
        return self.by_name["msgfolderroot"].children

    # Ids -------------------------------------------------------------------------------------------------

    def _encode(self, serial: int, *, immutable: bool) -> str:
        # Masking the serial keeps ids opaque (and the two forms of one message unalike), as Exchange's are.
        mask = self.immutable_mask if immutable else self.rest_mask
        return (IMMUTABLE_PREFIX if immutable else REST_PREFIX) + _b64(self.guid + struct.pack(">Q", serial ^ mask))

    def rest_id(self, message: Message) -> str:
        return self._encode(message.rest_serial, immutable=False)

    def immutable_id(self, message: Message) -> str:
        return self._encode(message.serial, immutable=True)

    def message_id(self, message: Message, *, immutable: bool) -> str:
        return self.immutable_id(message) if immutable else self.rest_id(message)

    def tombstone_id(self, tomb: Tombstone, *, immutable: bool) -> str:
        return self._encode(tomb.serial if immutable else tomb.rest_serial, immutable=immutable)

    def resolve(self, message_id: str) -> Message | None:
        """The live message an id (REST or immutable) names; None when it is gone, moved or another mailbox's.

        Raises MalformedId when the id is not one this emulator could have issued.
        """
        if message_id.startswith(IMMUTABLE_PREFIX):
            immutable, tail = True, message_id[len(IMMUTABLE_PREFIX) :]
        elif message_id.startswith(REST_PREFIX):
            immutable, tail = False, message_id[len(REST_PREFIX) :]
        else:
            raise MalformedId(message_id)
        try:
            raw = base64.urlsafe_b64decode(tail.encode("ascii"))
        except (binascii.Error, ValueError, UnicodeEncodeError):
            raise MalformedId(message_id) from None
        if len(raw) != 24:
            raise MalformedId(message_id)
        if raw[:16] != self.guid:
            return None
        (masked,) = struct.unpack(">Q", raw[16:])
        serial = masked ^ (self.immutable_mask if immutable else self.rest_mask)
        if immutable:
            return self.by_serial[serial] if 0 < serial < len(self.by_serial) else None
        if serial >= MOVED_REST_BASE:
            found = self.moved_rest.get(serial)
        else:
            found = self.by_serial[serial] if 0 < serial < len(self.by_serial) else None
        return found if found is not None and found.rest_serial == serial else None

    @staticmethod
    def change_key(message: Message) -> str:
        digest = hashlib.blake2b(struct.pack(">QQ", message.seq, message.serial), digest_size=12).digest()
        return "CQAAABYAAA" + _b64(digest)

    # Listing ---------------------------------------------------------------------------------------------

    def visible_newest_first(self) -> list[Message]:
        """Every message a mail client sees (the IPM subtree, Deleted Items included), newest first."""
        if self._sorted is None or self._sorted[0] != self.version:
            merged = [m for f in self.folders.values() if f.ipm for m in f.messages.values()]
            merged.sort(key=lambda m: (m.received, m.serial), reverse=True)
            self._sorted = (self.version, merged)
        return self._sorted[1]

    def messages(self) -> list[Message]:
        """Every live message in any folder (hidden ones included), in no particular order."""
        return [m for f in self.folders.values() for m in f.messages.values()]

    # Mutations -------------------------------------------------------------------------------------------

    def add(self, tenant: Tenant, message: Message, *, emit: bool = True) -> Message:
        """Store a new message in `message.folder`; its serial is assigned here."""
        message.serial = len(self.by_serial)
        message.rest_serial = message.serial
        self.by_serial.append(message)
        seq = tenant.next_seq()
        message.seq = message.folder_seq = seq
        if not message.modified:
            message.modified = message.received
        self._enter(message.folder, message, seq)
        if emit:
            self._emit(tenant, message, "created")
        return message

    def touch(self, tenant: Tenant, message: Message, *, at: datetime) -> None:
        """Record an update to `message` (new changeKey, lastModifiedDateTime, a delta entry)."""
        seq = tenant.next_seq()
        message.seq = seq
        message.modified = to_epoch(at)
        message.folder.log.append(seq, message)
        self.log.append(seq, message)
        self._emit(tenant, message, "updated")

    def set_read(self, message: Message, is_read: bool) -> None:
        if message.is_read != is_read:
            message.folder.unread += -1 if is_read else 1
            message.is_read = is_read

    def move(self, tenant: Tenant, message: Message, destination: MailFolder, *, at: datetime) -> Message:
        """Move as Exchange does: a copy with a new REST id lands in `destination`; the immutable id stays."""
        source = message.folder
        self._leave(tenant, message)
        self._emit(tenant, message, "deleted", folder=source)
        message.rest_serial = self.next_rest
        self.next_rest += 1
        self.moved_rest[message.rest_serial] = message
        message.folder = destination
        seq = tenant.next_seq()
        message.seq = message.folder_seq = seq
        message.modified = to_epoch(at)
        self._enter(destination, message, seq)
        self._emit(tenant, message, "created")
        return message

    def soft_delete(self, tenant: Tenant, message: Message, *, at: datetime, on_hold: bool) -> None:
        """Graph's DELETE: into Recoverable Items\\Deletions; deleting from there purges."""
        deletions = self.by_name["recoverableitemsdeletions"]
        if message.folder is deletions:
            self.purge(tenant, message, on_hold=on_hold)
        else:
            self.move(tenant, message, deletions, at=at)

    def purge(self, tenant: Tenant, message: Message, *, on_hold: bool) -> None:
        """permanentDelete: gone from every Graph view; a mailbox on hold still keeps it among its purges."""
        source = message.folder
        self._leave(tenant, message)
        self.by_serial[message.serial] = None
        self.moved_rest.pop(message.rest_serial, None)
        if on_hold:
            self.purges.append(message)
        self._emit(tenant, message, "deleted", folder=source)

    def _enter(self, folder: MailFolder, message: Message, seq: int) -> None:
        folder.messages[message.serial] = message
        if not message.is_read:
            folder.unread += 1
        folder.version += 1
        self.version += 1
        folder.log.append(seq, message)
        self.log.append(seq, message)

    def _leave(self, tenant: Tenant, message: Message) -> None:
        folder = message.folder
        del folder.messages[message.serial]
        if not message.is_read:
            folder.unread -= 1
        folder.version += 1
        self.version += 1
        tomb = Tombstone(message.serial, message.rest_serial)
        seq = tenant.next_seq()
        folder.log.append(seq, tomb)
        self.log.append(seq, tomb)

    def _emit(self, tenant: Tenant, message: Message, change_type: str, *, folder: MailFolder | None = None) -> None:
        """Publish a change; `data` carries what emulator.subscriptions reads (folder, etag) plus the immutable id."""
        from emulator.state import ChangeEvent

        where = folder or message.folder
        rest_id = self.rest_id(message)
        tenant.emit_change(
            ChangeEvent(
                resource=f"users/{self.user_id}/messages/{rest_id}",
                change_type=change_type,
                resource_id=rest_id,
                owner=self.user_id,
                data={
                    "parentFolderId": where.id,
                    "folderWellKnownName": where.well_known,
                    "immutableId": self.immutable_id(message),
                    "etag": f'W/"{self.change_key(message)}"',
                },
            )
        )

    # Delta tokens ----------------------------------------------------------------------------------------

    def save_sync_state(self, token: str, state: SyncState) -> None:
        self.sync_states[token] = state
        while len(self.sync_states) > SYNC_STATE_CAPACITY:
            self.sync_states.popitem(last=False)

    def evict_sync_states(self) -> int:
        count = len(self.sync_states)
        self.sync_states.clear()
        return count


@dataclass
class MailStore:
    mailboxes: dict[str, Mailbox] = field(default_factory=dict)  # user id -> mailbox
    outbox: list[SentRecord] = field(default_factory=list)
    next_thread_key: int = 1

    def mailbox(self, user_id: str) -> Mailbox | None:
        return self.mailboxes.get(user_id)

    def ensure_mailbox(self, user_id: str, address: str) -> Mailbox:
        found = self.mailboxes.get(user_id)
        if found is None:
            found = self.mailboxes[user_id] = Mailbox.create(user_id, address)
        return found

    def new_thread_key(self) -> int:
        key = self.next_thread_key
        self.next_thread_key += 1
        return key

    def message_count(self) -> int:
        return sum(f.total for mailbox in self.mailboxes.values() for f in mailbox.folders.values())

    def truth(self, customer_id: str) -> list[tuple[Mailbox, Message]]:
        """Ground truth: every live message holding this customer's data, in any mailbox or folder."""
        return [
            (mailbox, message)
            for mailbox in self.mailboxes.values()
            for message in mailbox.messages()
            if customer_id in message.truth_customers
        ]

    def truth_by_customer(self) -> dict[str, list[tuple[Mailbox, Message]]]:
        found: dict[str, list[tuple[Mailbox, Message]]] = {}
        for mailbox in self.mailboxes.values():
            for message in mailbox.messages():
                for customer_id in message.truth_customers:
                    found.setdefault(customer_id, []).append((mailbox, message))
        return found

    def summary(self) -> list[dict[str, Any]]:
        return [
            {
                "userId": mailbox.user_id,
                "address": mailbox.address,
                "hold": mailbox.hold,
                "purgesKept": len(mailbox.purges),
                "syncStates": len(mailbox.sync_states),
                "folders": {
                    (f.well_known or f.display_name): {"total": f.total, "unread": f.unread}
                    for f in mailbox.folders.values()
                    if f.well_known not in ("root", "msgfolderroot", "recoverableitemsroot")
                },
            }
            for mailbox in self.mailboxes.values()
        ]

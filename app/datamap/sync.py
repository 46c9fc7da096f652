"""Delta sync of mail folders and drives into the data map, classifying what is new or changed.

Each delta page is handled in two steps. First, outside any transaction, the page is compared with what the
data map holds and only new or changed items are classified (reading a body or a file's content only when it may
have changed). Then one transaction stores the page's items, their customer links, the activity they prove and
the page's cursor together, so a crash anywhere leaves a cursor that matches the stored items
(connectors/graph/paging.py).

Two kinds of change are recognised as our own and cause no work: a file whose last modifier is Steward's app
(assignSensitivityLabel rewrites the file) and a message whose only news is the label category we wrote.
"""

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Literal, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.activity.service import activity
from app.classification import Classifier, Finding, ItemMetadata, Verdict, activity_from_item
from app.customers.repository import CustomerRepository
from app.datamap.content import ContentReader, ScanResult
from app.datamap.repository import (
    DatamapItemRepository,
    DatamapLinkRepository,
    SyncCursorRepository,
    reading,
)
from app.db.base import utc_now
from app.models import DatamapItem, DatamapLink, LabelState
from app.policy.labels import LabelMap
from connectors.base import NotFound
from connectors.graph.connector import GraphConnector
from connectors.graph.models import DriveItem, Message
from connectors.graph.paging import DeltaPage

Change = Literal["new", "changed", "echo"]
T = TypeVar("T")
CATEGORY_REASON_MAX = 300


@dataclass
class SyncCounters:
    containers: int = 0
    pages: int = 0
    created: int = 0
    changed: int = 0
    echoes: int = 0  # items whose only change was our own label
    removed: int = 0
    content_read: int = 0
    content_skipped: int = 0
    protected: int = 0  # items raised because their customer asked not to be disclosed since they were classified


@dataclass(frozen=True, slots=True)
class DriveTarget:
    drive_id: str
    site_url: str | None  # where the site rules look for a customer (KH-<customer>)


@dataclass(frozen=True, slots=True)
class _Scan:
    status: str  # scanned | skipped | not_read
    detail: str | None
    findings: tuple[Finding, ...]

    @classmethod
    def of(cls, result: ScanResult) -> "_Scan":
        if result.read:
            return cls("scanned", "truncated" if result.scan.truncated else None, result.scan.findings)
        return cls("skipped", result.scan.skipped, ())

    @classmethod
    def stored(cls, row: DatamapItem) -> "_Scan":
        return cls(row.scan_status, row.scan_detail, tuple(Finding(**finding) for finding in row.findings))


@dataclass(slots=True)
class _Observed:
    """What a delta page says about one item, classified unless the change was our own echo."""

    item_id: str
    change: Change
    folder_id: str | None
    etag: str | None
    name_hash: str | None = None
    mime_type: str | None = None
    size: int | None = None
    created_at: datetime | None = None
    modified_at: datetime | None = None
    scan: _Scan | None = None
    item: ItemMetadata | None = None
    verdict: Verdict | None = None


@dataclass(slots=True)
class _PagePlan:
    observed: list[_Observed] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    touched: list[str] = field(default_factory=list)  # unchanged, but seen by a resync


def name_hash(name: str | None) -> str | None:
    """A subject or file name is content: only its SHA-256 is stored."""
    return hashlib.sha256(name.encode("utf-8")).hexdigest() if name is not None else None


def _last_of_each(items: Iterable[T], key: Callable[[T], str]) -> list[T]:
    # Delta may list an item more than once in a page: the last occurrence is its current state.
    latest: dict[str, T] = {}
    for item in items:
        latest.pop(key(item), None)
        latest[key(item)] = item
    return list(latest.values())


class DatamapSync:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        connector: GraphConnector,
        classifier: Classifier,
        labels: LabelMap,
        *,
        app_client_id: str,
        counters: SyncCounters | None = None,
        mail_page_size: int = 100,
    ) -> None:
        self._sessions = sessions
        self._connector = connector
        self._classifier = classifier
        self._labels = labels
        self._app_client_id = app_client_id.lower()
        self._content = ContentReader(connector, classifier)
        self.counters = counters or SyncCounters()
        self._mail_page_size = mail_page_size

    # Mail --------------------------------------------------------------------------------------------------

    async def sync_mail_folder(self, user_id: str, folder_id: str) -> None:
        key = f"mail:{user_id}:{folder_id}"
        async with reading(self._sessions) as session:
            cursor = await SyncCursorRepository(session).load(key)
        self.counters.containers += 1
        pages = self._connector.mail.message_delta(user_id, folder_id, cursor=cursor, page_size=self._mail_page_size)
        async for page in pages:
            messages = _last_of_each(page.items, lambda message: message.id)
            async with reading(self._sessions) as session:
                existing = await DatamapItemRepository(session).by_item_ids(
                    "message", user_id, [message.id for message in messages]
                )
            plan = _PagePlan()
            for message in messages:
                await self._plan_message(plan, user_id, folder_id, message, existing.get(message.id), page.is_resync)
            await self._store(key, "message", user_id, page, plan, folder_id=folder_id)

    async def _plan_message(
        self,
        plan: _PagePlan,
        user_id: str,
        folder_id: str,
        message: Message,
        row: DatamapItem | None,
        is_resync: bool,
    ) -> None:
        if message.is_removed:
            if row is not None and row.folder_id == folder_id:  # moved elsewhere: the other folder owns it now
                plan.removed.append(message.id)
            return
        if row is not None and row.etag == message.etag and row.folder_id == folder_id:
            if is_resync:
                plan.touched.append(message.id)
            return
        subject_hash = name_hash(message.subject)
        observed = _Observed(
            item_id=message.id,
            change="new" if row is None else "changed",
            folder_id=folder_id,
            etag=message.etag,
            name_hash=subject_hash,
            created_at=message.sent_date_time,
            modified_at=message.received_date_time,
        )
        if row is not None and row.name_hash == subject_hash and self._is_our_mail_label(row, message):
            observed.change = "echo"
            plan.observed.append(observed)
            return
        # A message's body does not change once received: read it when the message is new (or rewritten).
        if row is None or row.name_hash != subject_hash:
            result = await self._content.message(user_id, message.id)
            self._count_read(result)
            observed.scan = _Scan.of(result)
        else:
            observed.scan = _Scan.stored(row)
        participants = [message.sender_from, *message.to_recipients, *message.cc_recipients, *message.bcc_recipients]
        observed.item = ItemMetadata(
            id=message.id,
            kind="message",
            participants=tuple(
                recipient.email_address.address
                for recipient in participants
                if recipient is not None and recipient.email_address and recipient.email_address.address
            ),
            findings=observed.scan.findings,
            timestamp=message.received_date_time or message.sent_date_time,
        )
        observed.verdict = self._classifier.classify(observed.item)
        plan.observed.append(observed)

    def _is_our_mail_label(self, row: DatamapItem, message: Message) -> bool:
        """The change is the label category we wrote (with its header) and nothing that matters to us."""
        if row.label_state != LabelState.labeled or row.label_applied_id is None:
            return False
        label = self._labels.by_id.get(row.label_applied_id)
        return label is not None and f"{self._connector.mail.label_category_prefix}{label.name}" in message.categories

    # Files -------------------------------------------------------------------------------------------------

    async def sync_drive(self, target: DriveTarget) -> None:
        key = f"drive:{target.drive_id}"
        async with reading(self._sessions) as session:
            cursor = await SyncCursorRepository(session).load(key)
        self.counters.containers += 1
        folders = FolderPaths(self._connector, target.drive_id)
        async for page in self._connector.files.drive_delta(target.drive_id, cursor=cursor):
            items = _last_of_each(page.items, lambda item: item.id)
            files = []
            for item in items:
                if item.file is None:  # folders (and packages): they give paths, they are not data map items
                    folders.learn(item)
                else:
                    files.append(item)
            async with reading(self._sessions) as session:
                existing = await DatamapItemRepository(session).by_item_ids(
                    "file", target.drive_id, [item.id for item in files]
                )
            plan = _PagePlan()
            for item in files:
                await self._plan_file(plan, target, folders, item, existing.get(item.id), page.is_resync)
            await self._store(key, "file", target.drive_id, page, plan)

    async def _plan_file(
        self,
        plan: _PagePlan,
        target: DriveTarget,
        folders: "FolderPaths",
        item: DriveItem,
        row: DatamapItem | None,
        is_resync: bool,
    ) -> None:
        if item.is_deleted:
            if row is not None:
                plan.removed.append(item.id)
            return
        if row is not None and row.etag == item.e_tag:
            if is_resync:
                plan.touched.append(item.id)
            return
        parent_id = item.parent_reference.id if item.parent_reference else None
        observed = _Observed(
            item_id=item.id,
            change="new" if row is None else "changed",
            folder_id=parent_id,
            etag=item.e_tag,
            name_hash=name_hash(item.name),
            mime_type=item.file.mime_type if item.file else None,
            size=item.size,
            created_at=item.created_date_time,
            modified_at=item.last_modified_date_time,
        )
        if row is not None and self._modified_by_us(item):
            # assignSensitivityLabel rewrote the file: nothing a person did, no activity, nothing to read.
            observed.change = "echo"
            observed.modified_at = row.item_modified_at
            plan.observed.append(observed)
            return
        result = await self._content.file(target.drive_id, item.id, name=item.name or "", mime_type=observed.mime_type)
        self._count_read(result)
        observed.scan = _Scan.of(result)
        folder_path = await folders.path(parent_id) if parent_id else None
        modifier = item.last_modified_by.user if item.last_modified_by else None
        observed.item = ItemMetadata(
            id=item.id,
            kind="file",
            path=f"/drives/{target.drive_id}/root:{folder_path}" if folder_path is not None else None,
            site=target.site_url,
            modified_by=tuple(value for value in (modifier.id, modifier.email) if value) if modifier else (),
            findings=observed.scan.findings,
            timestamp=item.last_modified_date_time,
        )
        observed.verdict = self._classifier.classify(observed.item)
        plan.observed.append(observed)

    def _modified_by_us(self, item: DriveItem) -> bool:
        app = item.last_modified_by.application if item.last_modified_by else None
        return app is not None and (app.id or "").lower() == self._app_client_id

    def _count_read(self, result: ScanResult) -> None:
        if result.read:
            self.counters.content_read += 1
        else:
            self.counters.content_skipped += 1

    # Storing a page ----------------------------------------------------------------------------------------

    async def _store(
        self,
        key: str,
        kind: str,
        container_id: str,
        page: DeltaPage[Message] | DeltaPage[DriveItem],
        plan: _PagePlan,
        *,
        folder_id: str | None = None,
    ) -> None:
        now = utc_now()
        async with self._sessions() as session, session.begin():
            items = DatamapItemRepository(session)
            cursors = SyncCursorRepository(session)
            ids = [o.item_id for o in plan.observed] + plan.removed + plan.touched
            rows = await items.by_item_ids(kind, container_id, ids)
            self.counters.removed += await items.delete_items(rows[i] for i in plan.removed if i in rows)
            for item_id in plan.touched:
                if item_id in rows:
                    rows[item_id].synced_at = now
            await self._upsert(session, kind, container_id, plan.observed, rows, now)
            if page.is_resync:
                started = await cursors.resync_started(key, now)
                if page.is_last:
                    # The resync listed everything there is: what it did not list is gone.
                    stale = await items.not_seen_since(kind, container_id, started, folder_id=folder_id)
                    self.counters.removed += await items.delete_items(stale)
                    await cursors.resync_finished(key)
            await cursors.save(key, page.cursor)
        self.counters.pages += 1

    async def _upsert(
        self,
        session: AsyncSession,
        kind: str,
        container_id: str,
        observed: Sequence[_Observed],
        rows: dict[str, DatamapItem],
        now: datetime,
    ) -> None:
        for seen in observed:
            row = rows.get(seen.item_id)
            if row is None:
                row = DatamapItem(kind=kind, container_id=container_id, item_id=seen.item_id, first_seen_at=now)
                session.add(row)
                rows[seen.item_id] = row
            _write_metadata(row, seen, now)
        await session.flush()  # new rows get their primary keys before links refer to them
        classified = [
            (rows[seen.item_id], seen.item, seen.verdict)
            for seen in observed
            if seen.item is not None and seen.verdict is not None
        ]
        if not classified:
            return
        customer_ids = {c.customer_id for _, _, verdict in classified for c in verdict.customers}
        customers = await CustomerRepository(session).by_ids(customer_ids)
        links = DatamapLinkRepository(session)
        current = await links.for_items([row.id for row, _, _ in classified])
        for row, item, verdict in classified:
            wanted = {
                attribution.customer_id: [{"rule": r.rule, "detail": r.detail} for r in attribution.reasons]
                for attribution in verdict.customers
                if attribution.customer_id in customers  # a customer removed from the registry mid-cycle
            }
            have = {link.customer_id: link for link in current.get(row.id, [])}
            await links.remove(row.id, set(have) - set(wanted))
            for customer_id, reasons in wanted.items():
                if customer_id in have:
                    if have[customer_id].reasons != reasons:
                        have[customer_id].reasons = reasons
                else:
                    session.add(DatamapLink(item_pk=row.id, customer_id=customer_id, reasons=reasons))
            for event in activity_from_item(item, verdict):
                if event.customer_id in customers:
                    activity.note(customers[event.customer_id], event.kind, event.at, now=now)
        for seen in observed:
            self.counters.created += seen.change == "new"
            self.counters.changed += seen.change == "changed"
            self.counters.echoes += seen.change == "echo"


def _write_metadata(row: DatamapItem, seen: _Observed, now: datetime) -> None:
    row.folder_id, row.etag, row.synced_at = seen.folder_id, seen.etag, now
    row.name_hash, row.mime_type, row.size = seen.name_hash, seen.mime_type, seen.size
    row.item_created_at, row.item_modified_at = seen.created_at, seen.modified_at
    if seen.scan is not None:
        row.scan_status, row.scan_detail = seen.scan.status, seen.scan.detail
        row.findings = [asdict(finding) for finding in seen.scan.findings]
    if seen.verdict is None:
        return  # our own echo: classification and label state stay as they were
    verdict = seen.verdict
    row.category, row.category_reason = verdict.category, verdict.category_reason[:CATEGORY_REASON_MAX]
    target = verdict.label.id if verdict.label else None
    if target is None:
        row.target_label_id = None
        _set_label(row, LabelState.skipped, "category_not_labeled", verdict.action_reason, now)
    elif seen.change == "new" or row.target_label_id != target or row.label_state != LabelState.in_progress:
        # New, re-targeted, or changed by someone else: look at the item's current label again before acting.
        row.target_label_id = target
        _set_label(row, LabelState.pending, None, None, now)


def _set_label(row: DatamapItem, state: str, reason: str | None, detail: str | None, now: datetime) -> None:
    if (row.label_state, row.label_reason, row.label_detail) != (state, reason, detail):
        row.label_state, row.label_reason, row.label_detail, row.label_updated_at = state, reason, detail, now


class FolderPaths:
    """Folder paths of one drive, learnt from the delta feed (parents come before children) and, for a folder
    the feed did not show in this run, read from Graph once. Paths live in memory only: a folder name can be
    a customer's name, and the data map stores names as hashes."""

    def __init__(self, connector: GraphConnector, drive_id: str) -> None:
        self._connector = connector
        self._drive_id = drive_id
        self._paths: dict[str, str] = {}
        self._parents: dict[str, tuple[str | None, str]] = {}

    def learn(self, folder: DriveItem) -> None:
        if folder.is_deleted:
            self._paths.pop(folder.id, None)
            self._parents.pop(folder.id, None)
            return
        parent_id = folder.parent_reference.id if folder.parent_reference else None
        self._parents[folder.id] = (parent_id, folder.name or "")
        self._paths.pop(folder.id, None)  # renamed or moved: derive again when asked

    async def path(self, folder_id: str) -> str | None:
        """'/A/B' below the drive root ('' for the root), None when the folder cannot be found."""
        if folder_id in self._paths:
            return self._paths[folder_id]
        if folder_id in self._parents:
            parent_id, name = self._parents[folder_id]
            if parent_id is None:
                resolved: str | None = ""
            else:
                parent_path = await self.path(parent_id)
                resolved = None if parent_path is None else f"{parent_path}/{name}"
        else:
            resolved = await self._read(folder_id)
        if resolved is not None:
            self._paths[folder_id] = resolved
        return resolved

    async def _read(self, folder_id: str) -> str | None:
        try:
            folder = await self._connector.files.get_item(
                self._drive_id, folder_id, select=("id", "name", "parentReference")
            )
        except NotFound:
            return None
        reference = folder.parent_reference
        if reference is None or reference.id is None:
            return ""  # the root
        if reference.path is not None:
            return f"{reference.path.split('root:', 1)[-1]}/{folder.name or ''}"
        parent_path = await self.path(reference.id)
        return None if parent_path is None else f"{parent_path}/{folder.name or ''}"

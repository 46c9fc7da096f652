"""Steward's path to the tenant, as the benchmarks drive it: GraphConnector + ThrottleBudget + Classifier.

Every mailbox folder and every drive is delta-synced concurrently; the shared budget keeps each mailbox at its 4
slots and SharePoint within its resource units. Each item is classified from its metadata as it arrives (what the
data map sync does before storing), and nothing is kept but counts and the final delta cursors.

These functions run in a process of their own (bench.isolated), so they take only picklable arguments.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.classification import Classifier, CustomerRecord, IdentifierHasher, ItemMetadata
from app.customers.schemas import CustomerImportRow
from app.labeling.service import LABELABLE_MIME_TYPES
from app.policy import default_policy, resolve_labels
from bench.tenant import TenantInfo
from connectors.base import ConnectorError, Throttled
from connectors.graph.auth import ClientSecret, MsalCredential
from connectors.graph.budget import ThrottleBudget
from connectors.graph.client import build_graph_client
from connectors.graph.connector import GraphConnector
from connectors.graph.errors import Parked
from connectors.graph.models import DriveItem, Message
from connectors.graph.paging import Cursor
from connectors.graph.transport import steward_user_agent

BENCH_HASH_KEY = b"steward-benchmark-identifier-hash-key"
# Sites and drives worked on at once. SharePoint's budget limits units, not concurrency, so without a cap every
# site of a large tenant would have a request and a page in memory at the same time; 32 keep the budget busy.
SHAREPOINT_CONCURRENCY = 32


@dataclass
class SyncCounts:
    messages: int = 0
    files: int = 0
    folders: int = 0  # drive folders and roots: listed by delta, not data-map items
    pages: int = 0
    customer_items: int = 0  # attributed to at least one customer
    files_due: int = 0  # labelable files the policy wants labeled
    messages_due: Counter[str] = field(default_factory=Counter)  # per mailbox
    unhandled_429: int = 0  # Throttled errors that reached the caller (the connector gave up retrying)
    parked: int = 0  # containers parked because Graph asked for a wait of minutes
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SyncRun:
    seconds: float
    counts: SyncCounts
    cursors: dict[str, Cursor]  # where each folder's or drive's next (incremental) sync starts

    @property
    def items(self) -> int:
        return self.counts.messages + self.counts.files


@dataclass(frozen=True)
class IncrementalRun:
    seconds: float
    cursors: int
    pages: int
    changes: int
    unhandled_429: int


def customer_records(registry: list[dict[str, Any]]) -> list[CustomerRecord]:
    """The registry as the importer reads it, then as the classifier sees it (app.customers.service.to_record)."""
    records = []
    for raw in registry:
        row = CustomerImportRow.model_validate(raw)
        records.append(
            CustomerRecord(
                id=row.id,
                legal_name=row.legal_name,
                domains=tuple(row.domains),
                contact_emails=tuple(contact.email for contact in row.contacts),
                contact_phones=tuple(contact.phone for contact in row.contacts if contact.phone),
                business_phone=row.business_phone,
                tax_codes=tuple(row.tax_codes),
                do_not_disclose=row.do_not_disclose,
            )
        )
    return records


def build_classifier(info: TenantInfo) -> Classifier:
    policy = default_policy()
    return Classifier(
        policy,
        customer_records(info.registry),
        resolve_labels(policy, info.labels),
        hasher=IdentifierHasher(BENCH_HASH_KEY),
    )


class StewardClient:
    """The connector wired as the service wires it, with the budget set to the tenant's profile."""

    def __init__(self, info: TenantInfo) -> None:
        endpoints = info.endpoints
        profile = info.profile
        self.credential = MsalCredential(
            tenant_id=endpoints["tenant_id"],
            client_id=endpoints["client_id"],
            credential=ClientSecret(endpoints["client_secret"]),
            authority_host=info.base_url,
            ca_bundle=Path(endpoints["ca_bundle"]),
        )
        self.client = build_graph_client(
            self.credential,
            base_url=endpoints["graph_url"],
            allowed_hosts=["127.0.0.1"],
            ca_bundle=Path(endpoints["ca_bundle"]),
        )
        # Outlook's per-mailbox limits are Graph's documented ones, kept whatever the tenant enforces; the
        # SharePoint budget depends on the tenant's licence band, so it follows the profile (none when off).
        budget = ThrottleBudget(
            mailbox_concurrency=profile["outlook_concurrency"],
            mailbox_requests_per_window=profile["outlook_requests_per_window"],
            mailbox_window_s=profile["outlook_window_s"],
            sharepoint_ru_limits=[(profile["ru_per_minute"], 60.0)] if profile["sharepoint_limits"] else [],
        )
        self.graph = GraphConnector(
            self.client,
            budget=budget,
            user_agent=steward_user_agent("Benchmark", "0.1.0"),
            allowed_hosts=["127.0.0.1"],
            token_refresh=self.credential.force_refresh,
        )

    async def aclose(self) -> None:
        await self.client.aclose()
        await self.credential.close()


class FolderPaths:
    """Folder paths of one drive from its delta feed (parents arrive before children), as the data map learns them."""

    def __init__(self) -> None:
        self._parents: dict[str, tuple[str | None, str]] = {}

    def learn(self, folder: DriveItem) -> None:
        parent = folder.parent_reference.id if folder.parent_reference else None
        self._parents[folder.id] = (parent, folder.name or "")

    def path(self, folder_id: str | None) -> str | None:
        names: list[str] = []
        while folder_id is not None:
            parent = self._parents.get(folder_id)
            if parent is None:
                return None
            folder_id, name = parent
            if folder_id is not None:
                names.append(name)
        return "/" + "/".join(reversed(names)) if names else ""


class Syncer:
    def __init__(self, graph: GraphConnector, classifier: Classifier) -> None:
        self.graph = graph
        self.classifier = classifier
        self.counts = SyncCounts()
        self.cursors: dict[str, Cursor] = {}
        self._sharepoint = asyncio.Semaphore(SHAREPOINT_CONCURRENCY)

    def _message(self, user_id: str, message: Message) -> None:
        if message.is_removed:
            return
        self.counts.messages += 1
        participants = [message.sender_from, *message.to_recipients, *message.cc_recipients, *message.bcc_recipients]
        verdict = self.classifier.classify(
            ItemMetadata(
                id=message.id,
                kind="message",
                participants=tuple(
                    p.email_address.address for p in participants if p and p.email_address and p.email_address.address
                ),
                timestamp=message.received_date_time or message.sent_date_time,
            )
        )
        self.counts.customer_items += bool(verdict.customers)
        if verdict.label is not None:
            self.counts.messages_due[user_id] += 1

    def _file(self, drive_id: str, site_url: str | None, item: DriveItem, folders: FolderPaths) -> None:
        if item.is_deleted:
            return
        if item.file is None:
            self.counts.folders += 1
            folders.learn(item)
            return
        self.counts.files += 1
        parent = item.parent_reference.id if item.parent_reference else None
        folder_path = folders.path(parent)
        modifier = item.last_modified_by.user if item.last_modified_by else None
        verdict = self.classifier.classify(
            ItemMetadata(
                id=item.id,
                kind="file",
                path=f"/drives/{drive_id}/root:{folder_path}" if folder_path is not None else None,
                site=site_url,
                modified_by=tuple(value for value in (modifier.id, modifier.email) if value) if modifier else (),
                timestamp=item.last_modified_date_time,
            )
        )
        self.counts.customer_items += bool(verdict.customers)
        mime_type = (item.file.mime_type or "").lower()
        if verdict.label is not None and mime_type in LABELABLE_MIME_TYPES:
            self.counts.files_due += 1

    async def folder(self, user_id: str, folder_id: str, cursor: Cursor | None = None) -> None:
        key = f"mail:{user_id}:{folder_id}"
        async for page in self.graph.mail.message_delta(user_id, folder_id, cursor=cursor or self.cursors.get(key)):
            self.counts.pages += 1
            for message in page.items:
                self._message(user_id, message)
            self.cursors[key] = page.cursor

    async def mailbox(self, user_id: str) -> None:
        folders = await self.graph.mail.mail_folders(user_id)
        await asyncio.gather(*(self._guarded(self.folder(user_id, f.id)) for f in folders))

    async def drive(self, drive_id: str, site_url: str | None) -> None:
        key = f"drive:{drive_id}"
        folders = FolderPaths()
        async for page in self.graph.files.drive_delta(drive_id, cursor=self.cursors.get(key)):
            self.counts.pages += 1
            for item in page.items:
                self._file(drive_id, site_url, item, folders)
            self.cursors[key] = page.cursor

    async def bounded_drive(self, drive_id: str, site_url: str | None) -> None:
        async with self._sharepoint:
            await self.drive(drive_id, site_url)

    async def site(self, site_id: str, site_url: str | None) -> None:
        async with self._sharepoint:
            drives = await self.graph.files.site_drives(site_id)
            await asyncio.gather(*(self._guarded(self.drive(d.id, site_url)) for d in drives))

    async def onedrive(self, user_id: str) -> None:
        async with self._sharepoint:
            found = await self.graph.files.user_drive(user_id)
            if found is not None:
                await self.drive(found.id, found.web_url)

    async def _guarded(self, work: Awaitable[None]) -> None:
        """One container's failure is counted and the others go on, as in jobs/sync.py."""
        try:
            await work
        except Throttled:
            self.counts.unhandled_429 += 1
        except Parked:
            self.counts.parked += 1
        except ConnectorError as error:
            self.counts.errors.append(f"{type(error).__name__}: {error}")

    async def everything(self) -> None:
        users = [user async for user in self.graph.directory.staff_mailboxes()]
        sites = [site async for page in self.graph.files.sites() for site in page.items]
        work: list[Awaitable[None]] = [self.mailbox(u.id) for u in users]
        work += [self.onedrive(u.id) for u in users]
        # OneDrives are reached through their users; their personal sites would list the same drives again.
        work += [self.site(s.id, s.web_url) for s in sites if "-my.sharepoint.com" not in (s.web_url or "")]
        await asyncio.gather(*(self._guarded(w) for w in work))


async def steward_sync(info: TenantInfo) -> SyncRun:
    """A full sync (and classification) of every mailbox folder and drive."""
    steward = StewardClient(info)
    syncer = Syncer(steward.graph, build_classifier(info))
    started = time.perf_counter()
    try:
        await syncer.everything()
    finally:
        seconds = time.perf_counter() - started
        await steward.aclose()
    return SyncRun(seconds, syncer.counts, syncer.cursors)


async def steward_incremental(info: TenantInfo, cursors: dict[str, Cursor]) -> IncrementalRun:
    """Resume every container from its stored deltaLink: on an unchanged tenant, one request per cursor."""
    steward = StewardClient(info)
    syncer = Syncer(steward.graph, build_classifier(info))
    syncer.cursors = dict(cursors)

    def resume(key: str) -> Callable[[], Awaitable[None]]:
        kind, _, rest = key.partition(":")
        if kind == "mail":
            user_id, _, folder_id = rest.partition(":")
            return lambda: syncer.folder(user_id, folder_id)
        return lambda: syncer.bounded_drive(rest, None)

    started = time.perf_counter()
    try:
        await asyncio.gather(*(syncer._guarded(resume(key)()) for key in cursors))
    finally:
        seconds = time.perf_counter() - started
        await steward.aclose()
    counts = syncer.counts
    return IncrementalRun(
        seconds=seconds,
        cursors=len(cursors),
        pages=counts.pages,
        changes=counts.messages + counts.files + counts.folders,
        unhandled_429=counts.unhandled_429,
    )

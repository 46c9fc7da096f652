"""One sync cycle: delta-sync every mail folder and drive into the data map, classify, then label.

Build a `SyncRuntime` once per process (it resolves the policy's label names against the tenant's labels, so an
unknown name stops the process at start) and call `run_sync_cycle` as often as the scheduler likes. Containers
(mailboxes, folders, drives) and guest accounts are rediscovered every `sync_discovery_interval_s`; in between
a cycle sends only delta requests, plus the label work that is due.

A container that fails (no access, Graph throttling for minutes) is reported and skipped; the others go on.
"""

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.classification import Classifier, IdentifierHasher
from app.classification.registry import normalize_address
from app.config import Settings
from app.customers.repository import CustomerRepository
from app.customers.service import to_record
from app.datamap.repository import reading
from app.datamap.service import datamap_service
from app.datamap.sync import DatamapSync, DriveTarget, SyncCounters
from app.db.base import utc_now
from app.labeling.service import LabelCounters, Labeler
from app.models import Customer
from app.policy import (
    LabelMap,
    LabelMappingError,
    Policy,
    TenantLabel,
    default_policy,
    load_policy,
    resolve_labels,
)
from connectors.base import ConnectorError, Forbidden, NotFound
from connectors.graph.connector import GraphConnector
from connectors.graph.errors import Parked
from connectors.graph.park import parking_unit

log = logging.getLogger(__name__)

# Used only outside production when no key is configured: findings stay comparable between runs.
DEVELOPMENT_HASH_KEY = b"steward-development-identifier-hash-key"


class SyncConfigurationError(Exception):
    """The sync cannot start: a setting is missing or the policy does not fit the tenant."""


@dataclass(frozen=True)
class Mailbox:
    user_id: str
    folder_ids: tuple[str, ...]


@dataclass(frozen=True)
class Guest:
    id: str
    mail: str | None


@dataclass(frozen=True)
class Discovery:
    at: float  # time.monotonic() when it was made
    mailboxes: tuple[Mailbox, ...]
    drives: tuple[DriveTarget, ...]
    guests: tuple[Guest, ...]
    problems: tuple[str, ...] = ()


@dataclass
class CycleReport:
    started_at: datetime
    finished_at: datetime | None = None
    discovered: bool = False  # False: the cached discovery was used
    mailboxes: int = 0
    drives: int = 0
    datamap: SyncCounters = field(default_factory=SyncCounters)
    labels: LabelCounters = field(default_factory=LabelCounters)
    parked: list[str] = field(default_factory=list)  # containers skipped because Graph asked us to wait
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["started_at"] = self.started_at.isoformat()
        data["finished_at"] = self.finished_at.isoformat() if self.finished_at else None
        return data


class SyncRuntime:
    """What outlives one cycle: the policy, the resolved label map, the hasher, and the discovery cache."""

    def __init__(
        self,
        *,
        policy: Policy,
        labels: LabelMap,
        hasher: IdentifierHasher,
        tenant_id: str,
        app_client_id: str,
        discovery_interval_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self.labels = labels
        self.hasher = hasher
        self.tenant_id = tenant_id
        self.app_client_id = app_client_id
        self.discovery_interval_s = discovery_interval_s
        self.discovery: Discovery | None = None
        self._clock = clock

    @classmethod
    async def start(
        cls, connector: GraphConnector, settings: Settings, *, policy: Policy | None = None
    ) -> "SyncRuntime":
        key = settings.identifier_hash_key.get_secret_value()
        if not key:
            if settings.env == "production":
                raise SyncConfigurationError("STEWARD_IDENTIFIER_HASH_KEY is required in production")
            log.warning("sync.development_hash_key: STEWARD_IDENTIFIER_HASH_KEY is not set")
        if policy is None:
            policy = load_policy(settings.policy_path) if settings.policy_path else default_policy()
        return cls(
            policy=policy,
            labels=await resolve_tenant_labels(connector, policy),
            hasher=IdentifierHasher(key.encode() if key else DEVELOPMENT_HASH_KEY),
            tenant_id=settings.tenant_id,
            app_client_id=settings.client_id,
            discovery_interval_s=settings.sync_discovery_interval_s,
        )

    def discovery_due(self) -> bool:
        return self.discovery is None or self._clock() - self.discovery.at >= self.discovery_interval_s

    async def discover(self, connector: GraphConnector) -> Discovery:
        self.discovery = await discover(connector, now=self._clock())
        return self.discovery


async def resolve_tenant_labels(connector: GraphConnector, policy: Policy) -> LabelMap:
    """The policy's label names as the tenant's label ids; SyncConfigurationError names what does not fit."""
    tenant = [
        TenantLabel(label.id, label.name or label.display_name or "", label.priority or 0)
        for label in await connector.labels.tenant_labels()
        if label.is_enabled is not False and (label.name or label.display_name)
    ]
    try:
        return resolve_labels(policy, tenant)
    except LabelMappingError as error:
        raise SyncConfigurationError(str(error)) from None


async def discover(connector: GraphConnector, *, now: float) -> Discovery:
    """Staff mailboxes and their folders, every site's drives and the staff's OneDrives, and guest accounts."""
    problems: list[str] = []
    staff = [user async for user in connector.directory.staff_mailboxes()]
    mailboxes = []
    for user in staff:
        try:
            folders = await connector.mail.mail_folders(user.id)
        except (NotFound, Forbidden) as error:
            problems.append(f"mailbox {user.id}: {error}")  # a licence without Exchange, or no access
            continue
        mailboxes.append(Mailbox(user.id, tuple(folder.id for folder in folders)))
    drives: dict[str, DriveTarget] = {}
    async for page in connector.files.sites():
        for site in page.items:
            try:
                site_drives = await connector.files.site_drives(site.id)
            except (NotFound, Forbidden) as error:
                problems.append(f"site {site.id}: {error}")
                continue
            for drive in site_drives:
                drives.setdefault(drive.id, DriveTarget(drive.id, site.web_url))
    for user in staff:
        onedrive = await connector.files.user_drive(user.id)
        if onedrive is not None:
            drives.setdefault(onedrive.id, DriveTarget(onedrive.id, onedrive.web_url))
    guests = [
        Guest(user.id, user.mail)
        async for page in connector.directory.users(odata_filter="userType eq 'Guest'")
        for user in page.items
    ]
    return Discovery(now, tuple(mailboxes), tuple(drives.values()), tuple(guests), tuple(problems))


def guests_by_customer(customers: Sequence[Customer], guests: Sequence[Guest]) -> dict[str, list[str]]:
    """A guest belongs to the customer whose contact it is, else to the customer owning its mail domain."""
    by_contact: dict[str, str] = {}
    by_domain: dict[str, str] = {}
    for customer in customers:
        for contact in customer.contacts:
            if contact.get("email"):
                by_contact.setdefault(normalize_address(contact["email"]), customer.id)
        for domain in customer.domains:
            by_domain.setdefault(domain.lower(), customer.id)
    owned: dict[str, list[str]] = {}
    for guest in guests:
        if not guest.mail:
            continue
        address = normalize_address(guest.mail)
        customer_id = by_contact.get(address) or by_domain.get(address.rpartition("@")[2])
        if customer_id:
            owned.setdefault(customer_id, []).append(guest.id)
    return owned


async def run_sync_cycle(
    sessions: async_sessionmaker[AsyncSession], connector: GraphConnector, runtime: SyncRuntime
) -> CycleReport:
    """Sync every mail folder and drive, classify what changed, then label what is due."""
    report = CycleReport(started_at=utc_now())
    if runtime.discovery_due():
        try:
            await runtime.discover(connector)
        except Parked as parked:
            report.parked.append(f"discovery: {parked}")
        except ConnectorError as error:
            report.errors.append(f"discovery: {error}")
        else:
            report.discovered = True
    discovery = runtime.discovery
    if discovery is None:
        report.finished_at = utc_now()
        return report
    report.errors.extend(discovery.problems if report.discovered else ())
    async with reading(sessions) as session:
        customers = await CustomerRepository(session).all()
    guests = guests_by_customer(customers, discovery.guests)
    classifier = Classifier(
        runtime.policy,
        [to_record(customer, guests.get(customer.id, ())) for customer in customers],
        runtime.labels,
        hasher=runtime.hasher,
    )
    sync = DatamapSync(
        sessions, connector, classifier, runtime.labels, app_client_id=runtime.app_client_id, counters=report.datamap
    )
    for mailbox in discovery.mailboxes:
        report.mailboxes += 1
        for folder_id in mailbox.folder_ids:
            unit = f"mail:{mailbox.user_id}:{folder_id}"
            await _container(report, connector, unit, partial(sync.sync_mail_folder, mailbox.user_id, folder_id))
    for drive in discovery.drives:
        report.drives += 1
        await _container(report, connector, f"drive:{drive.drive_id}", partial(sync.sync_drive, drive))
    async with sessions() as session, session.begin():
        # A do-not-disclose flag set since the last cycle raises the customer's items before labeling.
        report.datamap.protected += await datamap_service.protect_do_not_disclose(
            session, policy=runtime.policy, labels=runtime.labels, now=utc_now()
        )
    labeler = Labeler(
        sessions,
        connector,
        labels=runtime.labels,
        policy=runtime.policy,
        tenant_id=runtime.tenant_id,
        counters=report.labels,
    )
    with parking_unit("labels"):
        await labeler.run()
    report.finished_at = utc_now()
    log.info(
        "sync.cycle containers=%d pages=%d created=%d changed=%d removed=%d labels_applied=%d errors=%d",
        report.datamap.containers,
        report.datamap.pages,
        report.datamap.created,
        report.datamap.changed,
        report.datamap.removed,
        report.labels.applied,
        len(report.errors),
    )
    return report


async def _container(
    report: CycleReport, connector: GraphConnector, unit: str, work: Callable[[], Awaitable[None]]
) -> None:
    not_before = await connector.transport.park_store.not_before(unit)
    if not_before is not None and not_before > utc_now():
        report.parked.append(unit)
        return
    try:
        with parking_unit(unit):
            await work()
    except Parked:
        report.parked.append(unit)
    except ConnectorError as error:
        # Synced pages are stored with their cursor; the next cycle resumes this container where it stopped.
        log.warning("sync.container_failed unit=%s error=%s", unit, type(error).__name__)
        report.errors.append(f"{unit}: {error}")

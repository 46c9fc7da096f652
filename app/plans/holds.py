"""Why an item must not be deleted: Steward's own holds (item_hold) and what Microsoft 365 says.

Local holds are written by other features (a pending disclosure, a customer's request to keep something, a
legal hold recorded by staff) and only read here. Microsoft 365's holds are eDiscovery holds on mailboxes and
sites and retention labels that forbid deleting a file; both are read through the Graph connector.

Planning checks every item once; execution checks again just before each item, so a hold added after approval
still wins.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import HoldSource, ItemHold, ItemKind
from connectors.graph.client import GraphClient
from connectors.graph.connector import GraphConnector
from connectors.graph.models import Drive, User
from connectors.graph.posture import HoldReport
from connectors.graph.requests import configured, sharepoint_claims, tenant_claims

# Exclusion reasons, as shown in dry runs, exports and cards.
LEGAL_HOLD = "legal_hold"
RETENTION_LABEL = "retention_label"
PENDING_DISCLOSURE = "pending_disclosure"
CUSTOMER_REQUEST = "customer_request"
MANUAL_HOLD = "manual_hold"
SHARED_WITH_OTHER_CUSTOMER = "shared_with_other_customer"

REASON_BY_SOURCE: dict[str, str] = {
    HoldSource.legal_hold.value: LEGAL_HOLD,
    HoldSource.disclosure.value: PENDING_DISCLOSURE,
    HoldSource.customer_request.value: CUSTOMER_REQUEST,
    HoldSource.manual.value: MANUAL_HOLD,
}


@dataclass(frozen=True, slots=True)
class ItemRef:
    kind: str
    container_id: str
    item_id: str
    customer_ids: frozenset[str]


@dataclass(frozen=True, slots=True)
class HoldHit:
    reason: str
    detail: str


def hold_matches(hold: ItemHold, ref: ItemRef) -> bool:
    """Every scope field the hold sets must match; a hold with no scope at all matches nothing."""
    scoped = False
    if hold.item_id is not None:
        scoped = True
        if hold.item_id != ref.item_id:
            return False
    if hold.container_id is not None:
        scoped = True
        if hold.container_id != ref.container_id:
            return False
    if hold.kind is not None and hold.kind != ref.kind:
        return False
    if hold.customer_id is not None:
        scoped = True
        if hold.customer_id not in ref.customer_ids:
            return False
    return scoped


def _hit(hold: ItemHold) -> HoldHit:
    return HoldHit(REASON_BY_SOURCE.get(hold.source, MANUAL_HOLD), f"hold #{hold.id}: {hold.reason}")


class LocalHolds:
    """Active holds loaded once (they are few) and matched in memory, for planning many items."""

    def __init__(self, holds: Iterable[ItemHold]) -> None:
        self._holds = list(holds)

    @classmethod
    async def load(cls, session: AsyncSession) -> "LocalHolds":
        result = await session.execute(select(ItemHold).where(ItemHold.released_at.is_(None)).order_by(ItemHold.id))
        return cls(result.scalars().all())

    def check(self, ref: ItemRef) -> HoldHit | None:
        return next((_hit(hold) for hold in self._holds if hold_matches(hold, ref)), None)


async def local_hold_for(session: AsyncSession, ref: ItemRef) -> HoldHit | None:
    """The current answer for one item, straight from the store (execution re-checks just before deleting)."""
    scope = or_(
        ItemHold.item_id == ref.item_id,
        and_(ItemHold.item_id.is_(None), ItemHold.container_id == ref.container_id),
        and_(
            ItemHold.item_id.is_(None),
            ItemHold.container_id.is_(None),
            ItemHold.customer_id.in_(sorted(ref.customer_ids) or [""]),
        ),
    )
    result = await session.execute(select(ItemHold).where(ItemHold.released_at.is_(None), scope).order_by(ItemHold.id))
    return LocalHolds(result.scalars().all()).check(ref)


class ExternalHolds(Protocol):
    """Holds only Microsoft 365 knows about."""

    async def refresh(self) -> None:
        """Re-read the tenant-wide hold state (eDiscovery cases); called before planning and each execution chunk."""
        ...

    async def check(self, ref: ItemRef) -> HoldHit | None: ...


def _under(url: str, prefixes: Iterable[str]) -> bool:
    normalized = url.rstrip("/").lower()
    return any(normalized == prefix or normalized.startswith(prefix + "/") for prefix in prefixes)


class GraphHolds:
    """eDiscovery holds (custodian mailboxes and OneDrives, held sites) and file retention labels, via Graph.

    A mailbox is held when its address is a held custodian's; a drive is held when its URL lies under a held
    site URL (custodians' OneDrives included). A file is also held when its retention label forbids deletion.
    """

    def __init__(self, connector: GraphConnector, client: GraphClient) -> None:
        self._connector = connector
        self._sdk = client.sdk
        self._report = HoldReport()
        self._mail_by_user: dict[str, str | None] = {}
        self._url_by_drive: dict[str, str | None] = {}

    async def refresh(self) -> None:
        self._report = await self._connector.posture.holds()

    async def check(self, ref: ItemRef) -> HoldHit | None:
        if ref.kind == ItemKind.message:
            address = await self._mailbox_address(ref.container_id)
            if address and address.lower() in self._report.held_mailboxes():
                return HoldHit(LEGAL_HOLD, f"mailbox {address} is under an eDiscovery hold")
            return None
        drive_url = await self._drive_url(ref.container_id)
        if drive_url and _under(drive_url, self._report.held_site_urls()):
            return HoldHit(LEGAL_HOLD, "the drive's site is under an eDiscovery hold")
        label = await self._connector.files.retention_label(ref.container_id, ref.item_id)
        if label is not None and label.blocks_deletion:
            return HoldHit(RETENTION_LABEL, f"retention label {label.name!r} forbids deletion")
        return None

    async def _mailbox_address(self, user_id: str) -> str | None:
        if user_id not in self._mail_by_user:
            builder = self._sdk.users.by_user_id(user_id)
            query = builder.UserItemRequestBuilderGetQueryParameters(select=["id", "mail", "userPrincipalName"])
            request = builder.to_get_request_information(configured(query))
            response = await self._connector.transport.send(request, claims=tenant_claims("directory"))
            user = response.parse(User)
            self._mail_by_user[user_id] = user.mail or user.user_principal_name
        return self._mail_by_user[user_id]

    async def _drive_url(self, drive_id: str) -> str | None:
        if drive_id not in self._url_by_drive:
            request = self._sdk.drives.by_drive_id(drive_id).to_get_request_information()
            response = await self._connector.transport.send(request, claims=sharepoint_claims(1))
            self._url_by_drive[drive_id] = response.parse(Drive).web_url
        return self._url_by_drive[drive_id]

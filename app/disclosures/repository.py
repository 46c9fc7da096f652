"""Queries for compelled disclosure: demands and their children, the data map they freeze, their holds."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, select, update

from app.kit.repository import RepositoryBase
from app.models import (
    AuditRecord,
    DatamapItem,
    DatamapLink,
    DisclosureApproval,
    DisclosureDecision,
    DisclosureDemand,
    DisclosureExport,
    DisclosureObjection,
    DisclosureScopeItem,
    DisclosureStatus,
    HoldSource,
    ItemHold,
)

# SQLite caps the bound parameters of one statement; item selections are looked up in chunks.
CHUNK = 400


@dataclass(frozen=True, slots=True)
class MappedItem:
    """A data-map item of the demand's customer (metadata only)."""

    kind: str
    container_id: str
    item_id: str
    etag: str | None
    size: int | None
    name_hash: str | None
    item_date: datetime | None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.container_id, self.item_id)


def _mapped(item: DatamapItem) -> MappedItem:
    return MappedItem(
        kind=item.kind,
        container_id=item.container_id,
        item_id=item.item_id,
        etag=item.etag,
        size=item.size,
        name_hash=item.name_hash,
        item_date=item.item_modified_at or item.item_created_at,
    )


def hold_ref(demand_id: str) -> str:
    return f"disclosure:{demand_id}"


class DemandRepository(RepositoryBase[DisclosureDemand]):
    model = DisclosureDemand

    async def locked(self, demand_id: str) -> DisclosureDemand | None:
        """The demand, row-locked on PostgreSQL so that two moves on one demand are serialised."""
        statement = (
            self.select()
            .where(DisclosureDemand.id == demand_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return await self.get_one_or_none(statement)

    async def find(self, *, customer_id: str, authority: str, reference: str) -> DisclosureDemand | None:
        return await self.get_one_or_none(
            self.select().where(
                DisclosureDemand.customer_id == customer_id,
                DisclosureDemand.authority == authority,
                DisclosureDemand.reference == reference,
            )
        )

    async def page(
        self, *, status: DisclosureStatus | None, customer_id: str | None, limit: int
    ) -> Sequence[DisclosureDemand]:
        statement: Select[tuple[DisclosureDemand]] = self.select().order_by(DisclosureDemand.created_at.desc())
        if status is not None:
            statement = statement.where(DisclosureDemand.status == status)
        if customer_id is not None:
            statement = statement.where(DisclosureDemand.customer_id == customer_id)
        return await self.get_all(statement.limit(limit))

    async def window_ended(self, now: datetime) -> Sequence[str]:
        result = await self.session.execute(
            select(DisclosureDemand.id).where(
                DisclosureDemand.status == DisclosureStatus.objection_window,
                DisclosureDemand.objection_deadline < now,
            )
        )
        return list(result.scalars().all())

    # Data map ----------------------------------------------------------------------------------------------

    async def customer_items_in_range(
        self, customer_id: str, kinds: Sequence[str], start: datetime, end: datetime
    ) -> list[MappedItem]:
        """Items of the customer with a date (created or modified) inside [start, end]."""
        created_in = DatamapItem.item_created_at.between(start, end)
        modified_in = DatamapItem.item_modified_at.between(start, end)
        statement = (
            select(DatamapItem)
            .join(DatamapLink, DatamapLink.item_pk == DatamapItem.id)
            .where(DatamapLink.customer_id == customer_id, DatamapItem.kind.in_(list(kinds)))
            .where(created_in | modified_in)
            .order_by(DatamapItem.kind, DatamapItem.container_id, DatamapItem.item_id)
        )
        return [_mapped(item) for item in (await self.session.execute(statement)).scalars().all()]

    async def customer_items(self, customer_id: str, item_ids: Sequence[str]) -> list[MappedItem]:
        """The customer's data-map items among `item_ids` (other customers' items are never returned)."""
        found: list[MappedItem] = []
        wanted = sorted(set(item_ids))
        for start in range(0, len(wanted), CHUNK):
            statement = (
                select(DatamapItem)
                .join(DatamapLink, DatamapLink.item_pk == DatamapItem.id)
                .where(DatamapLink.customer_id == customer_id, DatamapItem.item_id.in_(wanted[start : start + CHUNK]))
            )
            found.extend(_mapped(item) for item in (await self.session.execute(statement)).scalars().all())
        return found

    # Scope and holds ---------------------------------------------------------------------------------------

    async def scope_items(self, demand_id: str, *, in_scope_only: bool) -> list[DisclosureScopeItem]:
        statement = select(DisclosureScopeItem).where(DisclosureScopeItem.demand_id == demand_id)
        if in_scope_only:
            statement = statement.where(DisclosureScopeItem.in_scope.is_(True))
        statement = statement.order_by(
            DisclosureScopeItem.kind, DisclosureScopeItem.container_id, DisclosureScopeItem.item_id
        )
        return list((await self.session.execute(statement)).scalars().all())

    async def scope_counts(self, demand_id: str) -> tuple[int, int]:
        """(items in scope, items the demand froze)."""
        result = await self.session.execute(
            select(func.count(), func.count().filter(DisclosureScopeItem.in_scope.is_(True))).where(
                DisclosureScopeItem.demand_id == demand_id
            )
        )
        frozen, in_scope = result.one()
        return int(in_scope), int(frozen)

    async def active_holds(self, demand_id: str) -> list[ItemHold]:
        statement = select(ItemHold).where(
            ItemHold.source == HoldSource.disclosure,
            ItemHold.source_ref == hold_ref(demand_id),
            ItemHold.released_at.is_(None),
        )
        return list((await self.session.execute(statement)).scalars().all())

    async def release_holds(self, demand_id: str, *, by: str, at: datetime) -> int:
        result = await self.session.execute(
            update(ItemHold)
            .where(
                ItemHold.source == HoldSource.disclosure,
                ItemHold.source_ref == hold_ref(demand_id),
                ItemHold.released_at.is_(None),
            )
            .values(released_at=at, released_by=by)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    # Children ----------------------------------------------------------------------------------------------

    async def objections(self, demand_id: str) -> list[DisclosureObjection]:
        statement = (
            select(DisclosureObjection)
            .where(DisclosureObjection.demand_id == demand_id)
            .order_by(DisclosureObjection.received_at, DisclosureObjection.id)
        )
        return list((await self.session.execute(statement)).scalars().all())

    async def decisions(self, demand_id: str) -> list[DisclosureDecision]:
        statement = (
            select(DisclosureDecision)
            .where(DisclosureDecision.demand_id == demand_id)
            .order_by(DisclosureDecision.decided_at, DisclosureDecision.id)
        )
        return list((await self.session.execute(statement)).scalars().all())

    async def approvals(self, demand_id: str, *, scope_hash: str | None = None) -> list[DisclosureApproval]:
        statement = select(DisclosureApproval).where(DisclosureApproval.demand_id == demand_id)
        if scope_hash is not None:
            statement = statement.where(DisclosureApproval.scope_hash == scope_hash)
        statement = statement.order_by(DisclosureApproval.decided_at, DisclosureApproval.id)
        return list((await self.session.execute(statement)).scalars().all())

    async def approval_of(self, demand_id: str, scope_hash: str, approver: str) -> DisclosureApproval | None:
        statement = select(DisclosureApproval).where(
            DisclosureApproval.demand_id == demand_id,
            DisclosureApproval.scope_hash == scope_hash,
            DisclosureApproval.approver == approver,
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def exports(self, demand_id: str) -> list[DisclosureExport]:
        statement = (
            select(DisclosureExport).where(DisclosureExport.demand_id == demand_id).order_by(DisclosureExport.id)
        )
        return list((await self.session.execute(statement)).scalars().all())

    async def export(self, demand_id: str, export_id: int) -> DisclosureExport | None:
        statement = select(DisclosureExport).where(
            DisclosureExport.demand_id == demand_id, DisclosureExport.id == export_id
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def history(self, demand_id: str) -> list[AuditRecord]:
        statement = (
            select(AuditRecord).where(AuditRecord.subject == f"disclosure:{demand_id}").order_by(AuditRecord.seq)
        )
        return list((await self.session.execute(statement)).scalars().all())

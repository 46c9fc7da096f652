"""Queries on the customer registry and on the legal holds it keeps in item_hold."""

from collections.abc import Iterable, Sequence

from sqlalchemy import Select

from app.kit.repository import RepositoryBase
from app.models import Customer, HoldSource, ItemHold, ServiceStatus


class CustomerRepository(RepositoryBase[Customer]):
    model = Customer

    async def by_ids(self, ids: Iterable[str]) -> dict[str, Customer]:
        wanted = list(set(ids))
        found: dict[str, Customer] = {}
        # Chunked: SQLite caps the number of bound parameters in one statement.
        for start in range(0, len(wanted), 500):
            statement = self.select().where(Customer.id.in_(wanted[start : start + 500]))
            found.update({customer.id: customer for customer in await self.get_all(statement)})
        return found

    async def page(self, *, after: str | None, limit: int, status: ServiceStatus | None) -> Sequence[Customer]:
        statement = self.select().order_by(Customer.id).limit(limit)
        if after is not None:
            statement = statement.where(Customer.id > after)
        if status is not None:
            statement = statement.where(Customer.service_status == status)
        return await self.get_all(statement)

    async def all(self) -> Sequence[Customer]:
        return await self.get_all(self.select().order_by(Customer.id))


class LegalHoldRepository(RepositoryBase[ItemHold]):
    """Customer-wide legal holds: item_hold rows with source legal_hold and no container or item scope."""

    model = ItemHold

    def _active(self) -> Select[tuple[ItemHold]]:
        return self.select().where(
            ItemHold.source == HoldSource.legal_hold,
            ItemHold.released_at.is_(None),
            ItemHold.container_id.is_(None),
            ItemHold.item_id.is_(None),
        )

    async def active_for(self, customer_ids: Iterable[str]) -> dict[str, list[ItemHold]]:
        wanted = list(set(customer_ids))
        holds: dict[str, list[ItemHold]] = {customer_id: [] for customer_id in wanted}
        for start in range(0, len(wanted), 500):
            statement = (
                self._active().where(ItemHold.customer_id.in_(wanted[start : start + 500])).order_by(ItemHold.id)
            )
            for hold in await self.get_all(statement):
                holds[hold.customer_id or ""].append(hold)
        return holds

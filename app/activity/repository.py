"""Queries on explicit activity events."""

from app.kit.repository import RepositoryBase
from app.models import CustomerEvent


class CustomerEventRepository(RepositoryBase[CustomerEvent]):
    model = CustomerEvent

    async def by_reference(self, customer_id: str, kind: str, reference: str) -> CustomerEvent | None:
        statement = self.select().where(
            CustomerEvent.customer_id == customer_id,
            CustomerEvent.kind == kind,
            CustomerEvent.reference == reference,
        )
        return await self.get_one_or_none(statement)

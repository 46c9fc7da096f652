"""Queries for marketing references: candidate customers and their consent provenance."""

from collections.abc import Sequence

from sqlalchemy import select

from app.kit.repository import RepositoryBase
from app.models import Customer, ReferenceConsent


class ReferenceRepository(RepositoryBase[ReferenceConsent]):
    model = ReferenceConsent

    async def candidates(self) -> Sequence[Customer]:
        """Customers with no flag against being named; the guard still decides each one."""
        statement = (
            select(Customer)
            .where(Customer.do_not_disclose.is_(False), Customer.marketing_opt_out.is_(False))
            .order_by(Customer.legal_name, Customer.id)
        )
        return (await self.session.execute(statement)).scalars().all()

    async def latest_consents(self, customer_ids: Sequence[str]) -> dict[str, ReferenceConsent]:
        latest: dict[str, ReferenceConsent] = {}
        wanted = sorted(set(customer_ids))
        # Chunked: SQLite caps the bound parameters of one statement.
        for start in range(0, len(wanted), 400):
            statement = (
                self.select()
                .where(ReferenceConsent.customer_id.in_(wanted[start : start + 400]))
                .order_by(ReferenceConsent.customer_id, ReferenceConsent.recorded_at, ReferenceConsent.id)
            )
            for consent in await self.get_all(statement):
                latest[consent.customer_id] = consent
        return latest

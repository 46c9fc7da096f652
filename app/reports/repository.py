"""Aggregate queries over the data map for the reports."""

from collections.abc import Sequence

from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import DatamapItem, DatamapLink

# (customer id or "", kind, label state, label reason, count)
CoverageRow = tuple[str, str, str, str | None, int]


class CoverageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def per_customer(self) -> Sequence[CoverageRow]:
        statement = (
            select(
                DatamapLink.customer_id,
                DatamapItem.kind,
                DatamapItem.label_state,
                DatamapItem.label_reason,
                func.count(),
            )
            .join(DatamapItem, DatamapItem.id == DatamapLink.item_pk)
            .group_by(DatamapLink.customer_id, DatamapItem.kind, DatamapItem.label_state, DatamapItem.label_reason)
        )
        return list((await self.session.execute(statement)).tuples().all())

    async def customer_items(self, *, attributed: bool) -> Sequence[tuple[str, str, str | None, int]]:
        """(kind, label state, label reason, count) over items with (or without) at least one customer."""
        linked = exists().where(DatamapLink.item_pk == DatamapItem.id)
        statement = (
            select(DatamapItem.kind, DatamapItem.label_state, DatamapItem.label_reason, func.count())
            .where(linked if attributed else ~linked)
            .group_by(DatamapItem.kind, DatamapItem.label_state, DatamapItem.label_reason)
        )
        return list((await self.session.execute(statement)).tuples().all())

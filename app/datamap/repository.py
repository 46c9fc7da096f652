"""Queries on the data map (items and their customer links) and on sync cursors."""

import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime
from typing import TypeVar

from sqlalchemy import and_, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.base import utc_now
from app.db.engine import READ_ONLY_OPTION
from app.kit.repository import RepositoryBase
from app.models import Customer, DatamapItem, DatamapLink, SyncCursor
from connectors.graph.paging import Cursor

# SQLite allows 32k bound parameters per statement in current builds, far fewer in old ones: stay well below.
CHUNK = 500


V = TypeVar("V")


@contextlib.asynccontextmanager
async def reading(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session that only reads: on SQLite its transaction is deferred, so it never queues behind a writer."""
    async with sessions() as session:
        await session.connection(execution_options={READ_ONLY_OPTION: True})
        yield session


def _chunks(values: Sequence[V]) -> Iterable[list[V]]:
    for start in range(0, len(values), CHUNK):
        yield list(values[start : start + CHUNK])


class DatamapItemRepository(RepositoryBase[DatamapItem]):
    model = DatamapItem

    async def by_item_ids(self, kind: str, container_id: str, item_ids: Sequence[str]) -> dict[str, DatamapItem]:
        found: dict[str, DatamapItem] = {}
        for chunk in _chunks(list(dict.fromkeys(item_ids))):
            statement = self.select().where(
                DatamapItem.kind == kind, DatamapItem.container_id == container_id, DatamapItem.item_id.in_(chunk)
            )
            found.update({row.item_id: row for row in await self.get_all(statement)})
        return found

    async def delete_items(self, rows: Iterable[DatamapItem]) -> int:
        pks = [row.id for row in rows]
        for chunk in _chunks(pks):
            # Links go first explicitly: SQLite enforces ON DELETE CASCADE only with foreign_keys=ON.
            await self.session.execute(delete(DatamapLink).where(DatamapLink.item_pk.in_(chunk)))
            await self.session.execute(delete(DatamapItem).where(DatamapItem.id.in_(chunk)))
        return len(pks)

    async def not_seen_since(
        self, kind: str, container_id: str, since: datetime, *, folder_id: str | None = None
    ) -> Sequence[DatamapItem]:
        statement = self.select().where(
            DatamapItem.kind == kind, DatamapItem.container_id == container_id, DatamapItem.synced_at < since
        )
        if folder_id is not None:
            statement = statement.where(DatamapItem.folder_id == folder_id)
        return await self.get_all(statement)

    async def with_label_state(
        self, states: Iterable[str], *, kind: str, after_pk: int, limit: int
    ) -> Sequence[DatamapItem]:
        statement = (
            self.select()
            .where(DatamapItem.label_state.in_(list(states)), DatamapItem.kind == kind, DatamapItem.id > after_pk)
            .order_by(DatamapItem.id)
            .limit(limit)
        )
        return await self.get_all(statement)

    async def for_customer(
        self, customer_id: str, *, kind: str | None, after_pk: int, limit: int
    ) -> Sequence[tuple[DatamapItem, DatamapLink]]:
        statement = (
            select(DatamapItem, DatamapLink)
            .join(DatamapLink, DatamapLink.item_pk == DatamapItem.id)
            .where(DatamapLink.customer_id == customer_id, DatamapItem.id > after_pk)
            .order_by(DatamapItem.id)
            .limit(limit)
        )
        if kind is not None:
            statement = statement.where(DatamapItem.kind == kind)
        rows = (await self.session.execute(statement)).tuples().all()
        return list(rows)

    async def of_protected_customers_below(self, category: str) -> Sequence[DatamapItem]:
        """Items of a do-not-disclose customer not yet in `category` (the flag may have been set since)."""
        protected = (
            select(DatamapLink.item_pk)
            .join(Customer, Customer.id == DatamapLink.customer_id)
            .where(Customer.do_not_disclose.is_(True))
        )
        return await self.get_all(
            self.select()
            .where(DatamapItem.id.in_(protected), DatamapItem.category != category)
            .order_by(DatamapItem.id)
        )

    async def customer_counts(self, customer_id: str) -> Sequence[tuple[str, str, str, int]]:
        """(kind, category, label_state, count) for the customer's items."""
        statement = (
            select(DatamapItem.kind, DatamapItem.category, DatamapItem.label_state, func.count())
            .join(DatamapLink, DatamapLink.item_pk == DatamapItem.id)
            .where(DatamapLink.customer_id == customer_id)
            .group_by(DatamapItem.kind, DatamapItem.category, DatamapItem.label_state)
        )
        return list((await self.session.execute(statement)).tuples().all())


class DatamapLinkRepository(RepositoryBase[DatamapLink]):
    model = DatamapLink

    async def for_items(self, item_pks: Sequence[int]) -> dict[int, list[DatamapLink]]:
        links: dict[int, list[DatamapLink]] = {}
        for chunk in _chunks(list(item_pks)):
            for link in await self.get_all(self.select().where(DatamapLink.item_pk.in_(chunk))):
                links.setdefault(link.item_pk, []).append(link)
        return links

    async def remove(self, item_pk: int, customer_ids: Iterable[str]) -> None:
        doomed = list(customer_ids)
        if doomed:
            await self.session.execute(
                delete(DatamapLink).where(and_(DatamapLink.item_pk == item_pk, DatamapLink.customer_id.in_(doomed)))
            )


class SyncCursorRepository(RepositoryBase[SyncCursor]):
    """The connector's CursorStore on the database: save() joins the caller's transaction (the page's upserts)."""

    model = SyncCursor

    async def row(self, key: str) -> SyncCursor | None:
        return await self.get_one_or_none(self.select().where(SyncCursor.resource_key == key))

    async def load(self, key: str) -> Cursor | None:
        row = await self.row(key)
        if row is None or row.cursor is None:
            return None
        return Cursor(row.cursor, is_delta=row.is_delta, is_resync=row.is_resync)

    async def save(self, key: str, cursor: Cursor) -> None:
        row = await self.row(key)
        if row is None:
            row = await self.create(SyncCursor(resource_kind=key.split(":", 1)[0], resource_key=key))
        row.cursor, row.is_delta, row.is_resync = cursor.url, cursor.is_delta, cursor.is_resync
        row.updated_at = utc_now()
        await self.session.flush()

    async def resync_started(self, key: str, now: datetime) -> datetime:
        """When the resync running on `key` began (recorded now if this is its first page)."""
        row = await self.row(key)
        if row is None:
            row = await self.create(SyncCursor(resource_kind=key.split(":", 1)[0], resource_key=key))
        if row.resync_started_at is None:
            row.resync_started_at = now
            await self.session.flush()
        return row.resync_started_at

    async def resync_finished(self, key: str) -> None:
        row = await self.row(key)
        if row is not None:
            row.resync_started_at = None

    async def keys(self, kind: str) -> Sequence[str]:
        statement = select(SyncCursor.resource_key).where(SyncCursor.resource_kind == kind)
        return (await self.session.execute(statement)).scalars().all()

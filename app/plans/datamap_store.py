"""DataMapReader over the data map's tables (datamap_item, datamap_link, sync_cursor).

Completeness is judged strictly: every mail folder and drive the sync knows must have finished an enumeration
(its cursor is a deltaLink) and none may be resyncing. A customer's items could sit in any container, so one
unfinished container anywhere makes the map incomplete for everyone.
"""

from collections.abc import AsyncIterator, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.engine import READ_ONLY_OPTION
from app.models import DatamapItem, DatamapLink, SyncCursor
from app.plans.datamap import Coverage, MappedItem

SYNCED_KINDS = ("mail", "drive")
PAGE = 500


class StoreDataMap:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    async def coverage(self, customer_ids: Sequence[str]) -> Coverage:
        async with self._sessionmaker() as session:
            await session.connection(execution_options={READ_ONLY_OPTION: True})
            cursors = (
                (await session.execute(select(SyncCursor).where(SyncCursor.resource_kind.in_(SYNCED_KINDS))))
                .scalars()
                .all()
            )
        if not cursors:
            return Coverage(False, ("nothing has been synced yet",))
        unfinished = tuple(sorted(cursor.resource_key for cursor in cursors if cursor.is_resync or not cursor.is_delta))
        return Coverage(not unfinished, unfinished)

    async def items_for(self, customer_ids: Sequence[str]) -> AsyncIterator[MappedItem]:
        wanted = sorted(set(customer_ids))
        after = 0
        while True:
            async with self._sessionmaker() as session:
                # Read-only (a deferred transaction on SQLite): the plan being built holds the write lock.
                await session.connection(execution_options={READ_ONLY_OPTION: True})
                rows = (
                    (
                        await session.execute(
                            select(DatamapItem)
                            .where(
                                DatamapItem.id > after,
                                DatamapItem.id.in_(
                                    select(DatamapLink.item_pk).where(DatamapLink.customer_id.in_(wanted or [""]))
                                ),
                            )
                            .order_by(DatamapItem.id)
                            .limit(PAGE)
                        )
                    )
                    .scalars()
                    .all()
                )
                if not rows:
                    return
                links = (
                    await session.execute(
                        select(DatamapLink.item_pk, DatamapLink.customer_id).where(
                            DatamapLink.item_pk.in_([row.id for row in rows])
                        )
                    )
                ).all()
            owners: dict[int, set[str]] = {}
            for item_pk, customer_id in links:
                owners.setdefault(int(item_pk), set()).add(str(customer_id))
            for row in rows:
                yield MappedItem(
                    kind=row.kind,
                    container_id=row.container_id,
                    item_id=row.item_id,
                    etag=row.etag,
                    size=int(row.size or 0),
                    name_hash=row.name_hash or "",
                    customer_ids=frozenset(owners.get(row.id, set())),
                )
            after = rows[-1].id

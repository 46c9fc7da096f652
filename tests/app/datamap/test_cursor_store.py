"""The connector's CursorStore on the database."""

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.datamap.repository import SyncCursorRepository
from app.models import SyncCursor
from connectors.graph.paging import Cursor


async def test_cursors_round_trip_and_are_replaced_in_place(session: AsyncSession) -> None:
    store = SyncCursorRepository(session)
    assert await store.load("mail:u1:inbox") is None
    await store.save("mail:u1:inbox", Cursor("https://graph/next?$skiptoken=1", is_delta=False))
    await store.save("mail:u1:inbox", Cursor("https://graph/delta?$deltatoken=2", is_delta=True, is_resync=False))
    await store.save("drive:b!x", Cursor("https://graph/next?token=3", is_delta=False, is_resync=True))
    assert await store.load("mail:u1:inbox") == Cursor("https://graph/delta?$deltatoken=2", True, False)
    assert await store.load("drive:b!x") == Cursor("https://graph/next?token=3", False, True)
    rows = (await session.execute(select(SyncCursor).order_by(SyncCursor.resource_key))).scalars().all()
    assert [(row.resource_kind, row.resource_key) for row in rows] == [
        ("drive", "drive:b!x"),
        ("mail", "mail:u1:inbox"),
    ]


async def test_a_resync_keeps_its_start_until_it_finishes(session: AsyncSession) -> None:
    store = SyncCursorRepository(session)
    first, later = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    assert await store.resync_started("drive:b!y", first) == first
    assert await store.resync_started("drive:b!y", later) == first
    await store.resync_finished("drive:b!y")
    assert await store.resync_started("drive:b!y", later) == later

"""Fixtures for deletion tests; the other deletion test packages import these (see their conftest.py)."""

from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from app.config import Settings
from app.db.base import utc_now
from app.plans.context import DeletionContext
from app.policy import Policy, default_policy
from tests.app.plans.support import FixedHolds, ListDataMap, Store
from tests.conftest import Database

APPROVER_A = "aaaaaaaa-0000-4000-8000-00000000000a"
APPROVER_B = "bbbbbbbb-0000-4000-8000-00000000000b"
APPROVER_C = "cccccccc-0000-4000-8000-00000000000c"
REQUESTER = "dddddddd-0000-4000-8000-00000000000d"


@pytest.fixture
async def store(database: Database, engine: AsyncEngine) -> AsyncIterator[Store]:
    """The session's migrated store (SQLite and PostgreSQL), every test inside an outer transaction rolled back
    at the end. Each `async with sessionmaker() as s, s.begin()` of the code under test is a savepoint in it, so
    its commits and rollbacks behave as usual, one after the other."""
    async with engine.connect() as connection:
        outer = await connection.begin()
        maker = async_sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
        try:
            yield Store(database.url, maker)
        finally:
            await outer.rollback()


class Clock:
    def __init__(self) -> None:
        self.now = utc_now()

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_context(clock: Clock) -> Callable[..., DeletionContext]:
    def build(
        *,
        items: list[Any] | None = None,
        holds: FixedHolds | None = None,
        policy: Policy | None = None,
        **settings: Any,
    ) -> DeletionContext:
        values: dict[str, Any] = {
            "env": "testing",
            "tenant_id": "tenant-1",
            "approvers": [APPROVER_A, APPROVER_B, APPROVER_C, REQUESTER],
        }
        values.update(settings)
        return DeletionContext(
            settings=Settings(_env_file=None, **values),
            policy=policy or default_policy(),
            external_holds=holds or FixedHolds(),
            datamap=ListDataMap(items or []),
            clock=clock,
        )

    return build

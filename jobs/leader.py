"""Exactly one scheduler leader: a PostgreSQL advisory lock, or a lease row on SQLite.

APScheduler 3 cannot share a job store between running schedulers (its FAQ: "Short answer: You can't"), so
only the leader starts one. PostgreSQL: `pg_try_advisory_lock` on a connection kept open; the lock dies with
the session, so a killed leader frees it at once. SQLite: a lease row that the leader renews; a follower
takes over once it has expired. Either way `epoch` grows with every new leader, and job runs are recorded
with it, so "who ran what" is never ambiguous.
"""

import uuid
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from app.db.base import utc_now
from app.models import SchedulerLease

LEASE_NAME = "scheduler"
# A fixed 64-bit key for pg_try_advisory_lock: "steward-scheduler" in spirit; any constant unique to Steward.
ADVISORY_KEY = 0x5354_4557_5343_4844


class Leadership(Protocol):
    holder: str
    epoch: int

    async def acquire(self) -> bool:
        """Become the leader if nobody is; True when this process leads."""
        ...

    async def renew(self) -> bool:
        """Still the leader? False means stop scheduling at once."""
        ...

    async def release(self) -> None: ...


async def _bump_epoch(sessionmaker: async_sessionmaker[AsyncSession], holder: str, expires_at: datetime) -> int:
    async with sessionmaker() as session, session.begin():
        lease = await session.get(SchedulerLease, LEASE_NAME, populate_existing=True)
        if lease is None:
            lease = SchedulerLease(name=LEASE_NAME, holder=holder, epoch=1, expires_at=expires_at)
            session.add(lease)
        else:
            lease.holder, lease.epoch, lease.expires_at = holder, lease.epoch + 1, expires_at
        await session.flush()
        return lease.epoch


class SqliteLease:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], *, lease_s: float, holder: str | None = None
    ) -> None:
        self._sessionmaker = sessionmaker
        self._lease = timedelta(seconds=lease_s)
        self.holder = holder or f"scheduler-{uuid.uuid4().hex[:12]}"
        self.epoch = 0

    async def acquire(self) -> bool:
        now = utc_now()
        try:
            async with self._sessionmaker() as session, session.begin():
                lease = await session.get(SchedulerLease, LEASE_NAME, populate_existing=True)
                if lease is None:
                    session.add(
                        SchedulerLease(name=LEASE_NAME, holder=self.holder, epoch=1, expires_at=now + self._lease)
                    )
                    await session.flush()
                    self.epoch = 1
                    return True
                if lease.holder != self.holder and lease.expires_at > now:
                    return False
                lease.holder, lease.epoch, lease.expires_at = self.holder, lease.epoch + 1, now + self._lease
                await session.flush()
                self.epoch = lease.epoch
                return True
        except IntegrityError:  # another process inserted the row first
            return False

    async def renew(self) -> bool:
        now = utc_now()
        async with self._sessionmaker() as session, session.begin():
            result = await session.execute(
                update(SchedulerLease)
                .where(
                    SchedulerLease.name == LEASE_NAME,
                    SchedulerLease.holder == self.holder,
                    SchedulerLease.epoch == self.epoch,
                    SchedulerLease.expires_at > now,
                )
                .values(expires_at=now + self._lease)
            )
            return result.rowcount == 1  # type: ignore[attr-defined]

    async def release(self) -> None:
        async with self._sessionmaker() as session, session.begin():
            await session.execute(
                update(SchedulerLease)
                .where(SchedulerLease.name == LEASE_NAME, SchedulerLease.holder == self.holder)
                .values(expires_at=utc_now())
            )


class PostgresAdvisoryLock:
    def __init__(
        self, engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession], *, holder: str | None = None
    ) -> None:
        self._engine = engine
        self._sessionmaker = sessionmaker
        self._connection: AsyncConnection | None = None
        self.holder = holder or f"scheduler-{uuid.uuid4().hex[:12]}"
        self.epoch = 0

    async def acquire(self) -> bool:
        if self._connection is None:
            self._connection = await self._engine.connect()
        got = bool(
            (await self._connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_KEY})).scalar()
        )
        await self._connection.commit()
        if not got:
            return False
        self.epoch = await _bump_epoch(self._sessionmaker, self.holder, utc_now() + timedelta(days=3650))
        return True

    async def renew(self) -> bool:
        # The lock lives as long as this session: a dead connection means someone else may lead now.
        if self._connection is None:
            return False
        try:
            await self._connection.execute(text("SELECT 1"))
            await self._connection.commit()
        except Exception:  # any failure of the lock's session means the lock may be gone
            self._connection = None
            return False
        return True

    async def release(self) -> None:
        if self._connection is not None:
            try:
                await self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_KEY})
                await self._connection.commit()
            finally:
                await self._connection.close()
                self._connection = None


def leadership(engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession], *, lease_s: float) -> Leadership:
    if engine.dialect.name == "postgresql":
        return PostgresAdvisoryLock(engine, sessionmaker)
    return SqliteLease(sessionmaker, lease_s=lease_s)

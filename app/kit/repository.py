"""Base class for repositories: the only place where SQL statements are built."""

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import Base

M = TypeVar("M", bound=Base)


class RepositoryBase(Generic[M]):
    """Data access for one model. Repositories flush but never commit: the caller owns the transaction."""

    model: type[M]

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def select(self) -> Select[tuple[M]]:
        return select(self.model)

    async def get(self, primary_key: Any) -> M | None:
        return await self.session.get(self.model, primary_key)

    async def get_one_or_none(self, statement: Select[tuple[M]]) -> M | None:
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def get_all(self, statement: Select[tuple[M]]) -> Sequence[M]:
        return (await self.session.execute(statement)).scalars().all()

    async def create(self, obj: M, *, flush: bool = False) -> M:
        self.session.add(obj)
        if flush:
            await self.session.flush()
        return obj

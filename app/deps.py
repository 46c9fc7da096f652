"""Dependencies shared by every domain's endpoints."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession


async def request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request owns the transaction: services and repositories flush, this commits or rolls back."""
    async with request.app.state.sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()


# scope="function" commits before the response is sent, so a 2xx never reports an uncommitted change.
SessionDep = Annotated[AsyncSession, Depends(request_session, scope="function")]

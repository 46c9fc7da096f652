"""Run create_app() in-process, lifespan included, against a migrated test store."""

from types import TracebackType

import httpx
from fastapi import FastAPI

from app.config import Settings
from app.db.engine import create_sessionmaker
from app.main import create_app
from tests.conftest import Database


class RunningApp:
    """`async with RunningApp(settings, database) as client:` an HTTP client for the app, its lifespan running.

    With a `database`, the app uses that store's engine (on PostgreSQL the test schema is a connection setting
    that a URL cannot carry).
    """

    def __init__(self, settings: Settings, database: Database | None = None) -> None:
        self.app: FastAPI = create_app(settings)
        self._database = database

    async def __aenter__(self) -> httpx.AsyncClient:
        self._lifespan = self.app.router.lifespan_context(self.app)
        await self._lifespan.__aenter__()
        if self._database is not None:
            await self.app.state.engine.dispose()
            self.app.state.engine = self._database.engine()
            self.app.state.sessionmaker = create_sessionmaker(self.app.state.engine)
        transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
        self._client = httpx.AsyncClient(transport=transport, base_url="http://steward.test")
        return self._client

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._client.aclose()
        if self._database is not None:
            await self.app.state.engine.dispose()
        await self._lifespan.__aexit__(None, None, None)


def app_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {"env": "testing", "database_url": "sqlite+aiosqlite:///:memory:"}
    return Settings(_env_file=None, **(values | overrides))  # type: ignore[arg-type]

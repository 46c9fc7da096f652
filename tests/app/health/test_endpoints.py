from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from app.config import Settings
from app.main import create_app
from tests.conftest import Database


class _RunningApp:
    """create_app() with its lifespan running, and an HTTP client for it."""

    def __init__(self, database_url: str) -> None:
        self.app: FastAPI = create_app(Settings(_env_file=None, env="testing", database_url=database_url))

    async def __aenter__(self) -> httpx.AsyncClient:
        self._lifespan = self.app.router.lifespan_context(self.app)
        await self._lifespan.__aenter__()
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://steward")
        return self._client

    async def __aexit__(self, *exc_info: object) -> None:
        await self._client.aclose()
        await self._lifespan.__aexit__(None, None, None)


@pytest.fixture
async def client(database: Database) -> AsyncIterator[httpx.AsyncClient]:
    async with _RunningApp(database.url) as client:
        yield client


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {}}


async def test_readyz_when_the_store_answers(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok"}}


@pytest.mark.parametrize(
    "url",
    [
        "sqlite+aiosqlite:////nonexistent-steward-dir/steward.db",
        "postgresql://root@127.0.0.1:1/test",  # nothing listens on port 1
    ],
    ids=["sqlite-unopenable", "postgres-refused"],
)
async def test_readyz_503_when_the_store_is_unreachable(url: str) -> None:
    async with _RunningApp(url) as client:
        response = await client.get("/readyz")
        # Liveness is unaffected: restarting the process would not bring the store back.
        assert (await client.get("/healthz")).status_code == 200
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"].startswith("unreachable (")


async def test_readyz_is_not_held_up_by_a_sqlite_writer(sqlite_database: Database) -> None:
    writer_engine = sqlite_database.engine()
    try:
        async with writer_engine.connect() as writer, _RunningApp(sqlite_database.url) as client:
            await writer.begin()  # BEGIN IMMEDIATE: holds the write lock until rollback
            await writer.execute(text("SELECT 1"))
            response = await client.get("/readyz")
            await writer.rollback()
    finally:
        await writer_engine.dispose()
    assert response.status_code == 200

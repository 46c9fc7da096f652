"""Shared fixtures. Every store test runs twice: on SQLite and on PostgreSQL.

PostgreSQL comes from STEWARD_TEST_DATABASE_URL (default postgresql://root@127.0.0.1:5432/test). Each test
session works in a schema of its own, migrated by Alembic and dropped at the end; each test runs inside a
transaction that is rolled back. With CI=true an unreachable PostgreSQL fails the run instead of skipping.
"""

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.db.engine import create_engine
from app.db.migrate import upgrade_connection

# No module reads settings at import time, so setting this here still precedes every get_settings().
os.environ["STEWARD_ENV"] = "testing"

POSTGRES_URL = os.environ.get("STEWARD_TEST_DATABASE_URL", "postgresql://root@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"
BACKENDS = ["sqlite", "postgres"]


@dataclass(frozen=True)
class Database:
    """Where a test store lives, and how to connect to it."""

    backend: str
    url: str
    connect_args: dict[str, Any] = field(default_factory=dict)

    def engine(self, **kwargs: Any) -> AsyncEngine:
        return create_engine(self.url, connect_args=self.connect_args, **kwargs)


@pytest.fixture(scope="session")
async def postgres_server() -> str:
    """The PostgreSQL URL, once it has answered; fails the run in CI, skips loudly elsewhere."""
    probe = create_engine(POSTGRES_URL)
    try:
        async with asyncio.timeout(10), probe.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:  # refused, unknown host, auth failure, timeout: all mean "no PostgreSQL here"
        reason = f"PostgreSQL unreachable at {make_url(POSTGRES_URL).render_as_string()}: {exc!r}"
        if IN_CI:
            pytest.fail(f"{reason}. CI=true requires PostgreSQL; set STEWARD_TEST_DATABASE_URL.")
        pytest.skip(f"!!! {reason}; the PostgreSQL half of the suite did NOT run (mandatory in CI) !!!")
    finally:
        await probe.dispose()
    return POSTGRES_URL


async def _create_schema(server_url: str) -> Database:
    schema = f"steward_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url)
    try:
        async with admin.begin() as connection:
            await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    finally:
        await admin.dispose()
    return Database("postgres", server_url, {"server_settings": {"search_path": schema}})


async def _drop_schema(database: Database) -> None:
    schema = database.connect_args["server_settings"]["search_path"]
    admin = create_engine(database.url)
    try:
        async with admin.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        await admin.dispose()


async def migrate(database: Database) -> None:
    engine = database.engine()
    try:
        async with engine.connect() as connection:
            await connection.run_sync(upgrade_connection)
    finally:
        await engine.dispose()


def _sqlite_database(directory: Path) -> Database:
    return Database("sqlite", f"sqlite+aiosqlite:///{directory / 'steward.db'}")


@pytest.fixture(scope="session")
async def sqlite_database(tmp_path_factory: pytest.TempPathFactory) -> Database:
    database = _sqlite_database(tmp_path_factory.mktemp("sqlite"))
    await migrate(database)
    return database


@pytest.fixture(scope="session")
async def postgres_database(postgres_server: str) -> AsyncIterator[Database]:
    database = await _create_schema(postgres_server)
    try:
        await migrate(database)
        yield database
    finally:
        await _drop_schema(database)


@pytest.fixture(scope="session", params=BACKENDS)
def database(request: pytest.FixtureRequest) -> Database:
    """A migrated store, once per backend for the whole session."""
    resolved: Database = request.getfixturevalue(f"{request.param}_database")
    return resolved


@pytest.fixture(scope="session")
async def engine(database: Database) -> AsyncIterator[AsyncEngine]:
    engine = database.engine()
    yield engine
    await engine.dispose()


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session whose commits become SAVEPOINT releases inside an outer transaction rolled back at the end."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        session = AsyncSession(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
        try:
            yield session
        finally:
            await session.close()
            await transaction.rollback()


@pytest.fixture(params=BACKENDS)
def empty_database_server(request: pytest.FixtureRequest) -> str | None:
    # Resolved in a plain fixture: an async fixture cannot pull in another async fixture on demand.
    server: str | None = request.getfixturevalue("postgres_server") if request.param == "postgres" else None
    return server


@pytest.fixture
async def empty_database(empty_database_server: str | None, tmp_path: Path) -> AsyncIterator[Database]:
    """A store with no tables at all, for migration tests; one per test and backend."""
    if empty_database_server is None:
        yield _sqlite_database(tmp_path)
        return
    database = await _create_schema(empty_database_server)
    try:
        yield database
    finally:
        await _drop_schema(database)

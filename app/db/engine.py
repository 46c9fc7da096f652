"""Async engine and session factories for SQLite (default) and PostgreSQL (production)."""

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from app.db.url import is_sqlite, to_async_url

# Execution option for connections that only read. On SQLite they open a deferred transaction so that a
# probe or report never queues behind writers; everything else takes the write lock up front.
READ_ONLY_OPTION = "steward_read_only"
DEFAULT_SQLITE_BUSY_TIMEOUT_MS = 5_000


def create_engine(
    url: str,
    *,
    sqlite_busy_timeout_ms: int = DEFAULT_SQLITE_BUSY_TIMEOUT_MS,
    connect_args: dict[str, Any] | None = None,
    echo: bool = False,
) -> AsyncEngine:
    url = to_async_url(url)
    if not is_sqlite(url):
        return create_async_engine(url, connect_args=connect_args or {}, pool_pre_ping=True, echo=echo)
    engine = create_async_engine(url, connect_args=connect_args or {}, echo=echo)
    _configure_sqlite(engine, sqlite_busy_timeout_ms)
    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # Objects stay readable after commit: endpoints serialise them after the request transaction ends.
    return async_sessionmaker(engine, expire_on_commit=False)


def _configure_sqlite(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite would otherwise issue its own deferred BEGIN lazily (and COMMIT before DDL);
        # autocommit at the driver level lets _on_begin below choose the transaction mode.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # These pragmas are per connection (journal_mode persists, the others do not).
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # A deferred transaction that later writes fails with SQLITE_BUSY at once, without honouring
        # busy_timeout, when another writer got there first. Taking the write lock at BEGIN makes writers
        # queue instead.
        read_only = connection.get_execution_options().get(READ_ONLY_OPTION, False)
        connection.exec_driver_sql("BEGIN DEFERRED" if read_only else "BEGIN IMMEDIATE")

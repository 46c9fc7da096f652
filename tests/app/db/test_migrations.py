import asyncio

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text
from sqlalchemy.exc import IntegrityError, OperationalError

import app.models  # noqa: F401  (registers the tables on Base.metadata)
from app.db.base import Base
from app.db.engine import READ_ONLY_OPTION
from app.db.migrate import alembic_config, downgrade_connection, upgrade_connection
from tests.conftest import Database

TABLES = {"customer", "sync_cursor", "audit_record"}
TABLES |= {"deletion_plan", "plan_item", "approval", "item_hold", "disposal_record", "deletion_request"}
TABLES |= {"outbox_message", "audit_checkpoint", "task", "scheduler_lease", "job_run", "apscheduler_jobs"}
TABLES |= {"webhook_delivery", "inbound_event", "graph_subscription", "graph_notification"}
TABLES |= {"datamap_item", "datamap_link", "customer_event"}
TABLES |= {"disclosure_demand", "disclosure_scope_item", "disclosure_objection", "disclosure_decision"}
TABLES |= {"disclosure_approval", "disclosure_export", "reference_consent"}


def _state(connection: Connection) -> tuple[set[str], str | None, list[object]]:
    tables = set(inspect(connection).get_table_names()) - {"alembic_version"}
    revision = MigrationContext.configure(connection).get_current_revision()
    drift = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    return tables, revision, drift


async def test_upgrade_downgrade_upgrade(empty_database: Database) -> None:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    engine = empty_database.engine()
    try:
        async with engine.connect() as connection:
            await connection.run_sync(upgrade_connection)
            tables, revision, drift = await connection.run_sync(_state)
            assert tables == TABLES
            assert revision == head
            assert drift == [], "the models and the migrations disagree"

            await connection.run_sync(downgrade_connection)
            tables, revision, _ = await connection.run_sync(_state)
            assert tables == set()
            assert revision is None

            await connection.run_sync(upgrade_connection)
            tables, revision, _ = await connection.run_sync(_state)
            assert tables == TABLES
            assert revision == head
    finally:
        await engine.dispose()


class TestSQLiteConnections:
    async def test_pragmas_are_set_on_every_connection(self, sqlite_database: Database) -> None:
        engine = sqlite_database.engine(sqlite_busy_timeout_ms=1234)
        try:
            for _ in range(2):
                async with engine.connect() as connection:
                    assert (await connection.execute(text("PRAGMA foreign_keys"))).scalar() == 1
                    assert (await connection.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
                    assert (await connection.execute(text("PRAGMA busy_timeout"))).scalar() == 1234
                # A new physical connection, not the pooled one, must be configured the same way.
                await engine.dispose()
        finally:
            await engine.dispose()

    async def test_foreign_keys_are_enforced(self, sqlite_database: Database) -> None:
        engine = sqlite_database.engine()
        try:
            async with engine.connect() as connection:
                await connection.execute(text("CREATE TEMP TABLE parent (id INTEGER PRIMARY KEY)"))
                await connection.execute(text("CREATE TEMP TABLE child (parent_id INTEGER REFERENCES parent(id))"))
                with pytest.raises(IntegrityError, match="FOREIGN KEY"):
                    await connection.execute(text("INSERT INTO child VALUES (42)"))
        finally:
            await engine.dispose()

    async def test_transactions_take_the_write_lock_at_begin(self, sqlite_database: Database) -> None:
        holder_engine = sqlite_database.engine()
        impatient_engine = sqlite_database.engine(sqlite_busy_timeout_ms=50)
        try:
            async with holder_engine.connect() as holder, impatient_engine.connect() as impatient:
                # The holder has only read; with a deferred BEGIN it would hold no write lock yet.
                await holder.begin()
                await holder.execute(text("SELECT count(*) FROM customer"))
                with pytest.raises(OperationalError, match="database is locked"):
                    await impatient.execute(text("SELECT count(*) FROM customer"))
                await impatient.rollback()

                # Read-only connections open deferred transactions and are not held up by the writer.
                reader = await impatient.execution_options(**{READ_ONLY_OPTION: True})
                assert (await reader.execute(text("SELECT count(*) FROM customer"))).scalar() == 0
                await reader.rollback()
                await holder.rollback()
        finally:
            await holder_engine.dispose()
            await impatient_engine.dispose()

    async def test_concurrent_writers_are_serialised(self, sqlite_database: Database) -> None:
        first_engine, second_engine = sqlite_database.engine(), sqlite_database.engine()
        insert = text(
            "INSERT INTO sync_cursor (resource_kind, resource_key, is_resync, updated_at) "
            "VALUES ('drive', :key, 0, '2026-01-01 00:00:00')"
        )
        try:
            async with first_engine.connect() as first, second_engine.connect() as second:
                await first.begin()
                await first.execute(insert, {"key": "serialised-first"})

                async def second_writer() -> None:
                    async with second.begin():
                        # Runs only once the first writer has committed, so it sees that row.
                        seen = await second.execute(
                            text("SELECT count(*) FROM sync_cursor WHERE resource_key = 'serialised-first'")
                        )
                        assert seen.scalar() == 1
                        await second.execute(insert, {"key": "serialised-second"})

                waiting = asyncio.create_task(second_writer())
                await asyncio.sleep(0.05)
                assert not waiting.done(), "the second writer should wait for the first to commit"
                await first.commit()
                await waiting
            async with first_engine.begin() as cleanup:
                await cleanup.execute(text("DELETE FROM sync_cursor WHERE resource_key LIKE 'serialised-%'"))
        finally:
            await first_engine.dispose()
            await second_engine.dispose()

"""One scheduler leader at a time: the lease (SQLite), the advisory lock (PostgreSQL), and two real
`steward scheduler` processes on one store, the leader killed with SIGKILL and the follower taking over."""

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from app.db.engine import create_sessionmaker
from jobs.leader import PostgresAdvisoryLock, SqliteLease
from jobs.scheduler import job_triggers, misfire_grace_s, sync_url
from tests.app.plans.support import Store, migrated_store
from tests.conftest import Database

STEWARD = str(Path(sys.executable).with_name("steward"))
WAIT_S = 60


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[tuple[Store, Path]]:
    database = tmp_path / "scheduler.db"
    store, engine = await migrated_store(f"sqlite+aiosqlite:///{database}")
    try:
        yield store, database
    finally:
        await engine.dispose()


async def test_sqlite_lease_has_one_holder_and_passes_on_when_it_expires(sqlite_store: tuple[Store, Path]) -> None:
    store, _ = sqlite_store
    first = SqliteLease(store.sessionmaker, lease_s=0.3, holder="first")
    second = SqliteLease(store.sessionmaker, lease_s=0.3, holder="second")

    assert await first.acquire()
    assert not await second.acquire()
    assert await first.renew()
    await asyncio.sleep(0.4)  # the first leader stops renewing (it died)
    assert await second.acquire()

    assert not await first.renew()
    assert (first.epoch, second.epoch) == (1, 2)


async def test_postgres_advisory_lock_has_one_holder(postgres_database: Database) -> None:
    engines = [postgres_database.engine(), postgres_database.engine()]
    try:
        makers = [create_sessionmaker(engine) for engine in engines]
        first = PostgresAdvisoryLock(engines[0], makers[0], holder="first")
        second = PostgresAdvisoryLock(engines[1], makers[1], holder="second")
        assert await first.acquire()
        assert not await second.acquire()
        assert await first.renew()
        await first.release()  # or its session dies: the lock goes with it
        assert await second.acquire()
        assert second.epoch == first.epoch + 1
        await second.release()
    finally:
        for engine in engines:
            await engine.dispose()


def test_job_definitions_are_explicit() -> None:
    from app.config import Settings

    settings = Settings(_env_file=None, env="testing", scheduler_tick_s=10)
    assert set(job_triggers(settings)) == {
        "evaluate_inactivity",
        "build_plans",
        "relay_outbox",
        "execute_plans",
        "expire_approvals",
        "audit_checkpoint",
    }
    assert misfire_grace_s(settings) == 60
    assert sync_url("sqlite+aiosqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
    assert sync_url("postgresql+asyncpg://u:p@h/db") == "postgresql+psycopg://u:p@h/db"


def job_runs(database: Path) -> list[tuple[str, str, int, datetime, datetime | None]]:
    with sqlite3.connect(database, timeout=10) as connection:
        rows = connection.execute(
            "SELECT job_id, holder, epoch, started_at, finished_at FROM job_run ORDER BY id"
        ).fetchall()
    return [
        (job, holder, epoch, datetime.fromisoformat(started), datetime.fromisoformat(finished) if finished else None)
        for job, holder, epoch, started, finished in rows
    ]


async def wait_for(condition: object, what: str) -> None:
    for _ in range(WAIT_S * 20):
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
async def test_two_scheduler_processes_never_run_the_same_job_twice(sqlite_store: tuple[Store, Path]) -> None:
    store, database = sqlite_store
    env = {name: value for name, value in os.environ.items() if not name.startswith("STEWARD_")}
    env.update(
        {
            "STEWARD_ENV": "testing",
            "STEWARD_DATABASE_URL": store.url,
            "STEWARD_SCHEDULER_TICK_S": "0.5",
            "STEWARD_SCHEDULER_LEASE_S": "1.5",
            "STEWARD_LOG_LEVEL": "WARNING",
        }
    )
    processes: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        process = subprocess.Popen([STEWARD, "scheduler"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        processes.append(process)
        return process

    try:
        first = start()
        await wait_for(
            lambda: len({run[1] for run in job_runs(database)}) == 1 and len(job_runs(database)) >= 4, "a leader"
        )
        leader = job_runs(database)[0][1]
        second = start()
        runs_before = len(job_runs(database))
        await wait_for(lambda: len(job_runs(database)) >= runs_before + 8, "more runs with two processes up")
        assert {run[1] for run in job_runs(database)} == {leader}, "the follower ran jobs while the leader lived"

        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        with sqlite3.connect(database) as connection:
            (killed_at_rows,) = connection.execute("SELECT count(*) FROM job_run").fetchone()
        await wait_for(lambda: len({run[1] for run in job_runs(database)}) == 2, "the follower to take over")
        await wait_for(lambda: len(job_runs(database)) >= killed_at_rows + 8, "runs by the new leader")
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()

    runs = job_runs(database)
    holders = [run[1] for run in runs]
    new_leader = next(holder for holder in holders if holder != leader)
    # Leadership changed once: every run of the first leader precedes every run of the second.
    assert holders == [leader] * holders.count(leader) + [new_leader] * holders.count(new_leader)
    assert sorted({(run[1], run[2]) for run in runs}, key=lambda pair: pair[1]) == [(leader, 1), (new_leader, 2)]
    for job in {run[0] for run in runs}:
        mine = sorted((run for run in runs if run[0] == job), key=lambda run: run[3])
        for earlier, later in zip(mine, mine[1:], strict=False):
            # Never two runs of the same job at once (an unfinished run belongs to the killed leader).
            assert earlier[4] is None or earlier[4] <= later[3], (job, earlier, later)
            if earlier[4] is None:
                assert earlier[1] == leader
                assert later[1] == new_leader
    assert {run[0] for run in runs if run[1] == new_leader} >= {"relay_outbox", "execute_plans"}

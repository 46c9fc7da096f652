"""`steward scheduler`: APScheduler 3.x in its own process, started only by the elected leader.

Jobs live in a persistent SQLAlchemy job store (the `apscheduler_jobs` table, created by the migrations), with
coalesce, max_instances=1 and an explicit misfire grace time, checked after the jobs are added (a misspelt
job_defaults key is otherwise silently ignored, apscheduler#146). Every run re-confirms leadership first and is
recorded in `job_run` with the leader's epoch, so a deposed leader cannot start work and every run is
attributable.
"""

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from app.audit.service import audit
from app.config import Settings
from app.db.base import utc_now
from app.models import JobRun
from jobs.leader import Leadership, leadership
from jobs.runtime import Runtime
from jobs.work import JOBS

log = logging.getLogger(__name__)

JOB_FUNCTION = "jobs.scheduler:run_job"
SYNC_DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}


@dataclass
class SchedulerState:
    runtime: Runtime
    leader: Leadership


_state: SchedulerState | None = None
# Job runs in flight: awaited (or cancelled and awaited) before the store they use is closed.
_running: set[asyncio.Task[None]] = set()
DRAIN_S = 30.0


def sync_url(database_url: str) -> str:
    """APScheduler's job store is synchronous: the same database through a synchronous driver."""
    url = make_url(database_url)
    return url.set(drivername=SYNC_DRIVERS[url.get_backend_name()]).render_as_string(hide_password=False)


def job_triggers(settings: Settings) -> dict[str, BaseTrigger]:
    tick = IntervalTrigger(seconds=settings.scheduler_tick_s, timezone=UTC)
    return {
        "evaluate_inactivity": CronTrigger(hour=2, minute=0, timezone=UTC),
        "build_plans": tick,
        "relay_outbox": tick,
        "execute_plans": tick,
        "expire_approvals": tick,
        "audit_checkpoint": IntervalTrigger(hours=1, timezone=UTC),
    }


def misfire_grace_s(settings: Settings) -> int:
    # A run that could not start within a few ticks is dropped: coalesce runs the job once when it can.
    return max(60, int(settings.scheduler_tick_s * 4))


async def run_job(job_id: str) -> None:
    """The one function APScheduler calls (a textual reference, so the persistent job store can hold it)."""
    task = asyncio.current_task()
    if task is not None:
        _running.add(task)
    try:
        state = _state
        if state is None or job_id not in JOBS:
            return
        if not await _leadership(state.leader.renew, "renew"):
            log.warning("not the scheduler leader any more: %s not run", job_id)
            return
        await _run_recorded(state, job_id)
    finally:
        if task is not None:
            _running.discard(task)


async def _run_recorded(state: SchedulerState, job_id: str) -> None:
    runtime = state.runtime
    async with runtime.sessionmaker() as session, session.begin():
        run = JobRun(job_id=job_id, holder=state.leader.holder, epoch=state.leader.epoch, started_at=utc_now())
        session.add(run)
        await session.flush()
        run_id = run.id
    outcome, error = "ok", None
    try:
        await JOBS[job_id](runtime)
    except Exception as exc:  # a failing job must not kill the scheduler; it is recorded and runs again next time
        log.exception("job %s failed", job_id)
        outcome, error = "error", f"{type(exc).__name__}: {exc}"[:2000]
    async with runtime.sessionmaker() as session, session.begin():
        finished = await session.get(JobRun, run_id)
        assert finished is not None
        finished.finished_at, finished.outcome, finished.error = utc_now(), outcome, error


def _start_scheduler(settings: Settings) -> AsyncIOScheduler:
    grace = misfire_grace_s(settings)
    scheduler = AsyncIOScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=sync_url(settings.database_url))},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": grace},
        timezone=UTC,
    )
    scheduler.start()
    for job_id, trigger in job_triggers(settings).items():
        scheduler.add_job(JOB_FUNCTION, trigger=trigger, args=[job_id], id=job_id, name=job_id, replace_existing=True)
    for job in scheduler.get_jobs():
        if not (job.coalesce and job.max_instances == 1 and job.misfire_grace_time == grace):
            scheduler.shutdown(wait=False)
            raise RuntimeError(f"job defaults did not take effect on {job.id}")
    return scheduler


async def _leadership(call: Callable[[], Awaitable[bool]], what: str) -> bool:
    """A store that is briefly unavailable (locked, restarting) means "not leading": the safe answer."""
    try:
        return await call()
    except SQLAlchemyError as exc:
        log.warning("scheduler lease %s failed: %s", what, type(exc).__name__)
        return False


async def _drain(*, everything: bool = False) -> None:
    """Let running jobs finish (they are idempotent, but a store closed under them would hang them), then
    cancel what is left and wait for the cancellations, so the database closes with nothing still using it.
    `everything`: every other task of the process too (e.g. connection clean-ups spawned by a cancellation)."""
    current = asyncio.current_task()
    tasks = {task for task in (asyncio.all_tasks() if everything else _running) if task is not current}
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=DRAIN_S)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def run(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    """Follow, lead when the leader is gone, and schedule only while leading."""
    global _state
    stop = stop or asyncio.Event()
    runtime = await Runtime.open(settings)
    leader = leadership(runtime.engine, runtime.sessionmaker, lease_s=settings.scheduler_lease_s)
    renew_every = max(0.2, settings.scheduler_lease_s / 3)
    try:
        while not stop.is_set():
            if not await _leadership(leader.acquire, "acquire"):
                await _sleep(stop, renew_every)
                continue
            try:
                async with runtime.sessionmaker() as session, session.begin():
                    await audit.append(
                        session,
                        actor=f"service:{leader.holder}",
                        action="scheduler.leader",
                        subject="scheduler",
                        payload={"epoch": leader.epoch},
                    )
            except SQLAlchemyError as exc:  # the change of leader still shows in job_run (holder, epoch)
                log.warning("could not audit the new scheduler leader: %s", type(exc).__name__)
            log.info("leading the scheduler (epoch %s)", leader.epoch)
            _state = SchedulerState(runtime, leader)
            scheduler = _start_scheduler(settings)
            try:
                while not stop.is_set():
                    await _sleep(stop, renew_every)
                    if not await _leadership(leader.renew, "renew"):
                        log.warning("lost the scheduler lease; stopping the scheduler")
                        break
            finally:
                scheduler.shutdown(wait=False)
                await _drain()
                _state = None
    finally:
        await _drain(everything=True)
        await leader.release()
        await runtime.aclose()


def main(settings: Settings) -> None:
    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await run(settings, stop=stop)

    asyncio.run(_main())

"""Fanned-out work as idempotent tasks keyed by their unit, with their state in the store.

A task is (kind, unit, payload): "plans.execute" for "plan:<id>:chunk:<n>", "plans.build" for
"request:<id>", and so on. Its handler is an async function of (context, payload) that may run any number of
times: it reads what is already done from the store and does only the rest. Nothing here is specific to the
embedded runner: a distributed queue can call the same handlers with the same payloads, keyed by the same
units (one running task per key), and the task code does not change.

The embedded runner claims ready tasks with a conditional UPDATE (on PostgreSQL the candidates are read with
SKIP LOCKED), holds a lease while running, and a task whose worker died becomes claimable when the lease
runs out.
"""

import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.base import utc_now
from app.models import Task, TaskState
from connectors.graph.errors import Parked
from connectors.graph.park import parking_unit

log = logging.getLogger(__name__)

Handler = Callable[[Any, dict[str, Any]], Awaitable[None]]
DEFAULT_LEASE_S = 600.0
DEFAULT_MAX_ATTEMPTS = 6


@dataclass(frozen=True, slots=True)
class TaskSpec:
    kind: str
    unit: str
    payload: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.unit}"


class TaskRegistry:
    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def register(self, kind: str) -> Callable[[Handler], Handler]:
        def decorate(handler: Handler) -> Handler:
            if kind in self._handlers:
                raise ValueError(f"task kind {kind!r} registered twice")
            self._handlers[kind] = handler
            return handler

        return decorate

    def handler(self, kind: str) -> Handler | None:
        return self._handlers.get(kind)

    @property
    def kinds(self) -> list[str]:
        return sorted(self._handlers)


async def enqueue(session: AsyncSession, spec: TaskSpec, *, rearm: bool = False) -> bool:
    """Add the task to the caller's transaction. An existing task with the same key is left alone unless it
    finished and `rearm` asks to run it again. Returns whether the task is (now) waiting to run."""
    task = await session.get(Task, spec.key)
    if task is None:
        session.add(
            Task(
                key=spec.key,
                kind=spec.kind,
                unit=spec.unit,
                payload=spec.payload,
                state=TaskState.ready,
                attempts=0,
                not_before=utc_now(),
            )
        )
        await session.flush()
        return True
    if rearm and task.state in (TaskState.done, TaskState.failed):
        task.state = TaskState.ready
        task.attempts = 0
        task.payload = spec.payload
        task.not_before = utc_now()
        task.last_error = None
        await session.flush()
        return True
    return task.state in (TaskState.ready, TaskState.running)


@dataclass
class RunReport:
    done: list[str] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def retry_delay(attempts: int) -> timedelta:
    return timedelta(seconds=min(3600.0, 5.0 * 2 ** max(0, attempts - 1)))


class TaskRunner:
    """Runs ready tasks in this process, one at a time (Graph's budgets, not this loop, bound throughput)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        registry: TaskRegistry,
        *,
        owner: str | None = None,
        lease_s: float = DEFAULT_LEASE_S,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._registry = registry
        self.owner = owner or f"runner-{uuid.uuid4().hex[:12]}"
        self._lease = timedelta(seconds=lease_s)
        self._max_attempts = max_attempts
        self._clock = clock

    async def claim(self, *, kinds: Sequence[str] | None = None, limit: int = 10) -> list[Task]:
        now = self._clock()
        claimable = or_(
            and_(Task.state == TaskState.ready, Task.not_before <= now),
            and_(Task.state == TaskState.running, Task.lease_until <= now),
        )
        wanted = list(kinds) if kinds is not None else self._registry.kinds
        claimed: list[Task] = []
        async with self._sessionmaker() as session, session.begin():
            query = select(Task.key).where(claimable, Task.kind.in_(wanted)).order_by(Task.created_at).limit(limit)
            if session.bind.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            for key in (await session.execute(query)).scalars().all():
                result = await session.execute(
                    update(Task)
                    .where(Task.key == key, claimable)
                    .values(
                        state=TaskState.running,
                        lease_owner=self.owner,
                        lease_until=now + self._lease,
                        attempts=Task.attempts + 1,
                    )
                )
                if result.rowcount == 1:  # type: ignore[attr-defined]
                    task = await session.get(Task, key, populate_existing=True)
                    assert task is not None
                    claimed.append(task)
        return claimed

    async def run_ready(self, context: Any, *, kinds: Sequence[str] | None = None, limit: int = 10) -> RunReport:
        report = RunReport()
        for task in await self.claim(kinds=kinds, limit=limit):
            await self.run_claimed(context, task, report)
        return report

    async def run_claimed(self, context: Any, task: Task, report: RunReport) -> None:
        handler = self._registry.handler(task.kind)
        error: str | None = None
        not_before: datetime | None = None
        try:
            if handler is None:
                raise LookupError(f"no handler for task kind {task.kind!r}")
            with parking_unit(task.key):
                await handler(context, dict(task.payload))
        except Parked as parked:
            error, not_before = f"parked: {parked}", parked.not_before
        except Exception as exc:  # a task failure must not stop the runner; it is recorded and retried
            log.exception("task %s failed", task.key)
            error = f"{type(exc).__name__}: {exc}"[:2000]
        await self._settle(task, report, error=error, not_before=not_before)

    async def _settle(self, task: Task, report: RunReport, *, error: str | None, not_before: datetime | None) -> None:
        async with self._sessionmaker() as session, session.begin():
            current = await session.get(Task, task.key, populate_existing=True)
            if current is None or current.lease_owner != self.owner or current.state != TaskState.running:
                return  # the lease ran out and another runner owns the task now
            current.lease_owner = None
            current.lease_until = None
            if error is None:
                current.state = TaskState.done
                current.last_error = None
                report.done.append(task.key)
            elif not_before is None and current.attempts >= self._max_attempts:
                current.state = TaskState.failed
                current.last_error = error
                report.failed.append(task.key)
            else:
                current.state = TaskState.ready
                current.last_error = error
                current.not_before = not_before or self._clock() + retry_delay(current.attempts)
                report.retried.append(task.key)

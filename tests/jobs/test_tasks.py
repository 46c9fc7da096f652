"""Idempotent tasks keyed by unit: enqueue once, claim exclusively, retry with backoff, reclaim after a lease."""

from datetime import timedelta
from typing import Any

import pytest

from app.models import Task
from jobs.tasks import TaskRegistry, TaskRunner, TaskSpec, enqueue, retry_delay
from tests.app.plans.conftest import Clock
from tests.app.plans.support import Store


def registry_with(calls: list[dict[str, Any]], *, fail_times: int = 0) -> TaskRegistry:
    registry = TaskRegistry()
    failures = {"left": fail_times}

    @registry.register("demo.work")
    async def work(context: Any, payload: dict[str, Any]) -> None:
        calls.append(payload)
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("Graph is having a bad day")

    return registry


async def task(store: Store, key: str) -> Task:
    async with store.sessionmaker() as session:
        found = await session.get(Task, key)
        assert found is not None
        return found


async def test_enqueueing_the_same_unit_twice_is_one_task(store: Store) -> None:
    spec = TaskSpec("demo.work", "mailbox:u1", {"n": 1})
    async with store.sessionmaker() as session, session.begin():
        assert await enqueue(session, spec)
        assert await enqueue(session, TaskSpec("demo.work", "mailbox:u1", {"n": 2}))
    calls: list[dict[str, Any]] = []

    report = await TaskRunner(store.sessionmaker, registry_with(calls)).run_ready(None)

    assert report.done == ["demo.work:mailbox:u1"]
    assert calls == [{"n": 1}]
    async with store.sessionmaker() as session, session.begin():
        assert not await enqueue(session, spec)  # done: only an explicit re-arm runs it again
        assert await enqueue(session, spec, rearm=True)


async def test_a_claimed_task_is_not_claimed_again_until_its_lease_runs_out(store: Store, clock: Clock) -> None:
    async with store.sessionmaker() as session, session.begin():
        await enqueue(session, TaskSpec("demo.work", "drive:d1"))
    calls: list[dict[str, Any]] = []
    registry = registry_with(calls)
    clock.now += timedelta(seconds=1)
    first = TaskRunner(store.sessionmaker, registry, owner="one", lease_s=60, clock=clock)
    second = TaskRunner(store.sessionmaker, registry, owner="two", lease_s=60, clock=clock)

    claimed = await first.claim()  # ...and then the first worker dies without finishing
    assert [t.key for t in claimed] == ["demo.work:drive:d1"]
    assert await second.claim() == []
    clock.now += timedelta(seconds=61)
    report = await second.run_ready(None)

    assert report.done == ["demo.work:drive:d1"]
    assert len(calls) == 1
    stored = await task(store, "demo.work:drive:d1")
    assert (stored.state, stored.attempts, stored.lease_owner) == ("done", 2, None)


async def test_failures_are_retried_with_backoff_then_given_up(store: Store, clock: Clock) -> None:
    async with store.sessionmaker() as session, session.begin():
        await enqueue(session, TaskSpec("demo.work", "plan:p:chunk:1"))
    calls: list[dict[str, Any]] = []
    clock.now += timedelta(seconds=1)
    runner = TaskRunner(store.sessionmaker, registry_with(calls, fail_times=10), max_attempts=3, clock=clock)

    first = await runner.run_ready(None)
    not_yet = await runner.run_ready(None)
    clock.now += retry_delay(1)
    second = await runner.run_ready(None)
    clock.now += retry_delay(2)
    third = await runner.run_ready(None)

    assert (first.retried, not_yet.retried, second.retried, third.failed) == (
        ["demo.work:plan:p:chunk:1"],
        [],
        ["demo.work:plan:p:chunk:1"],
        ["demo.work:plan:p:chunk:1"],
    )
    stored = await task(store, "demo.work:plan:p:chunk:1")
    assert (stored.state, stored.attempts) == ("failed", 3)
    assert "bad day" in (stored.last_error or "")


def test_a_kind_is_registered_once() -> None:
    registry = TaskRegistry()
    registry.register("x")(registry_with([]).handler("demo.work"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="twice"):
        registry.register("x")(registry_with([]).handler("demo.work"))  # type: ignore[arg-type]

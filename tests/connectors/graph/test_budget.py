import asyncio
import random
from datetime import timedelta

import pytest

from connectors.graph.budget import Claim, Scope, SlidingWindow, ThrottleBudget
from connectors.graph.errors import Parked
from tests.connectors.graph.conftest import FakeClock


def test_sliding_window_never_allows_more_than_the_limit_in_any_window() -> None:
    rng = random.Random(5)
    window = SlidingWindow(limit=50, window_s=60, buckets=12)
    now = 0.0
    sent: list[float] = []
    for _ in range(2_000):
        now += rng.uniform(0, 0.5)
        units = rng.randint(1, 3)
        wait = window.wait_for(now, units)
        now += wait
        assert window.wait_for(now, units) == 0
        window.record(now, units)
        sent.extend([now] * units)
    # Check every sliding 60 s window that ends at a send: never more than 50 units.
    start = 0
    for end in range(len(sent)):
        while sent[end] - sent[start] >= 60:
            start += 1
        assert end - start + 1 <= 50


def test_a_window_says_how_long_until_units_fit() -> None:
    window = SlidingWindow(limit=4, window_s=10, buckets=10)
    window.record(0.5, 4)
    assert window.wait_for(0.5, 1) == pytest.approx(11 - 0.5)  # the first slot leaves after 11 s
    assert window.wait_for(11.0, 4) == 0
    with pytest.raises(ValueError, match="never fit"):
        window.wait_for(0, 5)


async def test_L4_one_mailbox_never_has_more_than_four_requests_in_flight(clock: FakeClock) -> None:
    budget = ThrottleBudget(clock=clock)
    scope = Scope.mailbox("Adele@contoso.test")
    in_flight = peak = 0

    async def request() -> None:
        nonlocal in_flight, peak
        async with budget.reserve([Claim(scope)]):
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0)
            in_flight -= 1

    await asyncio.gather(*(request() for _ in range(20)))
    assert peak == 4
    assert budget.stats(scope).requests == 20
    assert budget.stats(scope).peak_in_flight == 4


async def test_the_request_window_makes_workers_wait_instead_of_sending(clock: FakeClock) -> None:
    budget = ThrottleBudget(clock=clock, mailbox_requests_per_window=3, mailbox_window_s=60)
    scope = Scope.mailbox("u1")
    for _ in range(3):
        async with budget.reserve([Claim(scope)]):
            pass
    assert clock.sleeps == []
    async with budget.reserve([Claim(scope)]):
        pass
    assert sum(clock.sleeps) >= 60


async def test_a_throttled_mailbox_pauses_only_itself(clock: FakeClock) -> None:
    budget = ThrottleBudget(clock=clock)
    throttled, other = Scope.mailbox("u1"), Scope.mailbox("u2")
    budget.throttled(throttled, 30)
    async with budget.reserve([Claim(other)]):
        assert clock.sleeps == []
    async with budget.reserve([Claim(throttled)]):
        assert sum(clock.sleeps) == pytest.approx(30)
    assert budget.stats(throttled).paused_s == pytest.approx(30)
    assert budget.stats(other).paused_s == 0


async def test_a_pause_past_the_park_threshold_raises_parked_without_sleeping(clock: FakeClock) -> None:
    budget = ThrottleBudget(clock=clock)
    scope = Scope.sharepoint()
    budget.throttled(scope, 315)
    with pytest.raises(Parked) as parked:
        async with budget.reserve([Claim(scope, units=2, slots=0)]):
            pass
    assert clock.sleeps == []
    assert parked.value.not_before == clock.now() + timedelta(seconds=315)
    assert parked.value.unit == "sharepoint"


async def test_sharepoint_resource_units_are_charged_by_cost(clock: FakeClock) -> None:
    budget = ThrottleBudget(clock=clock, sharepoint_ru_limits=[(10, 60)])
    scope = Scope.sharepoint()
    for units in (2, 2, 2, 2, 1, 1):
        async with budget.reserve([Claim(scope, units=units, slots=0)]):
            pass
    assert clock.sleeps == []
    async with budget.reserve([Claim(scope, units=2, slots=0)]):
        pass
    assert sum(clock.sleeps) > 0
    assert budget.stats(scope).units == 12


async def test_L4_a_batch_takes_several_slots_of_a_mailbox_at_once(clock: FakeClock) -> None:
    budget = ThrottleBudget(clock=clock)
    scope = Scope.mailbox("u1")
    release = asyncio.Event()
    entered: list[str] = []

    async def single(name: str) -> None:
        async with budget.reserve([Claim(scope)]):
            entered.append(name)
            await release.wait()

    async with budget.reserve([Claim(scope, units=3, slots=3)]):
        workers = [asyncio.ensure_future(single(name)) for name in ("a", "b")]
        for _ in range(5):
            await asyncio.sleep(0)
        assert len(entered) == 1  # 3 slots held by the batch + 1 single request = the mailbox's 4
        release.set()
    await asyncio.gather(*workers)
    assert sorted(entered) == ["a", "b"]
    assert budget.stats(scope).units == 5

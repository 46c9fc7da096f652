"""The process-wide throttle budget: how much Steward may ask of one mailbox, of SharePoint, of the tenant.

One `ThrottleBudget` is shared by every worker of the process (all on one event loop). It keeps Graph's
documented limits on our side of the wire, so the tenant is never hammered:

- Outlook, per mailbox: at most 4 concurrent requests and 10,000 requests per 10 minutes
  (graph-facts.md section 6). A $batch counts each sub-request against its mailbox.
- SharePoint/OneDrive, per tenant: resource units per window (1 RU for a delta with a token or a download,
  2 RU for a delta without a token, a list or a write), from constructor arguments because the real budget
  depends on the tenant's licence count.
- Per scope "throttled until": once Graph throttles a mailbox or the tenant's SharePoint, every worker on that
  scope waits, not just the request that got the 429 (retry storms prolong throttling).

Waits longer than the park threshold are not slept through: `reserve` raises `Parked` so the step can be
rescheduled (see transport.py, which records it in the ParkStore).
"""

import asyncio
import contextlib
import math
from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from connectors.graph.clock import SYSTEM_CLOCK, Clock
from connectors.graph.errors import Parked

ScopeKind = Literal["mailbox", "sharepoint", "tenant"]

OUTLOOK_CONCURRENCY = 4
OUTLOOK_REQUESTS_PER_WINDOW = 10_000
OUTLOOK_WINDOW_S = 600.0
# Per app per tenant for the smallest licence band (0-1k): 1,250 RU/min and 1,200,000 RU/24h.
SHAREPOINT_RU_LIMITS: tuple[tuple[int, float], ...] = ((1_250, 60.0), (1_200_000, 86_400.0))
# "Assign Sensitivity Label": 100 per 5 minutes per tenant, whatever the licence count.
ASSIGN_LABEL_LIMIT: tuple[int, float] = (100, 300.0)
# Kiota gives up at 180 s; SharePoint has been seen asking for 315 s. Past this, park instead of sleeping.
PARK_THRESHOLD_S = 180.0


@dataclass(frozen=True, slots=True)
class Scope:
    """Who a request counts against: one mailbox, the tenant's SharePoint, or a tenant-wide workload."""

    kind: ScopeKind
    key: str = ""

    @classmethod
    def mailbox(cls, user_id: str) -> "Scope":
        return cls("mailbox", user_id.lower())

    @classmethod
    def sharepoint(cls) -> "Scope":
        return cls("sharepoint")

    @classmethod
    def tenant(cls, workload: str) -> "Scope":
        return cls("tenant", workload)

    def __str__(self) -> str:
        return f"{self.kind}:{self.key}" if self.key else self.kind


@dataclass(frozen=True, slots=True)
class Claim:
    """What one request (or one $batch) takes from a scope: concurrency slots and budget units."""

    scope: Scope
    units: int = 1  # requests for a mailbox, resource units for SharePoint
    slots: int = 1  # concurrent requests (mailboxes only)


class SlidingWindow:
    """At most `limit` units in any `window_s` seconds, in constant memory.

    Units are counted in `buckets` slots. A slot is counted until the whole of it has left the window, so the
    count can only over-estimate the true sliding-window usage: we never send more than Graph allows.
    """

    def __init__(self, limit: int, window_s: float, buckets: int = 60) -> None:
        if limit <= 0 or window_s <= 0 or buckets <= 0:
            raise ValueError("limit, window and buckets must be positive")
        self.limit = limit
        self.window_s = window_s
        self._buckets = buckets
        self._width = window_s / buckets
        self._slots: deque[list[int]] = deque()  # [slot index, units], oldest first

    def _expire(self, now: float) -> int:
        current = math.floor(now / self._width)
        while self._slots and self._slots[0][0] < current - self._buckets:
            self._slots.popleft()
        return current

    def used(self, now: float) -> int:
        self._expire(now)
        return sum(units for _, units in self._slots)

    def wait_for(self, now: float, units: int) -> float:
        """Seconds until `units` more fit in the window (0 if they fit now)."""
        if units > self.limit:
            raise ValueError(f"{units} units can never fit a budget of {self.limit}")
        self._expire(now)
        excess = sum(count for _, count in self._slots) + units - self.limit
        if excess <= 0:
            return 0.0
        for index, count in self._slots:
            excess -= count
            if excess <= 0:
                # Slot `index` stops counting once the current slot index passes index + buckets.
                return max((index + self._buckets + 1) * self._width - now, 0.0)
        return self.window_s  # unreachable: the slots hold every counted unit

    def record(self, now: float, units: int) -> None:
        current = self._expire(now)
        if self._slots and self._slots[-1][0] == current:
            self._slots[-1][1] += units
        else:
            self._slots.append([current, units])


class Slots:
    """A counting semaphore that can take several slots at once (a $batch holding 3 of a mailbox's 4)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.in_use = 0
        self._changed: asyncio.Condition | None = None

    def _condition(self) -> asyncio.Condition:
        # Created on first use so it binds to the loop that uses it, not the one (if any) that built the budget.
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    async def acquire(self, count: int) -> None:
        if count > self.capacity:
            raise ValueError(f"{count} slots requested, capacity is {self.capacity}")
        condition = self._condition()
        async with condition:
            await condition.wait_for(lambda: self.in_use + count <= self.capacity)
            self.in_use += count

    async def release(self, count: int) -> None:
        condition = self._condition()
        async with condition:
            self.in_use -= count
            condition.notify_all()


@dataclass
class ScopeStats:
    """What happened on one scope, for tests, logs and the benchmark."""

    requests: int = 0
    units: int = 0
    throttled: int = 0
    paused_s: float = 0.0
    peak_in_flight: int = 0


@dataclass
class _ScopeState:
    windows: list[SlidingWindow]
    slots: Slots | None
    paused_until: float = 0.0
    stats: ScopeStats = field(default_factory=ScopeStats)


class ThrottleBudget:
    def __init__(
        self,
        *,
        mailbox_concurrency: int = OUTLOOK_CONCURRENCY,
        mailbox_requests_per_window: int = OUTLOOK_REQUESTS_PER_WINDOW,
        mailbox_window_s: float = OUTLOOK_WINDOW_S,
        sharepoint_ru_limits: Iterable[tuple[int, float]] = SHAREPOINT_RU_LIMITS,
        tenant_limits: dict[str, Sequence[tuple[int, float]]] | None = None,
        park_threshold_s: float = PARK_THRESHOLD_S,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.mailbox_concurrency = mailbox_concurrency
        self._mailbox_limit = (mailbox_requests_per_window, mailbox_window_s)
        self._sharepoint_limits = tuple(sharepoint_ru_limits)
        self._tenant_limits = {"assignSensitivityLabel": (ASSIGN_LABEL_LIMIT,), **(tenant_limits or {})}
        self.park_threshold_s = park_threshold_s
        self.clock = clock
        self._scopes: dict[Scope, _ScopeState] = {}

    def _state(self, scope: Scope) -> _ScopeState:
        state = self._scopes.get(scope)
        if state is None:
            if scope.kind == "mailbox":
                state = _ScopeState([SlidingWindow(*self._mailbox_limit)], Slots(self.mailbox_concurrency))
            elif scope.kind == "sharepoint":
                state = _ScopeState([SlidingWindow(*limit) for limit in self._sharepoint_limits], None)
            else:
                limits = self._tenant_limits.get(scope.key, ())
                state = _ScopeState([SlidingWindow(*limit) for limit in limits], None)
            self._scopes[scope] = state
        return state

    def stats(self, scope: Scope) -> ScopeStats:
        return self._state(scope).stats

    def paused_for(self, scope: Scope) -> float:
        """Seconds this scope still has to wait because Graph throttled it (0 when not paused)."""
        return max(self._state(scope).paused_until - self.clock.monotonic(), 0.0)

    def throttled(self, scope: Scope, wait_s: float) -> None:
        """Graph throttled `scope`: every request on it waits `wait_s` seconds from now."""
        state = self._state(scope)
        state.stats.throttled += 1
        state.paused_until = max(state.paused_until, self.clock.monotonic() + wait_s)

    @contextlib.asynccontextmanager
    async def reserve(self, claims: Sequence[Claim]) -> AsyncIterator[None]:
        """Wait until every claim fits (pauses over, slots free, windows open), then hold the slots."""
        merged = _merge(claims)
        while True:
            pause = max((self.paused_for(claim.scope) for claim in merged), default=0.0)
            if pause >= self.park_threshold_s:
                not_before = self.clock.now() + timedelta(seconds=pause)
                scope = max(merged, key=lambda claim: self.paused_for(claim.scope)).scope
                raise Parked(f"{scope} is throttled for another {pause:.0f}s", not_before=not_before, unit=str(scope))
            if pause > 0:
                await self._wait(merged, pause)
                continue
            taken = await self._take_slots(merged)
            now = self.clock.monotonic()
            pause = max((self.paused_for(claim.scope) for claim in merged), default=0.0)
            wait = max([pause, *(self._window_wait(claim, now) for claim in merged)])
            if wait > 0:
                # Never sleep on slots: another worker may be able to use them for a different scope.
                await self._release(taken)
                await self._wait(merged, wait)
                continue
            for claim in merged:
                state = self._state(claim.scope)
                for window in state.windows:
                    window.record(now, claim.units)
                state.stats.requests += 1
                state.stats.units += claim.units
            break
        try:
            yield
        finally:
            await self._release(taken)

    def _window_wait(self, claim: Claim, now: float) -> float:
        return max((window.wait_for(now, claim.units) for window in self._state(claim.scope).windows), default=0.0)

    async def _wait(self, claims: Sequence[Claim], seconds: float) -> None:
        for claim in claims:
            self._state(claim.scope).stats.paused_s += seconds
        await self.clock.sleep(seconds)

    async def _take_slots(self, claims: Sequence[Claim]) -> list[tuple[Slots, int, ScopeStats]]:
        taken: list[tuple[Slots, int, ScopeStats]] = []
        try:
            # A fixed order (claims are sorted) means two batches can never each hold what the other waits for.
            for claim in claims:
                state = self._state(claim.scope)
                if state.slots is None or claim.slots <= 0:
                    continue
                await state.slots.acquire(claim.slots)
                taken.append((state.slots, claim.slots, state.stats))
                state.stats.peak_in_flight = max(state.stats.peak_in_flight, state.slots.in_use)
        except BaseException:
            await self._release(taken)
            raise
        return taken

    @staticmethod
    async def _release(taken: list[tuple[Slots, int, ScopeStats]]) -> None:
        for slots, count, _ in reversed(taken):
            await slots.release(count)
        taken.clear()


def _merge(claims: Sequence[Claim]) -> list[Claim]:
    """One claim per scope, in a stable order."""
    merged: dict[Scope, Claim] = {}
    for claim in claims:
        previous = merged.get(claim.scope)
        if previous is None:
            merged[claim.scope] = claim
        else:
            merged[claim.scope] = Claim(claim.scope, previous.units + claim.units, previous.slots + claim.slots)
    return sorted(merged.values(), key=lambda claim: (claim.scope.kind, claim.scope.key))

"""Parking: where a unit of work records "do not retry before" when Graph asks for a long wait.

When Graph answers Retry-After >= 180 s (SharePoint has been seen asking for 315 s), sleeping would hold a
worker for minutes and a restart would forget the wait. Instead the transport records `not_before` for the
current unit in a `ParkStore` and raises `Parked`; the scheduler skips the unit until then. The app implements
the store on its database; `InMemoryParkStore` serves tests and the embedded mode.

The unit is whatever the caller is working on (a job step, a mailbox sync). Set it around the work with
`parking_unit("plan-42/step-7")`; without it the throttled scope ("mailbox:<id>", "sharepoint") is the unit.
"""

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

_current_unit: ContextVar[str | None] = ContextVar("steward_graph_parking_unit", default=None)


@dataclass(frozen=True, slots=True)
class ParkRecord:
    unit: str
    not_before: datetime
    reason: str


class ParkStore(Protocol):
    async def park(self, unit: str, not_before: datetime, *, reason: str) -> None:
        """Persist that `unit` must not run before `not_before` (keep the later time if already parked)."""
        ...

    async def not_before(self, unit: str) -> datetime | None: ...


class InMemoryParkStore:
    def __init__(self) -> None:
        self.records: dict[str, ParkRecord] = {}

    async def park(self, unit: str, not_before: datetime, *, reason: str) -> None:
        previous = self.records.get(unit)
        if previous is None or previous.not_before < not_before:
            self.records[unit] = ParkRecord(unit, not_before, reason)

    async def not_before(self, unit: str) -> datetime | None:
        record = self.records.get(unit)
        return record.not_before if record else None


@contextlib.contextmanager
def parking_unit(unit: str) -> Iterator[None]:
    """Name the unit of work that Graph calls inside this block belong to (asyncio-task local)."""
    token = _current_unit.set(unit)
    try:
        yield
    finally:
        _current_unit.reset(token)


def current_unit() -> str | None:
    return _current_unit.get()

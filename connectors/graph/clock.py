"""Time as the Graph layer sees it, injectable so throttling tests run in milliseconds."""

import asyncio
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards: the basis of budgets and pauses."""
        ...

    def now(self) -> datetime:
        """Timezone-aware UTC wall time: for HTTP-date Retry-After values and persisted "not before" times."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0))


SYSTEM_CLOCK = SystemClock()

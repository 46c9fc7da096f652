"""What the tenant saw: the emulator's request log between two marks is the ground truth of what was sent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from bench.tenant import TenantInfo

GRAPH_PREFIX = "/v1.0/"


@dataclass(frozen=True)
class Record:
    seq: int
    at: float  # epoch seconds when the emulator finished the request
    method: str
    path: str
    query: str
    status: int
    mailbox: str | None
    batch_id: str | None
    duration_ms: float

    @classmethod
    def of(cls, raw: dict[str, Any]) -> Record:
        return cls(
            seq=raw["seq"],
            at=raw["at"],
            method=raw["method"],
            path=raw["path"],
            query=raw["query"],
            status=raw["status"],
            mailbox=raw["mailbox"],
            batch_id=raw["batchId"],
            duration_ms=raw["durationMs"],
        )


class RequestLog:
    def __init__(self, info: TenantInfo) -> None:
        self._control = httpx.AsyncClient(
            base_url=info.endpoints["control_url"], verify=info.endpoints["ca_bundle"], timeout=300
        )

    async def clear(self) -> None:
        (await self._control.delete("/requests")).raise_for_status()

    async def graph_requests(self) -> list[Record]:
        """Every Graph request logged since the last clear, oldest first."""
        records: list[Record] = []
        response = await self._control.get("/requests", params={"path_prefix": GRAPH_PREFIX, "top": "1000"})
        while True:
            response.raise_for_status()
            body = response.json()
            records.extend(Record.of(raw) for raw in body["value"])
            if not body.get("nextLink"):
                return records
            # The nextLink carries its own query: passing params, even empty ones, would replace it.
            response = await self._control.get(body["nextLink"])

    async def set_files_settings(self, settings: dict[str, Any]) -> None:
        (await self._control.patch("/files/settings", json=settings)).raise_for_status()

    async def aclose(self) -> None:
        await self._control.aclose()

"""Scenario "notify": the Graph change-notification receiver under 1,000 notifications per minute.

Steward runs as it is deployed (`steward serve`: uvicorn, one process, a SQLite store migrated by
`steward db upgrade`) with one registered subscription. Two measurements:

- at the offered load (1,000 notifications/min, one notification per POST, sent on a fixed schedule whether or
  not earlier POSTs were answered): the acknowledgement latency of each POST (each 202 is given only after the
  notification is committed), p50 and p99;
- at saturation (`workers` clients posting back to back): the highest rate it acknowledges, and its p99.

Every notification is genuine (right clientState and tenant), so every one is stored: the store is the cost.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.engine import create_engine
from app.webhooks.service import new_client_state, register_subscription

PATH = "/v1/notifications/graph"
TENANT_ID = "0f9e8d7c-6b5a-4c3d-9e2f-1a0b9c8d7e6f"
START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class NotifyResult:
    offered_per_min: int
    sent: int
    acked: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    saturation_rps: float
    saturation_p99_ms: float
    stored: int


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _steward() -> list[str]:
    script = Path(sys.executable).with_name("steward")
    return [str(script)] if script.exists() else [sys.executable, "-c", "from app.cli import main; main()"]


@contextlib.contextmanager
def running_service(directory: Path) -> Iterator[tuple[str, str]]:
    """`steward serve` on a fresh SQLite store; yields (base URL, database URL)."""
    database_url = f"sqlite+aiosqlite:///{directory / 'steward.db'}"
    env = {**os.environ, "STEWARD_ENV": "development", "STEWARD_DATABASE_URL": database_url}
    # cwd: a developer's .env in the repository must not leak into the measurement.
    subprocess.run(  # noqa: S603 - our own console script
        [*_steward(), "db", "upgrade"], cwd=directory, env=env, check=True, capture_output=True
    )
    port = _free_port()
    process = subprocess.Popen(  # noqa: S603 - our own console script
        [*_steward(), "serve", "--port", str(port)],
        cwd=directory,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"steward serve exited with code {process.returncode}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("steward serve did not answer /healthz in time")
            time.sleep(0.2)
        yield base, database_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _subscribe(database_url: str) -> tuple[str, str]:
    subscription_id, client_state = str(uuid.uuid4()), new_client_state()
    engine = create_engine(database_url)
    try:
        async with AsyncSession(engine) as session:
            await register_subscription(
                session,
                subscription_id=subscription_id,
                resource="users/bench/messages",
                change_types=["created", "updated"],
                tenant_id=TENANT_ID,
                client_state=client_state,
                expires_at=datetime.now(UTC) + timedelta(days=2),
            )
            await session.commit()
    finally:
        await engine.dispose()
    return subscription_id, client_state


async def _stored(database_url: str) -> int:
    from sqlalchemy import func, select

    from app.models import GraphNotification

    engine = create_engine(database_url)
    try:
        async with AsyncSession(engine) as session:
            return int((await session.execute(select(func.count()).select_from(GraphNotification))).scalar_one())
    finally:
        await engine.dispose()


def _body(subscription_id: str, client_state: str) -> dict[str, Any]:
    message_id = f"AAMk{uuid.uuid4().hex}"
    return {
        "value": [
            {
                "subscriptionId": subscription_id,
                "subscriptionExpirationDateTime": "2030-01-01T00:00:00.0000000Z",
                "changeType": "created",
                "resource": f"Users/bench/Messages/{message_id}",
                "clientState": client_state,
                "tenantId": TENANT_ID,
                "resourceData": {"@odata.type": "#Microsoft.Graph.Message", "id": message_id},
            }
        ]
    }


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


async def _post(client: httpx.AsyncClient, body: dict[str, Any], latencies: list[float]) -> bool:
    started = time.perf_counter()
    response = await client.post(PATH, json=body)
    latencies.append((time.perf_counter() - started) * 1000)
    return response.status_code == 202


async def _offered_load(
    client: httpx.AsyncClient, ids: tuple[str, str], per_min: int, duration_s: float
) -> tuple[int, int, list[float]]:
    interval = 60.0 / per_min
    latencies: list[float] = []
    tasks: list[asyncio.Task[bool]] = []
    started = time.perf_counter()
    sent = 0
    while (due := started + sent * interval) < started + duration_s:
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        tasks.append(asyncio.create_task(_post(client, _body(*ids), latencies)))
        sent += 1
    acked = sum(await asyncio.gather(*tasks))
    return sent, acked, latencies


async def _saturation(
    client: httpx.AsyncClient, ids: tuple[str, str], workers: int, duration_s: float
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    acked = 0
    deadline = time.perf_counter() + duration_s

    async def worker() -> None:
        nonlocal acked
        while time.perf_counter() < deadline:
            ok = await _post(client, _body(*ids), latencies)  # not `acked += await ...`: that reads acked first
            acked += ok

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return acked / (time.perf_counter() - started), latencies


async def _measure(base: str, database_url: str, per_min: int, duration_s: float, saturation_s: float) -> NotifyResult:
    ids = await _subscribe(database_url)
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
        for _ in range(20):  # warm-up: first-request imports and connection set-up are not the steady state
            await _post(client, _body(*ids), [])
        sent, acked, latencies = await _offered_load(client, ids, per_min, duration_s)
        rps, saturated = await _saturation(client, ids, workers=16, duration_s=saturation_s)
    return NotifyResult(
        offered_per_min=per_min,
        sent=sent,
        acked=acked,
        p50_ms=_percentile(latencies, 0.50),
        p99_ms=_percentile(latencies, 0.99),
        max_ms=max(latencies, default=0.0),
        saturation_rps=rps,
        saturation_p99_ms=_percentile(saturated, 0.99),
        stored=await _stored(database_url),
    )


def run(*, per_min: int = 1_000, duration_s: float = 60.0, saturation_s: float = 10.0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="steward-bench-notify-") as directory:
        with running_service(Path(directory)) as (base, database_url):
            result = asyncio.run(_measure(base, database_url, per_min, duration_s, saturation_s))
    return {
        "p99_ms": round(result.p99_ms, 1),
        "rps": round(result.saturation_rps, 1),
        "p50_ms": round(result.p50_ms, 1),
        "max_ms": round(result.max_ms, 1),
        "offered_per_min": result.offered_per_min,
        "duration_s": duration_s,
        "sent": result.sent,
        "acked": result.acked,
        "saturation_p99_ms": round(result.saturation_p99_ms, 1),
        "stored": result.stored,
        "store": "sqlite",
    }

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.webhooks.signatures import secret_key, sign
from tests.app.apps import RunningApp, app_settings
from tests.conftest import Database

SECRET = "whsec_" + base64.b64encode(b"steward-admin-webhook-secret-1").decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"steward-admin-webhook-secret-0").decode()


def signed(
    payload: dict[str, Any] | bytes,
    *,
    delivery_id: str | None = None,
    timestamp: int | None = None,
    secrets: Sequence[str] = (SECRET,),
) -> tuple[bytes, dict[str, str]]:
    """A delivery as a Standard Webhooks sender makes it: the raw body and its three headers."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    delivery_id = delivery_id or f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = " ".join(sign(secret_key(secret), delivery_id, timestamp, body) for secret in secrets)
    return body, {
        "webhook-id": delivery_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


class Store:
    """Reads what the app committed (short sessions: on SQLite an open one would hold the write lock)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def all(self, statement: Select[Any]) -> list[Any]:
        async with AsyncSession(self.engine) as session:
            return list((await session.execute(statement)).scalars().all())

    async def count(self, model: Any, *where: Any) -> int:
        return len(await self.all(select(model).where(*where)))


@pytest.fixture
def store(engine: AsyncEngine) -> Store:
    return Store(engine)


@pytest.fixture
async def client(database: Database) -> AsyncIterator[httpx.AsyncClient]:
    settings = app_settings(webhook_secrets=f"{SECRET},{OLD_SECRET}", tenant_id=str(uuid.uuid4()))
    async with RunningApp(settings, database) as client:
        yield client

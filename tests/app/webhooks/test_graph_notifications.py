"""POST /v1/notifications/graph[/lifecycle]: the validation handshake, clientState checks, durable storage."""

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.models import GraphNotification, GraphSubscription, NotificationKind, NotificationState
from app.webhooks.repository import GraphNotificationRepository
from app.webhooks.service import client_state_digest, forget_subscription, new_client_state, register_subscription
from tests.app.apps import RunningApp, app_settings
from tests.app.webhooks.conftest import Store

CHANGES = "/v1/notifications/graph"
LIFECYCLE = "/v1/notifications/graph/lifecycle"
TENANT = "6f1d3c8e-2b7a-4e55-9a0c-1d2e3f405162"
BROKEN_STORES = [
    "sqlite+aiosqlite:////nonexistent-steward-dir/steward.db",
    "postgresql://root@127.0.0.1:1/test",  # nothing listens on port 1
]


async def subscribe(engine: AsyncEngine, *, tenant_id: str = TENANT) -> tuple[str, str]:
    """A subscription Steward created: (its id, its clientState)."""
    subscription_id, client_state = str(uuid.uuid4()), new_client_state()
    async with AsyncSession(engine) as session:
        await register_subscription(
            session,
            subscription_id=subscription_id,
            resource="users/u-1/messages",
            change_types=["updated", "created"],
            tenant_id=tenant_id,
            client_state=client_state,
            expires_at=datetime.now(UTC) + timedelta(days=2),
        )
        await session.commit()
    return subscription_id, client_state


def change(subscription_id: str, client_state: str | None, *, tenant_id: str = TENANT, **extra: Any) -> dict[str, Any]:
    message_id = f"AAMk{uuid.uuid4().hex}"
    return {
        "id": uuid.uuid4().hex,
        "subscriptionId": subscription_id,
        "subscriptionExpirationDateTime": "2026-11-27T10:00:00.0000000Z",
        "changeType": "updated",
        "resource": f"Users/u-1/Messages/{message_id}",
        "clientState": client_state,
        "tenantId": tenant_id,
        "resourceData": {"@odata.type": "#Microsoft.Graph.Message", "id": message_id},
        **extra,
    }


async def stored_for(engine: AsyncEngine, subscription_id: str) -> list[GraphNotification]:
    async with AsyncSession(engine) as session:
        return list(await GraphNotificationRepository(session).list_for_subscription(subscription_id))


class TestValidationHandshake:
    @pytest.mark.parametrize("path", [CHANGES, LIFECYCLE])
    async def test_the_decoded_token_is_echoed_as_plain_text(self, client: httpx.AsyncClient, path: str) -> None:
        token = "Validation: <script>alert('x')</script> & 100% ünïcode"
        response = await client.post(f"{path}?validationToken={quote(token)}", headers={"content-type": "text/plain"})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.content == token.encode()

    async def test_an_empty_token_is_400(self, client: httpx.AsyncClient) -> None:
        response = await client.post(f"{CHANGES}?validationToken=")
        assert response.status_code == 400
        assert response.json() == {"error": "BadRequest", "detail": "validationToken is empty"}

    @pytest.mark.parametrize("url", BROKEN_STORES, ids=["sqlite-unopenable", "postgres-refused"])
    async def test_the_handshake_never_touches_the_store(self, url: str) -> None:
        async with RunningApp(app_settings(database_url=url)) as client:
            response = await client.post(f"{CHANGES}?validationToken=abc")
        assert response.status_code == 200
        assert response.text == "abc"


class TestChangeNotifications:
    async def test_a_genuine_notification_is_stored_pending(
        self, client: httpx.AsyncClient, engine: AsyncEngine
    ) -> None:
        subscription_id, client_state = await subscribe(engine)
        notification = change(subscription_id, client_state)
        response = await client.post(CHANGES, json={"value": [notification]})
        assert response.status_code == 202
        assert response.content == b""
        [stored] = await stored_for(engine, subscription_id)
        assert stored.kind == NotificationKind.change
        assert stored.state == NotificationState.pending
        assert stored.change_type == "updated"
        assert stored.resource == notification["resource"]
        assert stored.resource_id == notification["resourceData"]["id"]
        assert stored.tenant_id == TENANT
        assert client_state not in repr(vars(stored))

    async def test_a_forged_notification_changes_nothing(
        self, client: httpx.AsyncClient, engine: AsyncEngine, store: Store, caplog: pytest.LogCaptureFixture
    ) -> None:
        subscription_id, client_state = await subscribe(engine)
        forged_state = "guessed-" + client_state[8:]
        before = await store.count(GraphNotification)
        with caplog.at_level(logging.WARNING, logger="app.webhooks.service"):
            response = await client.post(CHANGES, json={"value": [change(subscription_id, forged_state)]})
            missing = await client.post(CHANGES, json={"value": [change(subscription_id, None)]})
        # 202 all the same: a forger learns nothing from the answer.
        assert response.status_code == missing.status_code == 202
        assert await store.count(GraphNotification) == before
        [subscription] = await store.all(select(GraphSubscription).where(GraphSubscription.id == subscription_id))
        assert subscription.client_state_sha256 == client_state_digest(client_state)
        rejections = [r for r in caplog.records if r.getMessage() == "webhooks.graph_notification_rejected"]
        assert [r.__dict__["reason"] for r in rejections] == ["client_state_mismatch", "client_state_mismatch"]
        assert all(forged_state not in str(r.__dict__) and client_state not in str(r.__dict__) for r in rejections)

    async def test_a_mixed_batch_keeps_only_the_genuine_ones(
        self, client: httpx.AsyncClient, engine: AsyncEngine, store: Store
    ) -> None:
        subscription_id, client_state = await subscribe(engine)
        other_id, other_state = await subscribe(engine, tenant_id=str(uuid.uuid4()))
        batch = [
            change(subscription_id, client_state),
            change(subscription_id, "wrong"),
            change(str(uuid.uuid4()), client_state),  # unknown subscription
            change(other_id, other_state),  # the right secret, but claims our tenant for another tenant's subscription
            change(subscription_id, client_state, changeType="deleted"),
            {"clientState": client_state},  # no subscriptionId
        ]
        response = await client.post(CHANGES, json={"value": batch})
        assert response.status_code == 202
        assert [n.change_type for n in await stored_for(engine, subscription_id)] == ["updated", "deleted"]
        assert await stored_for(engine, other_id) == []

    async def test_a_forgotten_subscription_is_no_longer_accepted(
        self, client: httpx.AsyncClient, engine: AsyncEngine
    ) -> None:
        subscription_id, client_state = await subscribe(engine)
        async with AsyncSession(engine) as session:
            await forget_subscription(session, subscription_id=subscription_id)
            await session.commit()
        assert (await client.post(CHANGES, json={"value": [change(subscription_id, client_state)]})).status_code == 202
        assert await stored_for(engine, subscription_id) == []

    @pytest.mark.parametrize(
        "body",
        [b"{not json", b'{"value": "nope"}', b"[]", b'{"value": [' + b"{}," * 1000 + b"{}]}"],
        ids=["not-json", "value-not-a-list", "not-an-object", "over-1000-items"],
    )
    async def test_a_malformed_envelope_is_400(self, client: httpx.AsyncClient, body: bytes) -> None:
        response = await client.post(CHANGES, content=body, headers={"content-type": "application/json"})
        assert response.status_code == 400
        assert response.json()["error"] == "BadRequest"

    @pytest.mark.parametrize("url", BROKEN_STORES, ids=["sqlite-unopenable", "postgres-refused"])
    async def test_an_unreachable_store_is_503_so_graph_retries(self, url: str) -> None:
        async with RunningApp(app_settings(database_url=url)) as client:
            response = await client.post(CHANGES, json={"value": [change(str(uuid.uuid4()), "x")]})
        assert response.status_code == 503
        assert response.json()["error"] == "StoreUnavailable"
        assert response.headers["retry-after"] == "10"


class TestLifecycleNotifications:
    async def test_lifecycle_events_are_stored_as_work_items(
        self, client: httpx.AsyncClient, engine: AsyncEngine
    ) -> None:
        subscription_id, client_state = await subscribe(engine)
        events = ["reauthorizationRequired", "missed", "subscriptionRemoved", "somethingNew"]
        batch = [
            {
                "subscriptionId": subscription_id,
                "subscriptionExpirationDateTime": "2026-11-27T10:00:00.0000000Z",
                "tenantId": TENANT,
                "clientState": client_state,
                "lifecycleEvent": event,
            }
            for event in events
        ]
        response = await client.post(LIFECYCLE, json={"value": batch})
        assert response.status_code == 202
        stored = await stored_for(engine, subscription_id)
        assert [(n.kind, n.lifecycle_event, n.state) for n in stored] == [
            (NotificationKind.lifecycle, event, NotificationState.pending) for event in events[:3]
        ]

    async def test_a_forged_lifecycle_event_changes_nothing(
        self, client: httpx.AsyncClient, engine: AsyncEngine
    ) -> None:
        subscription_id, _ = await subscribe(engine)
        forged = {"subscriptionId": subscription_id, "tenantId": TENANT, "clientState": "x", "lifecycleEvent": "missed"}
        assert (await client.post(LIFECYCLE, json={"value": [forged]})).status_code == 202
        assert await stored_for(engine, subscription_id) == []

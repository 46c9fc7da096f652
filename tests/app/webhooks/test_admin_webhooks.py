"""POST /v1/webhooks/admin: signed, fresh, deduplicated, strictly parsed, stored with its hooks' effects."""

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import InboundEvent, InboundEventState, WebhookDelivery
from app.webhooks import service
from app.webhooks.schemas import AdminEvent
from tests.app.apps import RunningApp, app_settings
from tests.app.webhooks.conftest import OLD_SECRET, SECRET, Store, signed
from tests.conftest import Database

URL = "/v1/webhooks/admin"


def deletion_requested(customer_id: str | None = None, **data: Any) -> dict[str, Any]:
    return {
        "type": "customer.deletion_requested",
        "timestamp": "2026-11-25T08:00:00Z",
        "data": {
            "customer_id": f"cust-{uuid.uuid4().hex[:8]}" if customer_id is None else customer_id,
            "requested_at": "2026-11-24T17:30:00+07:00",
            "reference": "TICKET-4711",
            **data,
        },
    }


async def test_a_signed_event_is_stored_as_pending(client: httpx.AsyncClient, store: Store) -> None:
    body, headers = signed(deletion_requested("cust-0001"))
    response = await client.post(URL, content=body, headers=headers)
    assert response.status_code == 202, response.text
    receipt = response.json()
    assert receipt["status"] == "accepted"
    assert receipt["delivery_id"] == headers["webhook-id"]

    [event] = await store.all(select(InboundEvent).where(InboundEvent.delivery_id == headers["webhook-id"]))
    assert event.id == receipt["event_id"]
    assert event.type == "customer.deletion_requested"
    assert event.customer_id == "cust-0001"
    assert event.state == InboundEventState.pending
    assert event.payload == {
        "customer_id": "cust-0001",
        "requested_at": "2026-11-24T17:30:00+07:00",
        "reference": "TICKET-4711",
    }
    assert await store.count(WebhookDelivery, WebhookDelivery.id == headers["webhook-id"]) == 1


@pytest.mark.parametrize(
    "event",
    [
        {
            "type": "customer.activity",
            "timestamp": "2026-11-25T08:00:00Z",
            "data": {"customer_id": "c-1", "activity": "purchase", "occurred_at": "2026-11-25T07:59:00Z"},
        },
        {
            "type": "customer.status_changed",
            "timestamp": "2026-11-25T08:00:00Z",
            "data": {"customer_id": "c-1", "status": "ended", "effective_at": "2026-11-30T00:00:00Z"},
        },
    ],
    ids=["activity", "status-changed"],
)
async def test_every_event_type_is_accepted(client: httpx.AsyncClient, event: dict[str, Any]) -> None:
    body, headers = signed(event)
    response = await client.post(URL, content=body, headers=headers)
    assert response.status_code == 202, response.text


async def test_a_redelivery_has_no_second_effect(client: httpx.AsyncClient, store: Store) -> None:
    body, headers = signed(deletion_requested())
    first = await client.post(URL, content=body, headers=headers)
    # A retry carries the same id, with a fresh timestamp and signature.
    body, retry_headers = signed(body, delivery_id=headers["webhook-id"], timestamp=int(time.time()) + 5)
    second = await client.post(URL, content=body, headers=retry_headers)
    assert first.status_code == 202
    assert second.status_code == 200
    assert second.json() == {"delivery_id": headers["webhook-id"], "status": "duplicate", "event_id": None}
    assert await store.count(InboundEvent, InboundEvent.delivery_id == headers["webhook-id"]) == 1


async def test_concurrent_deliveries_of_one_id_take_effect_once(client: httpx.AsyncClient, store: Store) -> None:
    body, headers = signed(deletion_requested())
    responses = await asyncio.gather(*(client.post(URL, content=body, headers=headers) for _ in range(3)))
    assert sorted(response.status_code for response in responses) == [200, 200, 202]
    assert await store.count(InboundEvent, InboundEvent.delivery_id == headers["webhook-id"]) == 1


async def test_either_secret_verifies_during_a_rotation(client: httpx.AsyncClient) -> None:
    for secrets in ([OLD_SECRET], [SECRET], [SECRET, OLD_SECRET]):
        body, headers = signed(deletion_requested(), secrets=secrets)
        assert (await client.post(URL, content=body, headers=headers)).status_code == 202


class TestRefused:
    @pytest.mark.parametrize(
        ("tamper", "reason"),
        [
            (lambda h: h.pop("webhook-signature"), "headers are required"),
            (lambda h: h.update({"webhook-signature": "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="}), "no valid"),
            (lambda h: h.update({"webhook-timestamp": str(int(time.time()) - 301)}), "more than 300 seconds"),
            (lambda h: h.update({"webhook-timestamp": str(int(time.time()) + 301)}), "more than 300 seconds"),
        ],
        ids=["unsigned", "wrong-signature", "stale", "from-the-future"],
    )
    async def test_unauthentic_deliveries_are_401_and_change_nothing(
        self, client: httpx.AsyncClient, store: Store, tamper: Any, reason: str
    ) -> None:
        body, headers = signed(deletion_requested())
        tamper(headers)
        response = await client.post(URL, content=body, headers=headers)
        assert response.status_code == 401
        assert response.json()["error"] == "WebhookSignatureInvalid"
        assert reason in response.json()["detail"]
        assert await store.count(WebhookDelivery, WebhookDelivery.id == headers["webhook-id"]) == 0

    async def test_a_secret_we_do_not_hold_is_401(self, client: httpx.AsyncClient) -> None:
        stranger = "whsec_" + "c3RyYW5nZXItc2VjcmV0LW9mLTI0LWJ5dGVz"
        body, headers = signed(deletion_requested(), secrets=[stranger])
        assert (await client.post(URL, content=body, headers=headers)).status_code == 401

    async def test_without_configured_secrets_nothing_is_accepted(self, database: Database) -> None:
        async with RunningApp(app_settings(), database) as client:
            body, headers = signed(deletion_requested())
            response = await client.post(URL, content=body, headers=headers)
        assert response.status_code == 401
        assert "not configured" in response.json()["detail"]

    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({**deletion_requested(), "status": "approved"}, "body.status"),
            (deletion_requested(approved=True), "body.data.approved"),
            ({**deletion_requested(), "type": "customer.deleted"}, "body"),
            (
                deletion_requested(requested_at="2026-11-24T17:30:00"),
                "body.data.requested_at",
            ),
            (deletion_requested(customer_id=""), "body.data.customer_id"),
        ],
        ids=["unknown-top-level-field", "unknown-data-field", "unknown-type", "naive-datetime", "empty-customer"],
    )
    async def test_a_signed_but_invalid_payload_is_422_naming_the_field(
        self, client: httpx.AsyncClient, store: Store, payload: dict[str, Any], field: str
    ) -> None:
        body, headers = signed(payload)
        response = await client.post(URL, content=body, headers=headers)
        assert response.status_code == 422, response.text
        assert response.json()["error"] == "RequestValidationError"
        assert field in {reason["field"] for reason in response.json()["detail"]}
        assert await store.count(WebhookDelivery, WebhookDelivery.id == headers["webhook-id"]) == 0

    async def test_signed_garbage_is_422(self, client: httpx.AsyncClient) -> None:
        body, headers = signed(b"{not json")
        response = await client.post(URL, content=body, headers=headers)
        assert response.status_code == 422


class TestHooks:
    async def test_hooks_run_in_the_storing_transaction(
        self, client: httpx.AsyncClient, store: Store, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setitem(service._hooks, "customer.deletion_requested", [])
        seen: list[tuple[str, str]] = []

        @service.on_admin_event("customer.deletion_requested")
        async def remember(session: AsyncSession, stored: InboundEvent, event: AdminEvent) -> None:
            seen.append((stored.delivery_id, event.data.customer_id))

        body, headers = signed(deletion_requested("cust-hooked"))
        assert (await client.post(URL, content=body, headers=headers)).status_code == 202
        assert seen == [(headers["webhook-id"], "cust-hooked")]
        [event] = await store.all(select(InboundEvent).where(InboundEvent.delivery_id == headers["webhook-id"]))
        assert event.state == InboundEventState.handled
        assert event.handled_at is not None

    async def test_a_failing_hook_stores_nothing_so_the_retry_counts(
        self, client: httpx.AsyncClient, store: Store, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setitem(service._hooks, "customer.deletion_requested", [])
        failures = [RuntimeError("registry unavailable")]

        @service.on_admin_event("customer.deletion_requested")
        async def flaky(session: AsyncSession, stored: InboundEvent, event: AdminEvent) -> None:
            if failures:
                raise failures.pop()

        body, headers = signed(deletion_requested())
        failed = await client.post(URL, content=body, headers=headers)
        assert failed.status_code == 500
        assert await store.count(WebhookDelivery, WebhookDelivery.id == headers["webhook-id"]) == 0
        retried = await client.post(URL, content=body, headers=headers)
        assert retried.status_code == 202
        assert await store.count(InboundEvent, InboundEvent.delivery_id == headers["webhook-id"]) == 1

    def test_hooking_an_unknown_type_is_refused(self) -> None:
        with pytest.raises(ValueError, match="unknown admin event type"):
            service.on_admin_event("customer.deleted")


def test_the_openapi_document_describes_every_event_strictly() -> None:
    app = RunningApp(app_settings()).app
    body = app.openapi()["paths"][URL]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "$ref" not in str(body)
    variants = {variant["properties"]["type"]["const"]: variant for variant in body["oneOf"]}
    assert set(variants) == {"customer.deletion_requested", "customer.activity", "customer.status_changed"}
    for variant in variants.values():
        assert variant["additionalProperties"] is False
        assert variant["properties"]["data"]["additionalProperties"] is False

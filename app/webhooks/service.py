"""Inbound events: admin webhook deliveries (deduplicated, stored, handed to the domains that hooked them) and
Graph change/lifecycle notifications (checked against the subscription they claim, stored as work items).

Hooking admin events (registry, deletion...): decorate an async function in a module the app imports at start,

    @on_admin_event("customer.deletion_requested")
    async def open_deletion_request(session: AsyncSession, stored: InboundEvent, event: AdminEvent) -> None: ...

Hooks run in the transaction that stores the event, so the event and its effects commit together (and a failing
hook rolls both back: the sender gets a 5xx and retries). A delivery id is only processed once, but the sender
may emit the same business event under two delivery ids: hooks must be idempotent on the event's content (e.g.
one open deletion request per customer). Events of a type nobody hooks stay `pending` for a later job.

Graph notifications are never trusted as data: a notification only says "this resource changed", and the sync
engine answers by running delta. One that names an unknown subscription, another tenant, or a wrong clientState is
dropped (logged as a security event, counted in metrics) and changes nothing; the POST still gets 202 so a
forger learns nothing (reliability matrix B2/B3, Microsoft's "don't consider the notification as valid").
"""

import hashlib
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utc_now
from app.models import (
    GraphNotification,
    GraphSubscription,
    InboundEvent,
    InboundEventState,
    NotificationKind,
    NotificationState,
    WebhookDelivery,
)
from app.observability import metrics
from app.webhooks.repository import (
    GraphNotificationRepository,
    GraphSubscriptionRepository,
    InboundEventRepository,
    WebhookDeliveryRepository,
)
from app.webhooks.schemas import ADMIN_EVENT_TYPES, AdminEvent, GraphNotificationItem

log = logging.getLogger(__name__)

AdminEventHook = Callable[[AsyncSession, InboundEvent, AdminEvent], Awaitable[None]]
LIFECYCLE_EVENTS = frozenset({"reauthorizationRequired", "subscriptionRemoved", "missed"})
CHANGE_TYPES = frozenset({"created", "updated", "deleted"})

_hooks: dict[str, list[AdminEventHook]] = {event_type: [] for event_type in ADMIN_EVENT_TYPES}


def on_admin_event(event_type: str) -> Callable[[AdminEventHook], AdminEventHook]:
    """Register a hook for one admin event type (see the module docstring)."""
    if event_type not in _hooks:
        raise ValueError(f"unknown admin event type {event_type!r}; known: {', '.join(ADMIN_EVENT_TYPES)}")

    def register(hook: AdminEventHook) -> AdminEventHook:
        _hooks[event_type].append(hook)
        return hook

    return register


@dataclass(frozen=True, slots=True)
class AdminDeliveryOutcome:
    duplicate: bool
    event: InboundEvent | None


async def handle_admin_event(session: AsyncSession, *, delivery_id: str, event: AdminEvent) -> InboundEvent:
    """Store an admin event durably and run the hooks registered for its type, in the caller's transaction."""
    data = event.data
    stored = InboundEvent(
        delivery_id=delivery_id,
        type=event.type,
        customer_id=data.customer_id,
        occurred_at=event.timestamp,
        payload=data.model_dump(mode="json"),
        state=InboundEventState.pending,
    )
    await InboundEventRepository(session).create(stored, flush=True)
    hooks = _hooks[event.type]
    for hook in hooks:
        await hook(session, stored, event)
    if hooks:
        stored.state = InboundEventState.handled
        stored.handled_at = utc_now()
        await session.flush()
    log.info(
        "webhooks.admin_event_stored",
        extra={"delivery_id": delivery_id, "type": event.type, "event_id": stored.id, "hooks": len(hooks)},
    )
    return stored


async def receive_admin_delivery(session: AsyncSession, *, delivery_id: str, event: AdminEvent) -> AdminDeliveryOutcome:
    """Process a verified delivery once: a delivery id seen before (or being stored concurrently) is a duplicate."""
    deliveries = WebhookDeliveryRepository(session)
    if await deliveries.get(delivery_id) is not None:
        return _duplicate(delivery_id)
    try:
        # A savepoint: losing the race to a concurrent delivery of the same id must not abort the transaction.
        async with session.begin_nested():
            await deliveries.create(WebhookDelivery(id=delivery_id, type=event.type), flush=True)
    except IntegrityError:
        return _duplicate(delivery_id)
    stored = await handle_admin_event(session, delivery_id=delivery_id, event=event)
    metrics.ADMIN_WEBHOOKS.labels(outcome="accepted").inc()
    return AdminDeliveryOutcome(duplicate=False, event=stored)


def _duplicate(delivery_id: str) -> AdminDeliveryOutcome:
    metrics.ADMIN_WEBHOOKS.labels(outcome="duplicate").inc()
    log.info("webhooks.admin_delivery_duplicate", extra={"delivery_id": delivery_id})
    return AdminDeliveryOutcome(duplicate=True, event=None)


# Graph subscriptions and notifications ------------------------------------------------------------------


def new_client_state() -> str:
    """A fresh clientState for a subscription: 256 random bits, well inside Graph's 128-character limit."""
    return secrets.token_urlsafe(32)


def client_state_digest(client_state: str) -> str:
    return hashlib.sha256(client_state.encode("utf-8")).hexdigest()


async def register_subscription(
    session: AsyncSession,
    *,
    subscription_id: str,
    resource: str,
    change_types: Iterable[str],
    tenant_id: str,
    client_state: str,
    expires_at: datetime,
) -> GraphSubscription:
    """Remember a subscription Steward created (or renewed) so the receiver can check its notifications.

    Call it right after Graph answered the create: notifications that arrive before this commits are dropped as
    unknown, which is harmless because the sync engine runs delta after creating a subscription anyway.
    """
    repository = GraphSubscriptionRepository(session)
    subscription = await repository.get(subscription_id)
    if subscription is None:
        subscription = GraphSubscription(id=subscription_id)
        await repository.create(subscription)
    subscription.resource = resource
    subscription.change_types = ",".join(sorted(change_types))
    subscription.tenant_id = tenant_id.lower()
    subscription.client_state_sha256 = client_state_digest(client_state)
    subscription.expires_at = expires_at
    await session.flush()
    return subscription


async def forget_subscription(session: AsyncSession, *, subscription_id: str) -> None:
    """Stop accepting notifications for a subscription (deleted, or removed by Graph)."""
    repository = GraphSubscriptionRepository(session)
    subscription = await repository.get(subscription_id)
    if subscription is not None:
        await repository.delete(subscription)


@dataclass(frozen=True, slots=True)
class NotificationBatchOutcome:
    stored: int
    rejected: int


def _rejection(
    item: GraphNotificationItem, subscription: GraphSubscription | None, kind: NotificationKind
) -> str | None:
    if subscription is None:
        return "unknown_subscription"
    # Always compare, even when another check already failed, so the answer takes as long either way.
    client_state_ok = hmac.compare_digest(
        client_state_digest(item.client_state or ""), subscription.client_state_sha256
    )
    if (item.tenant_id or "").lower() != subscription.tenant_id:
        return "tenant_mismatch"
    if not client_state_ok:
        return "client_state_mismatch"
    if kind is NotificationKind.lifecycle and item.lifecycle_event not in LIFECYCLE_EVENTS:
        return "unknown_lifecycle_event"
    if kind is NotificationKind.change and item.change_type not in CHANGE_TYPES:
        return "unknown_change_type"
    return None


async def store_graph_notifications(
    session: AsyncSession, raw_items: list[dict[str, object]], *, kind: NotificationKind
) -> NotificationBatchOutcome:
    """Check each notification against its subscription and store the genuine ones as pending work items."""
    items: list[GraphNotificationItem] = []
    rejected = 0
    for raw in raw_items:
        try:
            items.append(GraphNotificationItem.model_validate(raw))
        except ValidationError:
            rejected += 1
            _reject(kind, "malformed", subscription_id=None)
    subscriptions = await GraphSubscriptionRepository(session).get_many({item.subscription_id for item in items})
    accepted: list[GraphNotification] = []
    for item in items:
        subscription = subscriptions.get(item.subscription_id)
        reason = _rejection(item, subscription, kind)
        if reason is not None:
            rejected += 1
            _reject(kind, reason, subscription_id=item.subscription_id)
            continue
        assert subscription is not None
        accepted.append(
            GraphNotification(
                kind=kind,
                subscription_id=subscription.id,
                tenant_id=subscription.tenant_id,
                change_type=item.change_type if kind is NotificationKind.change else None,
                lifecycle_event=item.lifecycle_event if kind is NotificationKind.lifecycle else None,
                resource=item.resource,
                resource_id=item.resource_id,
                state=NotificationState.pending,
            )
        )
    if accepted:
        await GraphNotificationRepository(session).add_all(accepted)
    metrics.GRAPH_NOTIFICATIONS.labels(kind=kind, outcome="stored").inc(len(accepted))
    return NotificationBatchOutcome(stored=len(accepted), rejected=rejected)


def _reject(kind: NotificationKind, reason: str, *, subscription_id: str | None) -> None:
    metrics.GRAPH_NOTIFICATIONS.labels(kind=kind, outcome=reason).inc()
    # A security event: a wrong clientState may be a forger probing the endpoint. The clientState is not logged.
    log.warning(
        "webhooks.graph_notification_rejected",
        extra={"kind": str(kind), "reason": reason, "subscription_id": subscription_id},
    )

"""Inbound webhooks: admin triggers from the reseller's systems, and Microsoft Graph's change notifications.

Neither takes a bearer token: admin deliveries are authenticated by their Standard Webhooks signature, Graph's
notifications by the clientState of the subscription they name.
"""

import logging
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.deps import SessionDep
from app.exceptions import AppError, BadRequest, Unauthorized
from app.models import NotificationKind
from app.observability import metrics
from app.webhooks import service
from app.webhooks.schemas import (
    ADMIN_EVENT,
    ADMIN_EVENT_TYPES,
    AdminEvent,
    AdminWebhookReceipt,
    GraphNotificationCollection,
    admin_event_json_schema,
)
from app.webhooks.signatures import WebhookVerificationError, secret_key, verify

log = logging.getLogger(__name__)
router = APIRouter(tags=["webhooks"])


class WebhookSignatureInvalid(Unauthorized):
    pass


class StoreUnavailable(AppError):
    """The notification could not be stored: Graph must retry it, so this is a 5xx."""

    status_code = 503
    headers = {"Retry-After": "10"}


def _parse_admin_event(body: bytes) -> AdminEvent:
    try:
        return ADMIN_EVENT.validate_json(body)
    except ValidationError as exc:
        metrics.ADMIN_WEBHOOKS.labels(outcome="invalid").inc()
        # The same 422 shape as any request body; "input" is dropped by the handler, never echoed.
        raise RequestValidationError(
            [{**error, "loc": ("body", *_field_path(error["loc"]))} for error in exc.errors()]
        ) from None


def _field_path(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    # pydantic puts the discriminator value first ("customer.activity", "data", ...); callers think in fields.
    return loc[1:] if loc and loc[0] in ADMIN_EVENT_TYPES else loc


@router.post(
    "/webhooks/admin",
    status_code=202,
    response_model=AdminWebhookReceipt,
    responses={200: {"model": AdminWebhookReceipt, "description": "A redelivery: already processed, no effect."}},
    # The body is read raw (the signature covers its bytes) and parsed after verification, so it is described here.
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": admin_event_json_schema()}}}
    },
)
async def receive_admin_webhook(request: Request, response: Response, session: SessionDep) -> AdminWebhookReceipt:
    """Admin trigger (customer.deletion_requested, customer.activity, customer.status_changed), Standard Webhooks
    signed; a delivery id already processed is acknowledged with 200 and no second effect."""
    settings: Settings = request.app.state.settings
    body = await request.body()
    keys = [secret_key(secret.get_secret_value()) for secret in settings.webhook_secrets]
    if not keys:
        metrics.ADMIN_WEBHOOKS.labels(outcome="unauthorized").inc()
        raise WebhookSignatureInvalid("admin webhooks are not configured on this server (no secret)")
    try:
        delivery = verify(request.headers, body, keys)
    except WebhookVerificationError as failure:
        metrics.ADMIN_WEBHOOKS.labels(outcome="unauthorized").inc()
        log.warning("webhooks.admin_delivery_refused", extra={"reason": failure.reason})
        raise WebhookSignatureInvalid(failure.reason) from None
    event = _parse_admin_event(body)
    outcome = await service.receive_admin_delivery(session, delivery_id=delivery.id, event=event)
    if outcome.duplicate:
        response.status_code = 200
        return AdminWebhookReceipt(delivery_id=delivery.id, status="duplicate")
    assert outcome.event is not None
    return AdminWebhookReceipt(delivery_id=delivery.id, status="accepted", event_id=outcome.event.id)


def _validation_echo(token: str) -> Response:
    if not token:
        raise BadRequest("validationToken is empty")
    # Echoed as plain text, never rendered: the token is attacker-controllable input.
    return PlainTextResponse(token, headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})


def _parse_collection(body: bytes) -> list[dict[str, object]]:
    try:
        return GraphNotificationCollection.model_validate_json(body).value
    except ValidationError:
        raise BadRequest("expected a JSON object with a 'value' array of at most 1000 notifications") from None


async def _store(request: Request, body: bytes, kind: NotificationKind) -> Response:
    items = _parse_collection(body)
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    try:
        # Committed before answering: a 202 promises Graph the notification is safe here.
        async with sessionmaker() as session, session.begin():
            outcome = await service.store_graph_notifications(session, items, kind=kind)
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        log.error("webhooks.graph_notifications_not_stored", extra={"kind": str(kind), "error": type(exc).__name__})
        raise StoreUnavailable("the notifications could not be stored; retry later") from None
    log.info(
        "webhooks.graph_notifications_received",
        extra={"kind": str(kind), "stored": outcome.stored, "rejected": outcome.rejected},
    )
    return Response(status_code=202)


ValidationToken = Annotated[
    str | None, Query(alias="validationToken", description="Sent by Graph when it validates the endpoint.")
]


@router.post("/notifications/graph", status_code=202, response_class=Response)
async def graph_change_notifications(request: Request, validation_token: ValidationToken = None) -> Response:
    """Graph change notifications: answers the validation handshake, else stores genuine notifications (202)."""
    if validation_token is not None:
        return _validation_echo(validation_token)
    return await _store(request, await request.body(), NotificationKind.change)


@router.post("/notifications/graph/lifecycle", status_code=202, response_class=Response)
async def graph_lifecycle_notifications(request: Request, validation_token: ValidationToken = None) -> Response:
    """Graph lifecycle notifications (reauthorizationRequired, subscriptionRemoved, missed), stored as work items."""
    if validation_token is not None:
        return _validation_echo(validation_token)
    return await _store(request, await request.body(), NotificationKind.lifecycle)

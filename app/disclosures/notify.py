"""Who hears about a demand: the customer (a notice mail, unless gagged) and the legal approvers (Teams).

Both are rows of the transactional outbox (app.notifications' outbox_message table) written in the same
transaction as the move that causes them, under kinds of their own; `relay` delivers them at least once.
A gagged demand never gets a notice row, and delivery checks the gag again before any mail can leave.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.service import audit
from app.config import Settings
from app.db.base import utc_now
from app.disclosures.notices import deadline_text, render_disclosure_notice
from app.models import Customer, DisclosureDemand, DisclosureStatus, OutboxMessage, OutboxStatus
from app.policy import Policy
from app.privacy.guard import Audience, DisclosureGuard
from app.teams.cards import SCHEMA
from app.teams.sender import CardSender, TeamsError
from connectors.base import ConnectorError
from connectors.graph.mail import OutgoingMail
from connectors.graph.writes import WriteResult

log = logging.getLogger(__name__)

CUSTOMER_NOTICE = "disclosure.notice"  # the customer's notice mail (vi + en)
LEGAL_UPDATE = "disclosure.legal_update"  # a card to the legal approvers in Teams
KINDS = frozenset({CUSTOMER_NOTICE, LEGAL_UPDATE})
MAX_ATTEMPTS = 8
BASE_BACKOFF = timedelta(minutes=1)


class GaggedDemand(Exception):
    """Raised if anything tries to notify the customer of a demand the law says they must not hear about."""


async def enqueue(
    session: AsyncSession, *, kind: str, key: str, payload: dict[str, Any], now: datetime
) -> OutboxMessage:
    """Add a row to the caller's transaction; a row with the same key already there is returned as is."""
    if kind not in KINDS:
        raise ValueError(f"unknown disclosure outbox kind {kind!r}")
    existing = (await session.execute(select(OutboxMessage).where(OutboxMessage.key == key))).scalar_one_or_none()
    if existing is not None:
        return existing
    message = OutboxMessage(
        key=key,
        kind=kind,
        payload=payload,
        status=OutboxStatus.pending,
        attempts=0,
        next_attempt_at=now,
        result={},
    )
    session.add(message)
    await session.flush()
    return message


async def enqueue_customer_notice(session: AsyncSession, demand: DisclosureDemand, *, now: datetime) -> OutboxMessage:
    if demand.gagged:
        raise GaggedDemand(f"demand {demand.id} is gagged: the customer must not be notified")
    return await enqueue(
        session, kind=CUSTOMER_NOTICE, key=f"disclosure:{demand.id}:notice", payload={"demand_id": demand.id}, now=now
    )


async def enqueue_legal_update(
    session: AsyncSession, demand: DisclosureDemand, *, event: str, seq: int, now: datetime
) -> None:
    # Keyed by the audit record of the event, so each event is announced once and redeliveries are recognisable.
    await enqueue(
        session,
        kind=LEGAL_UPDATE,
        key=f"disclosure:{demand.id}:update:{seq}",
        payload={"demand_id": demand.id, "event": event, "status": demand.status},
        now=now,
    )


# Delivery ------------------------------------------------------------------------------------------------


class MailSender(Protocol):
    """The connector's mail operations (connectors.graph.mail.MailOperations)."""

    async def send_mail(self, user_id: str, mail: OutgoingMail) -> WriteResult: ...


class DeliveryRefused(Exception):
    """This message must never be sent (gagged, closed, no recipient): failed for good, not retried."""


class DeliveryDeferred(Exception):
    """Not possible right now (no channel or mailbox configured yet, Graph or Teams failed): retried later."""


@dataclass
class Delivery:
    settings: Settings
    policy: Policy
    mail: MailSender | None
    teams: CardSender | None


EVENT_TEXT = {
    "received": "New demand received: scope frozen",
    "object": "Objection recorded",
    "uphold": "Objection upheld: disclosure stayed",
    "reject": "Objection rejected: ready for release",
    "narrow": "Objection partly upheld: scope narrowed, ready for release",
    "release": "No objection by the deadline: ready for release",
    "approve": "Export approved by a legal approver",
    "reject_export": "Export rejected by a legal approver: approvals voided",
    "export": "Package exported",
    "close": "Demand closed: holds released",
    "notice_sent": "Customer notified",
}


def legal_update_card(
    demand: DisclosureDemand, customer: Customer | None, event: str, *, guard: DisclosureGuard, base_url: str, mode: str
) -> dict[str, Any]:
    """A card for the legal approvers' channel; the customer is named only as the channel may see them."""
    customer_name = guard.display_name(customer) if customer is not None else demand.customer_id
    facts = [
        {"title": "Customer", "value": customer_name},
        {"title": "Authority", "value": demand.authority},
        {"title": "Reference", "value": demand.reference},
        {"title": "Status", "value": demand.status},
        {"title": "Objection deadline", "value": deadline_text(demand.objection_deadline, "en")},
        {"title": "Authority deadline", "value": deadline_text(demand.deadline, "en")},
        {"title": "Customer notice", "value": "forbidden by law (gagged)" if demand.gagged else "required"},
    ]
    url = f"{base_url.rstrip('/')}/disclosures/{demand.id}"
    return {
        "$schema": SCHEMA,
        "type": "AdaptiveCard",
        "version": "1.5" if mode == "bot" else "1.4",
        "body": [
            {
                "type": "TextBlock",
                "text": "Steward: compelled disclosure",
                "weight": "Bolder",
                "size": "Medium",
                "wrap": True,
            },
            {"type": "TextBlock", "text": EVENT_TEXT.get(event, event), "wrap": True},
            {"type": "FactSet", "facts": facts},
        ],
        "actions": [{"type": "Action.OpenUrl", "title": "Review", "url": url}],
    }


async def _deliver_notice(
    session: AsyncSession, demand: DisclosureDemand, delivery: Delivery, now: datetime
) -> dict[str, Any]:
    if demand.gagged:
        raise DeliveryRefused("the demand is gagged: the customer must not be notified")
    if demand.status == DisclosureStatus.closed:
        raise DeliveryRefused("the demand was closed before the notice went out")
    customer = await session.get(Customer, demand.customer_id)
    recipients = sorted({str(c["email"]).lower() for c in (customer.contacts if customer else []) if c.get("email")})
    if customer is None or not recipients:
        raise DeliveryRefused("the customer has no contact address to notify")
    settings = delivery.settings
    if delivery.mail is None or not settings.notification_mailbox:
        raise DeliveryDeferred("no notification mailbox is configured (STEWARD_NOTIFICATION_MAILBOX)")
    notice = render_disclosure_notice(
        delivery.policy,
        customer_name=customer.legal_name,
        authority=demand.authority,
        legal_basis=demand.legal_basis,
        data_description=demand.data_description,
        objection_deadline=demand.objection_deadline,
        contact_email=settings.disclosure_contact_email or settings.notification_mailbox,
    )
    result = await delivery.mail.send_mail(
        settings.notification_mailbox, OutgoingMail(to=recipients, subject=notice.subject, body=notice.body)
    )
    demand.notice_sent_at = now
    demand.notice_recipients = recipients
    record = await audit.append(
        session,
        actor="service:disclosure-relay",
        action="disclosure.notice_sent",
        subject=f"disclosure:{demand.id}",
        payload={"recipients": len(recipients), "request_id": result.request_id},
    )
    await enqueue_legal_update(session, demand, event="notice_sent", seq=record.seq, now=now)
    return {"request_id": result.request_id, "recipients": len(recipients)}


async def _deliver_update(
    session: AsyncSession, demand: DisclosureDemand, event: str, delivery: Delivery
) -> dict[str, Any]:
    if delivery.teams is None:
        raise DeliveryDeferred("no Teams bot or Workflows webhook is configured")
    customer = await session.get(Customer, demand.customer_id)
    guard = DisclosureGuard(delivery.policy, Audience.CHANNEL)
    mode = str(getattr(delivery.teams, "mode", "webhook"))
    card = legal_update_card(
        demand, customer, event, guard=guard, base_url=delivery.settings.public_base_url, mode=mode
    )
    posted = await delivery.teams.post(card)
    return {"conversation_id": posted.conversation_id, "activity_id": posted.activity_id}


async def deliver(session: AsyncSession, message: OutboxMessage, delivery: Delivery, now: datetime) -> dict[str, Any]:
    demand = await session.get(DisclosureDemand, str(message.payload.get("demand_id", "")))
    if demand is None:
        raise DeliveryRefused("the demand no longer exists")
    if message.kind == CUSTOMER_NOTICE:
        return await _deliver_notice(session, demand, delivery, now)
    return await _deliver_update(session, demand, str(message.payload.get("event", "")), delivery)


def backoff(attempts: int) -> timedelta:
    return BASE_BACKOFF * min(2 ** max(attempts - 1, 0), 64)


async def relay_message(session: AsyncSession, message: OutboxMessage, delivery: Delivery, now: datetime) -> None:
    """Deliver one row and record the outcome on it (the caller commits)."""
    try:
        message.result = await deliver(session, message, delivery, now)
    except DeliveryRefused as refused:
        message.status = OutboxStatus.failed
        message.last_error = str(refused)
        await audit.append(
            session,
            actor="service:disclosure-relay",
            action="disclosure.notification_refused",
            subject=f"disclosure:{message.payload.get('demand_id')}",
            payload={"kind": message.kind, "reason": str(refused)},
        )
    except (DeliveryDeferred, ConnectorError, TeamsError) as failure:
        message.attempts += 1
        message.last_error = f"{type(failure).__name__}: {failure}"[:2000]
        message.next_attempt_at = now + backoff(message.attempts)
        message.status = OutboxStatus.failed if message.attempts >= MAX_ATTEMPTS else OutboxStatus.pending
        log.warning("disclosure notification %s not delivered: %s", message.key, message.last_error)
    else:
        message.status = OutboxStatus.sent
        message.sent_at = now
        message.last_error = None
    await session.flush()


async def due_messages(session: AsyncSession, now: datetime, *, limit: int = 50) -> Sequence[OutboxMessage]:
    result = await session.execute(
        select(OutboxMessage)
        .where(
            OutboxMessage.kind.in_(sorted(KINDS)),
            OutboxMessage.status == OutboxStatus.pending,
            OutboxMessage.next_attempt_at <= now,
        )
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    return result.scalars().all()


async def relay(session: AsyncSession, delivery: Delivery, *, now: datetime | None = None, limit: int = 50) -> int:
    """Deliver due disclosure rows in this session (tests, and the job below); returns how many were tried."""
    moment = now or utc_now()
    messages = await due_messages(session, moment, limit=limit)
    for message in messages:
        await relay_message(session, message, delivery, moment)
    return len(messages)


async def relay_job(sessionmaker: async_sessionmaker[AsyncSession], delivery: Delivery, *, limit: int = 50) -> int:
    """The scheduler's entry point: one transaction per message, so a delivered message is recorded at once."""
    async with sessionmaker() as session:
        ids = [message.id for message in await due_messages(session, utc_now(), limit=limit)]
    for message_id in ids:
        async with sessionmaker() as session, session.begin():
            message = await session.get(OutboxMessage, message_id, with_for_update=True)
            if message is not None and message.status == OutboxStatus.pending:
                await relay_message(session, message, delivery, utc_now())
    return len(ids)

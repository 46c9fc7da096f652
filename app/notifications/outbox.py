"""The transactional outbox: notifications are rows written in the same transaction as the state change.

Nothing here sends anything. The relay (relay.py) delivers pending rows at least once; each row's `key` is
stable, so writing the same notification twice is a no-op and a receiver can recognise a redelivery.
"""

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utc_now
from app.models import OutboxMessage, OutboxStatus

# Kinds the relay knows how to deliver.
PLAN_CARD = "plan.card"  # the approval card (bot, or the Workflows webhook without a bot)
PLAN_CARD_UPDATE = "plan.card_update"  # refresh the posted card after a decision (bot only)
PLAN_REMINDER = "plan.reminder"  # a reminder or an escalation in the card's thread
DELETION_CONFIRMATION = "mail.deletion_confirmation"  # the customer's confirmation mail (vi + en)
KINDS = frozenset({PLAN_CARD, PLAN_CARD_UPDATE, PLAN_REMINDER, DELETION_CONFIRMATION})


async def enqueue(session: AsyncSession, *, kind: str, key: str, payload: dict[str, Any]) -> OutboxMessage:
    """Add a notification to the caller's transaction; an existing row with the same key is returned as is."""
    if kind not in KINDS:
        raise ValueError(f"unknown outbox kind {kind!r}")
    existing = (await session.execute(select(OutboxMessage).where(OutboxMessage.key == key))).scalar_one_or_none()
    if existing is not None:
        return existing
    message = OutboxMessage(
        key=key,
        kind=kind,
        payload=payload,
        status=OutboxStatus.pending,
        attempts=0,
        next_attempt_at=utc_now(),
        result={},
    )
    session.add(message)
    await session.flush()
    return message

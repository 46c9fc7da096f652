from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, utc_now


class InboundEventState(StrEnum):
    pending = "pending"  # stored; no domain has handled it yet
    handled = "handled"  # every hook registered for its type ran in the transaction that stored it


class InboundEvent(Base):
    """An event another system told Steward about (admin webhooks), stored before anything acts on it.

    `payload` is the event's validated `data`: customer ids, dates and references, never message content.
    """

    __tablename__ = "inbound_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("webhook_delivery.id"), unique=True)
    type: Mapped[str] = mapped_column(String(100), index=True)
    customer_id: Mapped[str] = mapped_column(String(64), index=True)
    occurred_at: Mapped[datetime]
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(16), default=InboundEventState.pending, index=True)
    received_at: Mapped[datetime] = mapped_column(default=utc_now)
    handled_at: Mapped[datetime | None]

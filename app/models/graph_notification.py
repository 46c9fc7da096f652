from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, utc_now


class NotificationKind(StrEnum):
    change = "change"
    lifecycle = "lifecycle"


class NotificationState(StrEnum):
    pending = "pending"  # stored by the receiver; the sync engine has not acted on it
    processed = "processed"
    failed = "failed"


class GraphNotification(Base):
    """A change or lifecycle notification from Graph, stored before the receiver answers 202: a work item for the
    sync engine, which treats it as "this resource changed, run delta" rather than as data (it carries none)."""

    __tablename__ = "graph_notification"
    __table_args__ = (Index("ix_graph_notification_state_id", "state", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    subscription_id: Mapped[str] = mapped_column(String(64), index=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    change_type: Mapped[str | None] = mapped_column(String(32))  # created | updated | deleted (change)
    lifecycle_event: Mapped[str | None] = mapped_column(String(32))  # reauthorizationRequired | ... (lifecycle)
    resource: Mapped[str | None] = mapped_column(String(1000))  # e.g. Users/{id}/Messages/{id}
    resource_id: Mapped[str | None] = mapped_column(String(512))
    state: Mapped[str] = mapped_column(String(16), default=NotificationState.pending)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[datetime] = mapped_column(default=utc_now)
    processed_at: Mapped[datetime | None]

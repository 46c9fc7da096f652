from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, utc_now


class CustomerEvent(Base):
    """An explicit activity signal (a purchase, a support ticket) reported through the API or an admin webhook.

    `reference` (an order or ticket number) makes a repeated report of the same event a no-op.
    """

    __tablename__ = "customer_event"
    __table_args__ = (UniqueConstraint("customer_id", "kind", "reference"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # purchase | support_ticket
    occurred_at: Mapped[datetime]
    reference: Mapped[str | None] = mapped_column(String(200))
    recorded_by: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(default=utc_now)

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, utc_now


class WebhookDelivery(Base):
    """A signed admin webhook delivery already accepted, by its `webhook-id`: a redelivery is recognised here.

    Rows are kept (deliveries are rare); they must outlive the signature tolerance window at the very least,
    after which a replay is refused for its stale timestamp anyway.
    """

    __tablename__ = "webhook_delivery"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(default=utc_now)
    type: Mapped[str] = mapped_column(String(100))

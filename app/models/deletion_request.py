from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, utc_now


class DeletionRequest(Base):
    """A customer's request to delete their data: who asked, how their identity was checked, who took it in."""

    __tablename__ = "deletion_request"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64), index=True)
    requester_name: Mapped[str] = mapped_column(String(300))
    requester_email: Mapped[str] = mapped_column(String(320))
    identity_check: Mapped[str] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(32))  # api | admin_webhook
    received_by: Mapped[str] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(default=utc_now)
    plan_id: Mapped[str | None] = mapped_column(String(32))

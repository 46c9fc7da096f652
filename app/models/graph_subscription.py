from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, utc_now


class GraphSubscription(Base):
    """A Microsoft Graph change-notification subscription Steward created, as the receiver needs it.

    The clientState is kept as its SHA-256 only: the receiver hashes what a notification carries and compares
    digests in constant time, so a copy of the store does not let anyone forge notifications. (The value is 256
    random bits, so an unsalted digest cannot be reversed by guessing.)
    """

    __tablename__ = "graph_subscription"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # Graph's subscription id
    resource: Mapped[str] = mapped_column(String(1000))
    change_types: Mapped[str] = mapped_column(String(100))
    tenant_id: Mapped[str] = mapped_column(String(64))
    client_state_sha256: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)

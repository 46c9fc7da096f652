from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, utc_now


class ReferenceConsent(Base):
    """Where a customer's consent to be named as a reference comes from (a contract clause, a mail...).

    Provenance only: the customer's do-not-disclose and marketing opt-out flags always win over it.
    """

    __tablename__ = "reference_consent"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(300))
    obtained_at: Mapped[datetime]
    note: Mapped[str | None] = mapped_column(String(500))
    recorded_by: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(default=utc_now)

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, utc_now


class DisclosureObjection(Base):
    """An objection to a disclosure: who objected, when it reached us, on what grounds, and the evidence."""

    __tablename__ = "disclosure_objection"

    id: Mapped[int] = mapped_column(primary_key=True)
    demand_id: Mapped[str] = mapped_column(ForeignKey("disclosure_demand.id", ondelete="CASCADE"), index=True)
    objector: Mapped[str] = mapped_column(String(300))
    received_at: Mapped[datetime]
    grounds: Mapped[str] = mapped_column(Text)
    evidence_ref: Mapped[str | None] = mapped_column(String(500))
    recorded_by: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(default=utc_now)

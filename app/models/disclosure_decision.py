from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, utc_now


class DecisionOutcome(StrEnum):
    upheld = "upheld"  # the objection wins: the disclosure is stayed or stopped
    rejected = "rejected"  # the objection fails: the disclosure goes ahead as demanded
    narrowed = "narrowed"  # partly upheld: the disclosure goes ahead for a smaller scope


class DisclosureDecision(Base):
    """The authority's or court's written decision on the objections to a demand."""

    __tablename__ = "disclosure_decision"

    id: Mapped[int] = mapped_column(primary_key=True)
    demand_id: Mapped[str] = mapped_column(ForeignKey("disclosure_demand.id", ondelete="CASCADE"), index=True)
    decided_by: Mapped[str] = mapped_column(String(300))  # the court or authority
    decided_at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(16))
    reference: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    removed_items: Mapped[int] = mapped_column(Integer, default=0)
    recorded_by: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(default=utc_now)

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, utc_now


class DisclosureApproval(Base):
    """One legal approver's decision on releasing one version of a demand's scope.

    Unique on (demand, scope hash, approver): a repeated click cannot count twice, and an approval of a wider
    scope never counts for a narrowed one. `consumed_at` makes it single-use: the export that used it.
    """

    __tablename__ = "disclosure_approval"
    __table_args__ = (UniqueConstraint("demand_id", "scope_hash", "approver"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    demand_id: Mapped[str] = mapped_column(ForeignKey("disclosure_demand.id", ondelete="CASCADE"), index=True)
    scope_hash: Mapped[str] = mapped_column(String(64))
    approver: Mapped[str] = mapped_column(String(200))  # Entra object id from a verified token
    approver_name: Mapped[str] = mapped_column(String(300))
    decision: Mapped[str] = mapped_column(String(16))  # approve | reject
    decided_at: Mapped[datetime] = mapped_column(default=utc_now)
    expires_at: Mapped[datetime]
    consumed_at: Mapped[datetime | None]
    voided_at: Mapped[datetime | None]
    void_reason: Mapped[str | None] = mapped_column(Text)

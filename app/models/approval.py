from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, utc_now


class Decision(StrEnum):
    approve = "approve"
    reject = "reject"


class Approval(Base):
    """One person's decision on one version of a plan's manifest.

    Unique on (plan, manifest hash, approver): a replayed click or a second click by the same person cannot
    count twice, and a decision on an older manifest never counts for a newer one.
    """

    __tablename__ = "approval"
    __table_args__ = (UniqueConstraint("plan_id", "manifest_hash", "approver"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[str] = mapped_column(ForeignKey("deletion_plan.id"), index=True)
    manifest_hash: Mapped[str] = mapped_column(String(64))
    approver: Mapped[str] = mapped_column(String(200))  # Entra object id from a verified token
    approver_name: Mapped[str] = mapped_column(String(300))
    decision: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))  # teams | web
    decided_at: Mapped[datetime] = mapped_column(default=utc_now)
    expires_at: Mapped[datetime]
    voided_at: Mapped[datetime | None]
    void_reason: Mapped[str | None] = mapped_column(Text)

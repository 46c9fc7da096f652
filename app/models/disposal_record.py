from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, JSONType, utc_now


class DisposalRecord(Base):
    """Proof of disposal for one manifest item: who asked, who approved, what Graph answered. No content.

    Exactly one per plan item (unique `plan_item_id`), written in the same transaction as the item's outcome, so
    a crash and a retry can never leave two. It deliberately copies what it proves (customer ids, requester,
    approvers) instead of pointing at rows that retention may later reduce to a tombstone.
    """

    __tablename__ = "disposal_record"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[str] = mapped_column(ForeignKey("deletion_plan.id"), index=True)
    plan_item_id: Mapped[int] = mapped_column(ForeignKey("plan_item.id"), unique=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    customer_ids: Mapped[list[str]] = mapped_column(default=list)
    kind: Mapped[str] = mapped_column(String(16))
    container_id: Mapped[str] = mapped_column(String(300))
    item_id: Mapped[str] = mapped_column(String(300))
    name_hash: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    manifest_hash: Mapped[str] = mapped_column(String(64))
    trigger: Mapped[str] = mapped_column(String(32))
    requested_by: Mapped[str] = mapped_column(String(200))
    requested_by_name: Mapped[str] = mapped_column(String(300))
    approvers: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    outcome: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)
    soft_deleted_at: Mapped[datetime | None]
    soft_request_id: Mapped[str | None] = mapped_column(String(100))
    purge_mode: Mapped[str | None] = mapped_column(String(32))
    purge_due_at: Mapped[datetime | None]
    purged_at: Mapped[datetime | None]
    purge_request_id: Mapped[str | None] = mapped_column(String(100))
    recorded_at: Mapped[datetime] = mapped_column(default=utc_now)
    retain_until: Mapped[datetime]

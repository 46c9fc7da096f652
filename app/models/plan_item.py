from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base


class ItemKind(StrEnum):
    message = "message"
    file = "file"


class ItemAction(StrEnum):
    delete = "delete"
    exclude = "exclude"  # listed so approvers see it, never touched


class ItemState(StrEnum):
    planned = "planned"
    excluded = "excluded"
    deleting = "deleting"  # intent committed before the Graph call: a restart re-checks, never replays blindly
    soft_deleted = "soft_deleted"
    purging = "purging"
    purged = "purged"
    already_absent = "already_absent"
    held = "held"  # a hold appeared after approval
    drifted = "drifted"  # the item changed since approval (eTag): needs a new approval
    blocked_by_retention = "blocked_by_retention"  # Microsoft 365 refused: retention wins, never retried
    failed = "failed"


FINAL_STATES = frozenset(
    {
        ItemState.excluded,
        ItemState.purged,
        ItemState.already_absent,
        ItemState.held,
        ItemState.drifted,
        ItemState.blocked_by_retention,
        ItemState.failed,
    }
)


class PlanItem(Base):
    """One line of a plan's manifest (metadata only) and where its execution stands."""

    __tablename__ = "plan_item"
    __table_args__ = (UniqueConstraint("plan_id", "kind", "container_id", "item_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[str] = mapped_column(ForeignKey("deletion_plan.id"), index=True)
    ordinal: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    container_id: Mapped[str] = mapped_column(String(300))  # mailbox user id or drive id
    item_id: Mapped[str] = mapped_column(String(300))  # immutable id
    etag: Mapped[str | None] = mapped_column(String(300))
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    name_hash: Mapped[str] = mapped_column(String(64))
    customer_ids: Mapped[list[str]] = mapped_column(default=list)
    # Customers outside the plan that the item also belongs to.
    shared_with: Mapped[list[str]] = mapped_column(default=list)
    action: Mapped[str] = mapped_column(String(16))
    exclusion_reason: Mapped[str | None] = mapped_column(String(64))
    exclusion_detail: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(32), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    soft_deleted_at: Mapped[datetime | None]
    purge_due_at: Mapped[datetime | None]
    purged_at: Mapped[datetime | None]

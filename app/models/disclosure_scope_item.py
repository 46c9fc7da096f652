from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, utc_now


class DisclosureScopeItem(Base):
    """One item a demand covers (metadata only). Narrowing marks items out of scope; the row and its hold stay."""

    __tablename__ = "disclosure_scope_item"
    __table_args__ = (UniqueConstraint("demand_id", "kind", "container_id", "item_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    demand_id: Mapped[str] = mapped_column(ForeignKey("disclosure_demand.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # message | file
    container_id: Mapped[str] = mapped_column(String(300))  # mailbox user id or drive id
    item_id: Mapped[str] = mapped_column(String(300))  # immutable message id or driveItem id
    etag: Mapped[str | None] = mapped_column(String(300))
    size: Mapped[int | None] = mapped_column(BigInteger)
    name_hash: Mapped[str | None] = mapped_column(String(64))
    item_date: Mapped[datetime | None]
    hold_id: Mapped[int | None] = mapped_column(ForeignKey("item_hold.id"))
    in_scope: Mapped[bool] = mapped_column(default=True, server_default=true())
    removed_at: Mapped[datetime | None]
    removed_by_decision_id: Mapped[int | None]
    added_at: Mapped[datetime] = mapped_column(default=utc_now)

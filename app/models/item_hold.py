from datetime import datetime
from enum import StrEnum

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, utc_now


class HoldSource(StrEnum):
    legal_hold = "legal_hold"
    disclosure = "disclosure"  # a pending compelled disclosure needs the data kept
    customer_request = "customer_request"  # the customer asked us to keep it
    manual = "manual"


class ItemHold(Base):
    """Something that must not be deleted while the hold is active.

    The scope narrows from a whole customer, to a container (mailbox or drive), to one item: a hold matches an
    item when every scope field it sets matches. Other features (disclosure, the customer registry) write here;
    deletion planning and execution only read.
    """

    __tablename__ = "item_hold"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[str | None] = mapped_column(String(64), index=True)
    kind: Mapped[str | None] = mapped_column(String(16))
    container_id: Mapped[str | None] = mapped_column(String(300))
    item_id: Mapped[str | None] = mapped_column(String(300), index=True)
    source: Mapped[str] = mapped_column(String(32))
    source_ref: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    released_at: Mapped[datetime | None]
    released_by: Mapped[str | None] = mapped_column(String(200))

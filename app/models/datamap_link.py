from typing import Any

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, JSONType


class DatamapLink(Base):
    """An item belongs to a customer, and the rules that say so (rule + a non-identifying detail each)."""

    __tablename__ = "datamap_link"

    item_pk: Mapped[int] = mapped_column(ForeignKey("datamap_item.id", ondelete="CASCADE"), primary_key=True)
    customer_id: Mapped[str] = mapped_column(
        ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, JSONType, utc_now


class DisclosureExport(Base):
    """What left: the package's hash and, per item, its id, path in the package, size and SHA-256 (no content).

    The package file itself is removed when the demand closes; this record stays.
    """

    __tablename__ = "disclosure_export"

    id: Mapped[int] = mapped_column(primary_key=True)
    demand_id: Mapped[str] = mapped_column(ForeignKey("disclosure_demand.id", ondelete="CASCADE"), index=True)
    scope_hash: Mapped[str] = mapped_column(String(64))
    package_name: Mapped[str] = mapped_column(String(200))
    package_sha256: Mapped[str] = mapped_column(String(64))
    package_bytes: Mapped[int] = mapped_column(BigInteger)
    item_count: Mapped[int] = mapped_column(Integer)
    total_bytes: Mapped[int] = mapped_column(BigInteger)
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    approvers: Mapped[list[dict[str, str]]] = mapped_column(default=list)
    created_by: Mapped[str] = mapped_column(String(200))
    created_by_name: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    package_removed_at: Mapped[datetime | None]

from datetime import datetime

from sqlalchemy import String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, utc_now


class SyncCursor(Base):
    """Where an incremental Graph sync (delta or paging) stands for one resource."""

    __tablename__ = "sync_cursor"

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_kind: Mapped[str] = mapped_column(String(32))  # e.g. "mail_folder", "drive"
    resource_key: Mapped[str] = mapped_column(String(512), unique=True)
    # The last nextLink/deltaLink; None until the first page has been stored.
    cursor: Mapped[str | None] = mapped_column(Text)
    # True once the enumeration finished: `cursor` is a deltaLink rather than a nextLink.
    is_delta: Mapped[bool] = mapped_column(default=False, server_default=false())
    # True while a full resync runs after Graph answered 410 Gone / syncStateNotFound.
    is_resync: Mapped[bool] = mapped_column(default=False, server_default=false())
    # When the running resync began: items of the resource not seen since then are gone once it finishes.
    resync_started_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)

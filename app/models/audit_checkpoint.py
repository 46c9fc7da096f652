from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, utc_now


class AuditCheckpoint(Base):
    """A signed statement "the audit log had `record_count` records ending in `last_hash`".

    Each checkpoint signs the previous one's signature too, so deleting or editing a checkpoint breaks the
    chain of checkpoints, and a truncated audit tail no longer reaches the last checkpoint's hash.
    """

    __tablename__ = "audit_checkpoint"

    id: Mapped[int] = mapped_column(primary_key=True)
    last_seq: Mapped[int] = mapped_column(Integer)
    record_count: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    key_id: Mapped[str] = mapped_column(String(64))
    prev_signature: Mapped[str] = mapped_column(Text)
    signature: Mapped[str] = mapped_column(Text, unique=True)

from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base


class AuditRecord(Base):
    """One entry of the append-only, hash-chained audit log.

    `seq` is assigned by the writer (previous + 1) rather than by the database, and `prev_hash` is
    unique, so two writers racing from the same tail cannot both commit: the chain cannot fork.
    UPDATE and DELETE are rejected by database triggers (see the initial migration).
    """

    __tablename__ = "audit_record"

    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    subject: Mapped[str] = mapped_column(String(500))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)

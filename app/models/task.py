from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, utc_now


class TaskState(StrEnum):
    ready = "ready"
    running = "running"
    done = "done"
    failed = "failed"


class Task(Base):
    """A unit of fanned-out work (one mailbox, one drive, one chunk of a plan), keyed by kind and unit.

    Enqueueing the same key again is a no-op while it is pending; a running task holds a lease, and a worker
    that dies lets the lease run out so another can claim it.
    """

    __tablename__ = "task"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    kind: Mapped[str] = mapped_column(String(64), index=True)
    unit: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime] = mapped_column(default=utc_now)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)

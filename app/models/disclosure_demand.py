from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, utc_now


class DisclosureStatus(StrEnum):
    """Where a compelled-disclosure demand stands (app/disclosures/machine.py holds the moves between them)."""

    objection_window = "objection_window"  # scope frozen; the customer (unless gagged) may object until the deadline
    objected = "objected"  # an objection was recorded; waiting for the authority's or court's decision
    stayed = "stayed"  # the objection was upheld: the disclosure is stayed or stopped; nothing may leave
    released = "released"  # rejected, narrowed, or no objection by the deadline: exportable after two approvals
    exported = "exported"  # the package left; holds stay until the demand is closed
    closed = "closed"  # finished or withdrawn: holds released


class ScopeMode(StrEnum):
    items = "items"  # an explicit selection of data-map items
    date_range = "date_range"  # every item of the customer dated within [scope_from, scope_to]


class DisclosureDemand(Base):
    """A legal demand to disclose a customer's data (the policy's "Tiết lộ bắt buộc").

    `gagged` (the law forbids telling the customer) is fixed at intake and never changes. `scope_hash` is the
    SHA-256 of the in-scope item list: export approvals are bound to it, so narrowing voids them.
    """

    __tablename__ = "disclosure_demand"
    __table_args__ = (UniqueConstraint("customer_id", "authority", "reference"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customer.id"), index=True)
    authority: Mapped[str] = mapped_column(String(300))
    legal_basis: Mapped[str] = mapped_column(String(500))
    reference: Mapped[str] = mapped_column(String(200))
    data_description: Mapped[str] = mapped_column(Text)
    scope_mode: Mapped[str] = mapped_column(String(16))
    scope_from: Mapped[datetime | None]
    scope_to: Mapped[datetime | None]
    scope_kinds: Mapped[list[str]] = mapped_column(default=list)
    deadline: Mapped[datetime]
    objection_deadline: Mapped[datetime]
    gagged: Mapped[bool] = mapped_column(default=False, server_default=false())
    status: Mapped[str] = mapped_column(String(20), index=True)
    scope_hash: Mapped[str] = mapped_column(String(64))
    scope_version: Mapped[int] = mapped_column(Integer, default=1)
    received_by: Mapped[str] = mapped_column(String(200))  # Entra object id of the person who took it in
    received_by_name: Mapped[str] = mapped_column(String(300))
    notice_sent_at: Mapped[datetime | None]
    notice_recipients: Mapped[list[str]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)
    closed_at: Mapped[datetime | None]
    closed_by: Mapped[str | None] = mapped_column(String(200))
    close_reason: Mapped[str | None] = mapped_column(Text)

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Boolean, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, utc_now


class TriggerKind(StrEnum):
    customer_request = "customer_request"
    inactivity = "inactivity"
    company_decision = "company_decision"


class PlanStatus(StrEnum):
    dry_run = "dry_run"  # built to be looked at; can never be approved or executed
    pending_approval = "pending_approval"
    approved = "approved"
    rejected = "rejected"
    expired = "expired"  # nobody decided within the policy's TTL
    executing = "executing"
    awaiting_purge = "awaiting_purge"  # soft-deleted; permanent deletion after the grace window
    completed = "completed"
    cancelled = "cancelled"


class DeletionPlan(Base):
    """An exact manifest of what will be deleted for one trigger, and where its approval and execution stand.

    `manifest_hash` is the SHA-256 of the canonical manifest; approvals are recorded against it, so any change
    to the manifest leaves every earlier approval pointing at a hash the plan no longer has.
    `row_version` makes concurrent status changes (two approvers at once, the expiry job) fail instead of
    overwriting each other.
    """

    __tablename__ = "deletion_plan"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    customer_ids: Mapped[list[str]] = mapped_column(default=list)
    trigger: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text, default="")
    trigger_details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    requested_by: Mapped[str] = mapped_column(String(200))
    requested_by_name: Mapped[str] = mapped_column(String(300))
    requested_by_is_service: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The person answerable for an automated plan; excluded from approving it like a requester.
    owner: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(32), index=True)
    include_shared: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    manifest_hash: Mapped[str] = mapped_column(String(64))
    manifest_version: Mapped[int] = mapped_column(Integer, default=1)
    item_count: Mapped[int] = mapped_column(Integer, default=0)
    total_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    excluded_count: Mapped[int] = mapped_column(Integer, default=0)
    required_approvals: Mapped[int] = mapped_column(Integer)
    cap_reasons: Mapped[list[str]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    submitted_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    reminded_at: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]
    decided_at: Mapped[datetime | None]
    execution_started_at: Mapped[datetime | None]
    soft_completed_at: Mapped[datetime | None]
    purge_due_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    card_conversation_id: Mapped[str | None] = mapped_column(String(300))
    card_activity_id: Mapped[str | None] = mapped_column(String(200))
    row_version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": row_version}

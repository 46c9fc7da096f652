from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, JSONType, utc_now


class LabelState(StrEnum):
    """Where labeling an item stands. Coverage reports group items by this and `label_reason`."""

    pending = "pending"  # the policy's label is due and nobody has looked at the item's current label yet
    in_progress = "in_progress"  # assignSensitivityLabel accepted; `label_monitor_url` is being polled
    labeled = "labeled"  # the item carries the policy's label (applied by us, or already there)
    kept_higher = "kept_higher"  # a more sensitive label was already on it: never downgraded
    skipped = "skipped"  # nothing to apply (category not labeled, a person's lower label, unsupported type...)
    failed = "failed"  # a permanent refusal for this item (locked, 402, not supported, monitor failed)
    deferred = "deferred"  # a temporary refusal (fileDecryptionDeferred, monitor still running): retried


class DatamapItem(Base):
    """One message or file of the data map: metadata only, never a body, a subject or file content.

    `item_created_at` / `item_modified_at` are a file's createdDateTime / lastModifiedDateTime and a message's
    sentDateTime / receivedDateTime. `findings` keep only keyed hashes of identifiers found in the content, so an
    item can be classified again (after a rename, a share, a registry change) without reading it again.
    """

    __tablename__ = "datamap_item"
    __table_args__ = (
        UniqueConstraint("kind", "container_id", "item_id"),
        Index("ix_datamap_item_label_state", "label_state"),
        Index("ix_datamap_item_container_folder", "container_id", "folder_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # message | file (app.models.plan_item.ItemKind)
    container_id: Mapped[str] = mapped_column(String(300))  # mailbox user id or drive id
    item_id: Mapped[str] = mapped_column(String(300))  # immutable message id or driveItem id
    folder_id: Mapped[str | None] = mapped_column(String(300))  # mail folder id or parent driveItem id
    etag: Mapped[str | None] = mapped_column(String(300))
    name_hash: Mapped[str | None] = mapped_column(String(64))  # SHA-256 of the subject or file name
    mime_type: Mapped[str | None] = mapped_column(String(255))
    size: Mapped[int | None] = mapped_column(BigInteger)
    item_created_at: Mapped[datetime | None]
    item_modified_at: Mapped[datetime | None]
    # scanned | skipped (see scan_detail: too large, unsupported format, unreadable...) | not_read
    scan_status: Mapped[str] = mapped_column(String(16))
    scan_detail: Mapped[str | None] = mapped_column(String(64))
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    category: Mapped[str] = mapped_column(String(32))
    category_reason: Mapped[str] = mapped_column(String(300))
    target_label_id: Mapped[str | None] = mapped_column(String(64))
    label_state: Mapped[str] = mapped_column(String(16))  # LabelState
    label_reason: Mapped[str | None] = mapped_column(String(64))
    label_detail: Mapped[str | None] = mapped_column(String(500))
    # The label we confirmed on the item: tells our own label (and its echo in delta) from a person's.
    label_applied_id: Mapped[str | None] = mapped_column(String(64))
    # Persisted before polling, so a restart resumes the job instead of assigning (and paying) again.
    label_monitor_url: Mapped[str | None] = mapped_column(Text)
    label_updated_at: Mapped[datetime | None]
    first_seen_at: Mapped[datetime] = mapped_column(default=utc_now)
    synced_at: Mapped[datetime] = mapped_column(default=utc_now)

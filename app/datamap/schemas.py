from datetime import datetime
from typing import Literal

from pydantic import BaseModel

ItemKindName = Literal["message", "file"]


class AttributionReason(BaseModel):
    rule: str  # e.g. participant.domain, location:customer-folder, identifier.tax_code
    detail: str  # what matched: a domain, a rule id, a guest id or a value hash; never a raw identifier


class DatamapItemRead(BaseModel):
    kind: str
    container_id: str  # mailbox owner's user id, or drive id
    item_id: str
    folder_id: str | None
    etag: str | None
    name_hash: str | None
    mime_type: str | None
    size: int | None
    item_created_at: datetime | None
    item_modified_at: datetime | None
    category: str
    category_reason: str
    label_state: str
    label_reason: str | None
    scan_status: str
    reasons: list[AttributionReason]


class DatamapCounts(BaseModel):
    items: int
    by_kind: dict[str, int]
    by_category: dict[str, int]
    by_label_state: dict[str, int]


class CustomerDatamap(BaseModel):
    customer_id: str
    counts: DatamapCounts
    items: list[DatamapItemRead]
    next_after: int | None  # pass as `after` for the next page

"""API shapes of /v1/disclosures. Customers appear only as the guard renders them (`CustomerRef`)."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field, StringConstraints, model_validator

from app.kit.schemas import RequestSchema, ResponseSchema
from app.models import DecisionOutcome, DisclosureStatus

ItemKind = Literal["message", "file"]
Text300 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Reference = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Identifier = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
MAX_SELECTED_ITEMS = 10_000


class ItemRef(RequestSchema):
    kind: ItemKind
    container_id: Identifier = Field(description="Mailbox owner's user id, or drive id.")
    item_id: Identifier = Field(description="Immutable message id, or driveItem id.")


class ScopeIn(RequestSchema):
    """Either `items` (an explicit selection) or `date_from` + `date_to` (with `kinds`)."""

    items: list[ItemRef] | None = Field(default=None, min_length=1, max_length=MAX_SELECTED_ITEMS)
    date_from: AwareDatetime | None = None
    date_to: AwareDatetime | None = None
    kinds: list[ItemKind] = Field(default=["message", "file"], min_length=1)

    @model_validator(mode="after")
    def _one_way(self) -> "ScopeIn":
        dated = self.date_from is not None or self.date_to is not None
        if (self.items is None) == (not dated):
            raise ValueError("give either items or date_from + date_to")
        if dated and (self.date_from is None or self.date_to is None or self.date_from > self.date_to):
            raise ValueError("a date range needs date_from <= date_to")
        return self


class DemandIn(RequestSchema):
    customer_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    authority: Text300 = Field(description="The authority or court that demands the disclosure.")
    legal_basis: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
    reference: Reference = Field(description="The authority's reference for the demand (case or document number).")
    data_description: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)] = Field(
        description="What is requested, in words the customer's notice can quote."
    )
    scope: ScopeIn
    deadline: AwareDatetime = Field(description="When the authority expects the data.")
    objection_deadline: AwareDatetime | None = Field(
        default=None, description="End of the objection window; default: STEWARD_DISCLOSURE_OBJECTION_DAYS from now."
    )
    gagged: bool = Field(description="True when the law forbids telling the customer. Required, and fixed for good.")


class ObjectionIn(RequestSchema):
    objector: Text300 = Field(description="Who objects (the customer, its counsel, the company itself).")
    received_at: AwareDatetime = Field(description="When the objection reached us.")
    grounds: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)]
    evidence_ref: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)] | None = None


class NarrowingIn(RequestSchema):
    """What a narrowed decision keeps: listed items, and/or the items dated within a range."""

    items: list[ItemRef] | None = Field(default=None, min_length=1, max_length=MAX_SELECTED_ITEMS)
    date_from: AwareDatetime | None = None
    date_to: AwareDatetime | None = None

    @model_validator(mode="after")
    def _something(self) -> "NarrowingIn":
        if self.items is None and self.date_from is None and self.date_to is None:
            raise ValueError("name the items or the date range the narrowed scope keeps")
        return self


class DecisionIn(RequestSchema):
    outcome: DecisionOutcome
    decided_by: Text300 = Field(description="The court or authority that decided.")
    decided_at: AwareDatetime
    reference: Reference | None = None
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=5000)] | None = None
    keep: NarrowingIn | None = Field(default=None, description="Only with outcome narrowed: the scope that remains.")


class ApprovalIn(RequestSchema):
    decision: Literal["approve", "reject"]
    scope_hash: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] = Field(
        description="The scope hash you reviewed; a decision on an older scope is refused."
    )


class CloseIn(RequestSchema):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class CustomerRef(ResponseSchema):
    """The demand's customer as the caller may see them (app.privacy.guard)."""

    id: str
    confidential: bool
    legal_name: str | None = None


class ObjectionRead(ResponseSchema):
    id: int
    objector: str
    received_at: datetime
    grounds: str
    evidence_ref: str | None
    recorded_by: str
    recorded_at: datetime


class DecisionRead(ResponseSchema):
    id: int
    outcome: str
    decided_by: str
    decided_at: datetime
    reference: str | None
    note: str | None
    removed_items: int
    recorded_at: datetime


class ApprovalRead(ResponseSchema):
    approver: str
    approver_name: str
    decision: str
    decided_at: datetime
    expires_at: datetime
    consumed_at: datetime | None
    voided_at: datetime | None
    void_reason: str | None


class ExportRead(ResponseSchema):
    id: int
    scope_hash: str
    package_name: str
    package_sha256: str
    package_bytes: int
    item_count: int
    total_bytes: int
    items: list[dict[str, Any]]
    approvers: list[dict[str, str]]
    created_by_name: str
    created_at: datetime
    package_removed_at: datetime | None


class ApprovalState(ResponseSchema):
    required: int
    valid: int
    approvals: list[ApprovalRead]


class DemandSummary(ResponseSchema):
    id: str
    customer: CustomerRef
    authority: str
    reference: str
    status: DisclosureStatus
    gagged: bool
    deadline: datetime
    objection_deadline: datetime
    created_at: datetime


class DemandRead(DemandSummary):
    legal_basis: str
    data_description: str
    scope_mode: str
    scope_from: datetime | None
    scope_to: datetime | None
    scope_kinds: list[str]
    scope_hash: str
    scope_version: int
    items_in_scope: int
    items_frozen: int
    holds_active: int
    received_by_name: str
    notice_sent_at: datetime | None
    notice_recipients: list[str]
    closed_at: datetime | None
    close_reason: str | None
    objections: list[ObjectionRead]
    decisions: list[DecisionRead]
    approval: ApprovalState
    exports: list[ExportRead]


class ScopeItemRead(ResponseSchema):
    kind: str
    container_id: str
    item_id: str
    etag: str | None
    size: int | None
    name_hash: str | None
    item_date: datetime | None
    in_scope: bool
    removed_at: datetime | None


class ApprovalResultRead(ResponseSchema):
    demand_id: str
    status: str
    approvals: int
    required: int
    counted: bool


class HistoryEntry(ResponseSchema):
    seq: int
    at: datetime
    actor: str
    action: str
    payload: dict[str, Any]

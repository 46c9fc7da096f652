"""API shapes for deletion requests, plans and their manifests (strict: unknown fields are refused)."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

CustomerIdText = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
# Deliberately loose (one @, a dot in the domain): the mail system is the real check; this catches typos.
EmailText = Annotated[str, StringConstraints(max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CustomerDeletionRequest(Strict):
    customer_id: CustomerIdText
    requester_name: str = Field(min_length=1, max_length=300, description="Who at the customer asked.")
    requester_email: EmailText = Field(description="Where the confirmation goes.")
    identity_check: str = Field(
        min_length=3, max_length=2000, description="How the requester's identity and authority were checked."
    )


class CompanyDecision(Strict):
    customer_ids: list[CustomerIdText] = Field(min_length=1, max_length=100)
    reason: str = Field(min_length=1, max_length=2000)
    include_shared: bool = Field(
        default=False,
        description="Also delete items that belong to other customers too: an explicit, separately approved decision.",
    )
    dry_run: bool = False


class Accepted(BaseModel):
    plan_id: str
    task: str
    request_id: str | None = None


class DecisionIn(Strict):
    manifest_hash: Sha256 = Field(description="The manifest hash on screen: a decision on an older one is refused.")
    decision: Literal["approve", "reject"]


class DecisionOut(BaseModel):
    plan_id: str
    status: str
    approvals: int
    required: int
    counted: bool


class ExcludeIn(Strict):
    reason: str = Field(min_length=3, max_length=2000)


class PlanOut(BaseModel):
    plan: dict[str, Any]
    approvals: list[dict[str, Any]]
